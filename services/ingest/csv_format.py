"""The CSV upload format: one row per signal, the columns of every kind side by side.

For providers whose systems export spreadsheets rather than JSON (`POST /v1/signals/csv`,
`vroegsignaal signals import`). A row is turned into the same payload a JSON sender would post
and checked by the same rules (`validation.check_signal`), so the two ways in cannot drift apart.

Format:
- UTF-8, a byte-order mark allowed; the first line names the columns, in any order. Cells are
  separated by commas, or by semicolons as Excel writes them in a Dutch locale (when the first
  line holds more `;` than `,`).
- `department`, `kind` and `observed_at` columns are required; `id`, `provider_agb`, `note` and
  the data columns may be left out. A column not in `CSV_COLUMNS` refuses the file.
- A row fills only the data columns of its kind; an empty cell is an absent field.
- Numbers: `12`, `12.5` or `12,5` (Dutch decimal comma); booleans: `true`/`false`, `ja`/`nee`,
  `1`/`0`; dates: `YYYY-MM-DD`; `observed_at` with its offset, `2026-11-01T00:00:00+01:00`.
- Rows are numbered as `services.core.csvfile` numbers them: the first line after the header is
  row 1 (blank lines are skipped and not counted). Lines that are all empty cells are skipped.

Error paths read `row 3 · sick_leave_pct` (the row and the column), `row 3` for the row as a
whole, and `header` for the column names. A file with any bad row is refused whole, every bad
row reported.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, get_args

from services.core.domain import SignalKind
from services.ingest.schemas import DATA_MODELS, SignalIn
from services.ingest.validation import (
    FieldError,
    Loc,
    Problem,
    SignalsRefused,
    check_signal,
    key_name,
    repeated_ids,
    shown,
)

SIGNAL_COLUMNS = ("id", "department", "provider_agb", "kind", "observed_at", "note")
REQUIRED_COLUMNS = ("department", "kind", "observed_at")
DATA_COLUMNS = (
    # staffing
    "fte_budgeted",
    "fte_filled",
    "vacancies_fte",
    "sick_leave_pct",
    "temp_staff_pct",
    "psychiatrist_fte",
    "unfilled_shifts_pct",
    # waitlist
    "waiting_count",
    "aanmeldwachttijd_weeks",
    "behandelwachttijd_weeks",
    "waiting_over_norm_count",
    # capacity
    "beds_total",
    "beds_occupied",
    "beds_closed",
    "out_of_area_placements",
    # admission_stop (and `reason` for closures)
    "active",
    "since",
    "expected_until",
    "reason",
    # closure (and `effective_date` for contracts)
    "effective_date",
    "scope",
    "capacity_lost",
    # contract
    "status",
)
CSV_COLUMNS = SIGNAL_COLUMNS + DATA_COLUMNS

CLOCK_SKEW = timedelta(minutes=5)  # as for JSON: a sender's clock may run a little ahead

_HEADER_HINT = f"the first line names the columns, e.g. {','.join(SIGNAL_COLUMNS)},..."
_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
_BOOLEANS = {"true": True, "ja": True, "1": True, "false": False, "nee": False, "0": False}
_KIND_VALUES = frozenset(kind.value for kind in SignalKind)


class _Unreadable(ValueError):
    """A cell that is not text of the expected form; the message says what was expected."""


def _number(text: str) -> int | float:
    if not _NUMBER.fullmatch(text):
        raise _Unreadable(f"must be a number such as 12, 12.5 or 12,5, got {shown(text)}")
    return float(text.replace(",", ".")) if "." in text or "," in text else int(text)


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise _Unreadable(f"must be true or false (or ja/nee, 1/0), got {shown(text)}") from None


def _converter(annotation: Any) -> Callable[[str], Any]:
    types = {annotation, *get_args(annotation)}
    if bool in types:
        return _boolean
    if int in types or float in types:
        return _number
    return str  # text, dates and code values are checked by the model as JSON text is


_CONVERTERS: dict[SignalKind, dict[str, Callable[[str], Any]]] = {
    kind: {name: _converter(info.annotation) for name, info in model.model_fields.items()}
    for kind, model in DATA_MODELS.items()
}


def parse_signals_csv(
    text: str,
    *,
    source: str,
    now: datetime,
    max_rows: int = 10_000,
    max_age: timedelta | None = timedelta(days=730),
) -> list[SignalIn]:
    """The signals of a CSV file, or `SignalsRefused` naming every bad row and column."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    # Excel in a Dutch locale writes `;` between cells, which leaves the comma to decimals.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        message = f"{source} is not a readable CSV file ({exc})"
        raise SignalsRefused([FieldError("", message)]) from exc
    records = [record for record in records if record]  # csv.DictReader skips blank lines too
    if not records:
        raise SignalsRefused([FieldError("header", f"{source} is empty; {_HEADER_HINT}")])
    header = [name.strip() for name in records[0]]
    _check_header(header)
    rows = records[1:]
    if not rows:
        raise SignalsRefused([FieldError("", f"{source} has no rows after the header")])
    if len(rows) > max_rows:
        message = f"{source} holds {len(rows)} rows; at most {max_rows} per file, split it"
        raise SignalsRefused([FieldError("", message)])
    errors: list[FieldError] = []
    signals: list[SignalIn] = []
    numbered_items: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(rows, start=1):
        item, problems = _row_payload(header, values)
        errors.extend(FieldError(_path(number, loc), message) for loc, message in problems)
        if item is None:
            continue
        numbered_items.append((number, item))
        signal, found = check_signal(item, now=now, max_age=max_age, clock_skew=CLOCK_SKEW)
        # A cell refused above is not also "required", nor missing from "at least one of".
        reported = {loc for loc, _ in problems} | ({("data",)} if problems else set())
        errors.extend(
            FieldError(_path(number, loc), message) for loc, message in found if loc not in reported
        )
        if signal is not None and not problems:
            signals.append(signal)
    for index, first in repeated_ids(item for _, item in numbered_items):
        number, earlier = numbered_items[index][0], numbered_items[first][0]
        errors.append(FieldError(_path(number, ("id",)), f"repeats the id of row {earlier}"))
    if errors:
        raise SignalsRefused(sorted(errors, key=_row_number))
    return signals


def _check_header(header: list[str]) -> None:
    errors = []
    seen: set[str] = set()
    for name in header:
        if name in seen and name:
            errors.append(FieldError("header", f"column {key_name(name)} appears twice"))
        seen.add(name)
        if name and name not in CSV_COLUMNS:
            close = difflib.get_close_matches(name, CSV_COLUMNS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(FieldError("header", f"unknown column {key_name(name)}{hint}"))
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        message = f"missing column(s) {', '.join(missing)}; {_HEADER_HINT}"
        errors.append(FieldError("header", message))
    if errors:
        raise SignalsRefused(errors)


def _row_payload(
    header: list[str], values: list[str]
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The JSON payload a row stands for, with the cells that cannot be read; None to skip."""
    if len(values) > len(header):
        message = f"has {len(values)} values but the header names {len(header)} columns"
        return None, [((), message)]
    cells = {name: value.strip() for name, value in zip(header, values, strict=False)}
    unnamed = [index for index, name in enumerate(header) if not name and index < len(values)]
    if not any(cells.values()) and not any(values[index].strip() for index in unnamed):
        return None, []
    problems: list[Problem] = [
        ((f"column {index + 1}",), "has a value but no name in the header")
        for index in unnamed
        if values[index].strip()
    ]
    item: dict[str, Any] = {name: cells[name] for name in SIGNAL_COLUMNS if cells.get(name)}
    kind = cells.get("kind", "")
    converters = _CONVERTERS.get(SignalKind(kind)) if kind in _KIND_VALUES else None
    data: dict[str, Any] = {}
    for name in DATA_COLUMNS:
        text = cells.get(name)
        if not text or converters is None:
            continue  # an unknown kind is reported by check_signal; its cells cannot be judged
        if name not in converters:
            problems.append((("data", name), f"does not belong to a {kind} signal"))
            continue
        try:
            data[name] = converters[name](text)
        except _Unreadable as exc:
            problems.append((("data", name), str(exc)))
    item["data"] = data
    return item, problems


def _path(number: int, loc: Loc) -> str:
    """`row 3 · sick_leave_pct`: the row, then the column (a data field is its own column)."""
    column = [part for part in loc if part != "data"][-1:]
    return f"row {number} · {column[0]}" if column else f"row {number}"


def _row_number(error: FieldError) -> int:
    """Errors by row (a repeated id is found last but belongs with its row); file-wide first."""
    prefix = error.path.split(" · ")[0]
    return int(prefix[4:]) if prefix.startswith("row ") else 0


def _sample_csv() -> str:
    """One row per kind, written with the csv module so it always matches `CSV_COLUMNS`."""
    rows: list[dict[str, str]] = [
        {"kind": "staffing", "fte_budgeted": "24", "fte_filled": "19,5", "sick_leave_pct": "8.2"},
        {
            "kind": "waitlist",
            "waiting_count": "41",
            "aanmeldwachttijd_weeks": "6",
            "behandelwachttijd_weeks": "13,5",
        },
        {"kind": "capacity", "beds_total": "12", "beds_occupied": "12", "beds_closed": "2"},
        {
            "kind": "admission_stop",
            "active": "ja",
            "since": "2026-11-02",
            "expected_until": "2026-12-01",
        },
        {
            "kind": "closure",
            "effective_date": "2027-03-01",
            "scope": "partial",
            "capacity_lost": "4",
        },
        {
            "kind": "contract",
            "status": "at_risk",
            "effective_date": "2027-01-01",
            "note": "budget ceiling near",
        },
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {"department": "HIC-ZWOLLE", "observed_at": "2026-11-02T09:30:00+01:00", **row}
        )
    return out.getvalue()


SAMPLE_CSV: str = _sample_csv()

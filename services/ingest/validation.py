"""Checking incoming signals against the Signal v1 contract, without I/O.

The reader of every message here is a developer at a care provider fixing their export. So a
refusal names each bad field by its path (`signals[3].data.sick_leave_pct`), says what is
allowed in the words of the contract (bounds with their unit, the kinds, the date format) and
what arrived, and reports every problem at once rather than one per attempt. Pydantic does the
type and range checks; its error type and context are turned into these messages here.

Two things are never echoed: a note or reason (it may hold the very personal data it is refused
for) and overly long values. Any decoded JSON, however wrong, ends in `SignalsRefused`; nothing
else is raised.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from services.core.domain import SignalKind
from services.core.privacy import contains_bsn
from services.ingest.schemas import DATA_MODELS, ClosureData, SignalData, SignalIn

MAX_ERRORS = 100
# NUL and other control characters cannot be stored in PostgreSQL text or read back safely.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BSN_MESSAGE = (
    "contains a number shaped like a BSN (citizen service number); signals carry aggregates only"
)
KINDS = ", ".join(kind.value for kind in SignalKind)
_FREE_TEXT = ("note", "reason")  # never echoed: may hold the personal data it is refused for
_FIELD_OWNER = {name: kind for kind, model in DATA_MODELS.items() for name in model.model_fields}
_PATTERNS = {
    "department": "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    "provider_agb": "must be an AGB code of 8 digits (as text, leading zeros kept)",
}

_KIND_VALUES = frozenset(kind.value for kind in SignalKind)
_NUMBER_ERRORS = frozenset(("int_type", "int_from_float", "float_type", "finite_number"))

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


@dataclass(frozen=True)
class FieldError:
    """One problem: where (`signals[3].data.sick_leave_pct`) and what, in one line."""

    path: str
    message: str


class SignalsRefused(Exception):
    """The input is refused whole; `errors` lists every problem found (at most 100)."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if len(errors) > MAX_ERRORS:
            more = len(errors) - (MAX_ERRORS - 1)
            errors = [*errors[: MAX_ERRORS - 1], FieldError("", f"…and {more} more")]
        self.errors = list(errors)
        super().__init__(
            "; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in errors)
        )


def parse_signals(
    payload: Any,
    *,
    now: datetime,
    max_batch: int = 500,
    max_age: timedelta | None = timedelta(days=730),
    clock_skew: timedelta = timedelta(minutes=5),
) -> tuple[list[SignalIn], bool]:
    """Validate one signal or `{"signals": [...]}`; returns (signals, is_batch) or raises."""
    if not isinstance(payload, dict):
        message = 'must be a JSON object: one signal, or {"signals": [...]} for a batch'
        raise SignalsRefused([FieldError("", f"{message}, got {shown(payload)}")])
    if "signals" not in payload:
        signal, problems = check_signal(payload, now=now, max_age=max_age, clock_skew=clock_skew)
        if problems:
            raise SignalsRefused([FieldError(render(loc), message) for loc, message in problems])
        assert signal is not None
        return [signal], False
    errors = [
        FieldError(key_path(key), f"unknown field {key_name(key)}; a batch holds only 'signals'")
        for key in payload
        if key != "signals"
    ]
    items = payload["signals"]
    if not isinstance(items, list):
        errors.append(FieldError("signals", f"must be a list of signals, got {shown(items)}"))
    elif not items:
        errors.append(FieldError("signals", "is empty; send at least one signal"))
    elif len(items) > max_batch:
        message = f"holds {len(items)} signals; a batch holds at most {max_batch}, split it"
        errors.append(FieldError("signals", message))
    if errors:
        raise SignalsRefused(errors)
    signals = []
    for index, item in enumerate(items):
        signal, problems = check_signal(item, now=now, max_age=max_age, clock_skew=clock_skew)
        errors.extend(FieldError(render(loc, f"signals[{index}]"), m) for loc, m in problems)
        if signal is not None:
            signals.append(signal)
    for index, first in repeated_ids(items):
        errors.append(FieldError(f"signals[{index}].id", f"repeats signals[{first}].id"))
    if errors:
        raise SignalsRefused(errors)
    return signals, True


def check_signal(
    item: Any, *, now: datetime, max_age: timedelta | None, clock_skew: timedelta
) -> tuple[SignalIn | None, list[Problem]]:
    """One signal: the validated signal, or None with its problems (paths relative to it)."""
    if not isinstance(item, dict):
        return None, [((), f"must be an object (one signal), got {shown(item)}")]
    try:
        envelope = SignalIn.model_validate(item)
    except ValidationError as exc:
        envelope, problems = None, describe(exc, SignalIn)
    else:
        problems = []
    raw_kind = item.get("kind")
    kind = SignalKind(raw_kind) if isinstance(raw_kind, str) and raw_kind in _KIND_VALUES else None
    data = item.get("data")
    record: SignalData | None = None
    if kind is not None and isinstance(data, dict):
        model = DATA_MODELS[kind]
        try:
            record = model.model_validate(data)
        except ValidationError as exc:
            problems.extend(describe(exc, model, prefix=("data",), kind=kind))
        else:
            problems.extend((_data_loc(name), m) for name, m in record.inconsistencies())
    observed = _observed_at(item, envelope, problems)
    if observed is not None:
        problems.extend(_timing(observed, record, now, max_age, clock_skew))
    for loc, text in (
        (("note",), item.get("note")),
        (("data", "reason"), getattr(record, "reason", None)),
    ):
        if isinstance(text, str) and contains_bsn(text):
            problems.append((loc, f"{loc[-1]} {BSN_MESSAGE}"))
        elif isinstance(text, str) and _CONTROL.search(text):
            problems.append((loc, "must not contain control characters (only tab and newline)"))
    if problems or envelope is None or record is None:
        return None, problems
    dumped = record.model_dump(mode="json", exclude_none=True)
    return envelope.model_copy(update={"data": dumped}), []


def _data_loc(name: str) -> Loc:
    return ("data", name) if name else ("data",)


def _observed_at(
    item: dict[Any, Any], envelope: SignalIn | None, problems: list[Problem]
) -> datetime | None:
    """The valid observed_at, also when other fields of the signal are bad."""
    if envelope is not None:
        return envelope.observed_at
    if any(loc[:1] == ("observed_at",) for loc, _ in problems):
        return None
    value = item["observed_at"]  # valid, so a datetime or ISO text that parses
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _timing(
    observed: datetime,
    record: SignalData | None,
    now: datetime,
    max_age: timedelta | None,
    clock_skew: timedelta,
) -> list[Problem]:
    """Not from the future, not too old; a closure takes effect on or after its announcement."""
    found: list[Problem] = []
    if observed > now + clock_skew:
        stamp = now.astimezone(UTC).isoformat()
        found.append(
            (("observed_at",), f"{observed.isoformat()} is in the future (received at {stamp})")
        )
    elif max_age is not None and observed < now - max_age:
        found.append((("observed_at",), f"{observed.isoformat()} is more than {age(max_age)} old"))
    if isinstance(record, ClosureData) and record.effective_date < observed.date():
        found.append(
            (
                ("data", "effective_date"),
                f"effective_date {record.effective_date} is before the announcement"
                f" (observed_at {observed.date()})",
            )
        )
    return found


def repeated_ids(items: Iterable[Any]) -> list[tuple[int, int]]:
    """(index, index of first use) for every client id used again within the same input."""
    first: dict[uuid.UUID, int] = {}
    found = []
    for index, item in enumerate(items):
        raw = item.get("id") if isinstance(item, dict) else None
        try:
            key = uuid.UUID(raw) if isinstance(raw, str) else None
        except ValueError:
            key = None
        if key is None:
            continue
        if key in first:
            found.append((index, first[key]))
        else:
            first[key] = index
    return found


# --- messages ----------------------------------------------------------------------------------


def describe(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    prefix: Loc = (),
    kind: SignalKind | None = None,
) -> list[Problem]:
    """Pydantic's errors as (location, message), in the contract's words."""
    return [
        ((*prefix, *error["loc"]), _message(error, model, kind))
        for error in exc.errors(include_url=False)
    ]


def _message(error: ErrorDetails, model: type[BaseModel], kind: SignalKind | None) -> str:
    kind_of_error, loc, value = error["type"], error["loc"], error["input"]
    name = str(loc[-1]) if loc else ""
    info = model.model_fields.get(name)
    got = "" if name in _FREE_TEXT else f", got {shown(value)}"
    if kind_of_error == "missing":
        return "is required"
    if kind_of_error == "extra_forbidden":
        return _unknown_field(name, model, kind)
    if kind_of_error in _NUMBER_ERRORS:
        wanted = "a whole number" if kind_of_error.startswith("int") else "a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number{got}"
        if isinstance(value, str):
            return f"must be {wanted}, not text (leave out the quotes){got}"
        if _is_number(value) and kind_of_error == "float_type":
            return _out_of_range(info) + got  # an integer too large to be a float
        return f"must be {wanted}{got}"
    if kind_of_error in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        return _out_of_range(info) + got
    if kind_of_error == "bool_type":
        return f"must be true or false{got}"
    if kind_of_error in ("string_type", "string_unicode"):
        return f"must be text{got}"
    if kind_of_error == "string_too_long":
        limit = (error.get("ctx") or {}).get("max_length")
        return f"must be at most {limit} characters, got {len(value)}"
    if kind_of_error == "string_too_short":
        return "must not be empty"
    if kind_of_error == "string_pattern_mismatch":
        return _PATTERNS.get(name, "has the wrong form") + got
    if kind_of_error == "enum" and name == "kind":
        return f"must be one of {KINDS}{got}"
    if kind_of_error == "literal_error":
        return f"must be {(error.get('ctx') or {}).get('expected')}{got}"
    if kind_of_error in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be an object{got}"
    if kind_of_error.startswith("uuid") or (kind_of_error == "is_instance_of" and name == "id"):
        return f"must be a UUID such as 0b6f2c1e-8f4e-4a57-9a7e-3f1d2c9b7a10{got}"
    if kind_of_error == "timezone_aware":
        return f"must carry a timezone offset: add one such as +01:00 or Z{got}"
    if kind_of_error.startswith("datetime"):
        return f"must be a date and time such as 2026-11-01T00:00:00+01:00{got}"
    if kind_of_error.startswith("date"):
        return f"must be a date written YYYY-MM-DD{got}"
    if kind_of_error == "invalid_key":
        return "field names must be text"
    return f"{error['msg']}{got}"


def _unknown_field(name: str, model: type[BaseModel], kind: SignalKind | None) -> str:
    shown_name = key_name(name)
    owner = _FIELD_OWNER.get(name)
    if kind is not None and owner is not None:
        return f"unknown field {shown_name}: it belongs to a {owner} signal, not {kind}"
    if model is SignalIn and owner is not None:
        return f"unknown field {shown_name}: the fields of a {owner} signal go inside 'data'"
    close = difflib.get_close_matches(name, list(model.model_fields), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field {shown_name}{hint}"


def _out_of_range(info: FieldInfo | None) -> str:
    low: Any = None
    high: Any = None
    exclusive = False
    for rule in info.metadata if info else ():
        if isinstance(rule, Ge):
            low = rule.ge
        elif isinstance(rule, Gt):
            low, exclusive = rule.gt, True
        elif isinstance(rule, Le):
            high = rule.le
    extra = info.json_schema_extra if info else None
    unit = f" ({extra['x-unit']})" if isinstance(extra, dict) and "x-unit" in extra else ""
    lower = f"more than {_number(low)}" if exclusive else f"at least {_number(low)}"
    if low is not None and high is not None:
        if exclusive:
            return f"must be {lower} and at most {_number(high)}{unit}"
        return f"must be between {_number(low)} and {_number(high)}{unit}"
    if low is not None:
        return f"must be {lower}{unit}"
    return f"must be at most {_number(high)}{unit}" if high is not None else "is out of range"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def shown(value: Any) -> str:
    """A value as the sender wrote it in JSON, short: 140, 'abc', null, true, a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        digits = len(str(abs(value))) if abs(value) < 10**40 else 41
        return str(value) if digits <= 20 else "a number of more than 20 digits"
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
        return _number(value)
    if isinstance(value, date):  # parsed from the sender's text on the way in
        value = value.isoformat()
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + "…"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def age(span: timedelta) -> str:
    """'2 years', '30 days', '6 hours' for a maximum age."""
    if span.days and span.days % 365 == 0:
        years = span.days // 365
        return f"{years} year{'s' if years != 1 else ''}"
    if span.days:
        return f"{span.days} day{'s' if span.days != 1 else ''}"
    return f"{int(span.total_seconds() // 3600)} hours"


def key_name(key: Any) -> str:
    """A field name quoted for a message, cut short when absurdly long."""
    text = str(key)
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "…"


def key_path(key: Any) -> str:
    """A field name as a path element, cut short when absurdly long."""
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "…"


def render(loc: Loc, prefix: str = "") -> str:
    """`signals[3].data.sick_leave_pct` from a prefix and a location."""
    parts = [prefix] if prefix else []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(key_path(part))
    return ".".join(parts)


# --- fingerprint --------------------------------------------------------------------------------


def body_hash(signal: SignalIn) -> str:
    """Hex SHA-256 of the signal's content (not its id): tells a retry from a reused id."""
    content: Mapping[str, Any] = {
        "department": signal.department,
        "provider_agb": signal.provider_agb,
        "kind": signal.kind.value,
        "observed_at": signal.observed_at.astimezone(UTC).isoformat(),
        "data": signal.data,
        "note": signal.note,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()

"""The reference files: their rows, and reading them with every row checked.

A file with any bad row is refused whole, with every problem and its row. The packaged files (this
folder; its README says where each comes from) are read once per process. Nothing here touches the
database: `loading` puts the rows there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

from services.core.csvfile import NumberedRows, parse_csv, read_csv, refuse_if
from services.core.domain import SLUG_PATTERN, Cluster, Scope, is_agb

REGION_COLUMNS = ("code", "name", "mandate_municipality")
CARE_TYPE_COLUMNS = (
    "code",
    "cluster",
    "name_nl",
    "name_en",
    "default_scope",
    "waiting_norms_apply",
    "has_beds",
    "sort_order",
    "status",
    "description",
    "source",
)
NORM_COLUMNS = (
    "code",
    "name",
    "aanmeldwachttijd_weeks",
    "behandelwachttijd_weeks",
    "total_weeks",
    "valid_from",
    "valid_to",
    "source",
)
REGIONAL_TABLE_PREFIX = "Regionale tafel "

_PACKAGE = "services.core.reference"  # where the packaged files are (package data)
_NAME_MAX = 200  # organisations.name and regions.name
_REGION_NAME_MAX = _NAME_MAX - len(REGIONAL_TABLE_PREFIX)  # the table's name must fit too
_CODE_MAX = 64
_CARE_TYPE_CODE = re.compile(r"^[a-z][a-z_]*\.[a-z0-9][a-z0-9_]*$")
_NORM_CODE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
_WEEKS_MAX = Decimal("999.99")  # NUMERIC(5, 2)
_BOOLEANS = {"true": True, "false": False}
_Choice = TypeVar("_Choice", bound=StrEnum)


@dataclass(frozen=True)
class RegionRow:
    """One IZA region as a file gives it; `code` is the stable key, the name may change."""

    code: str
    name: str
    mandate_municipality: str | None = None


@dataclass(frozen=True)
class CareTypeRow:
    """One crucial care type, e.g. `acute.hic` in cluster `acute`."""

    code: str
    cluster: Cluster
    name_nl: str
    name_en: str
    default_scope: Scope
    waiting_norms_apply: bool
    has_beds: bool
    sort_order: int
    status: str
    description: str
    source: str


@dataclass(frozen=True)
class NormRow:
    """One version of a waiting-time norm, valid from a date (until `valid_to`, exclusive)."""

    code: str
    name: str
    aanmeldwachttijd_weeks: Decimal
    behandelwachttijd_weeks: Decimal
    total_weeks: Decimal
    valid_from: date
    valid_to: date | None
    source: str


def regional_table_name(region_name: str) -> str:
    """The name of a region's regional table, e.g. 'Regionale tafel Twente'."""
    return f"{REGIONAL_TABLE_PREFIX}{region_name}"


def _refuse(source: str, problems: Iterable[tuple[int, str]]) -> None:
    """Refuse the whole input, one line per problem in row order, each naming its row."""
    ordered = sorted(problems, key=lambda problem: problem[0])
    refuse_if(source, [f"row {row}: {text}" for row, text in ordered])


def _text_problems(label: str, value: str, maximum: int, *, required: bool = True) -> list[str]:
    if not value:
        return [f"{label} is empty"] if required else []
    if len(value) > maximum:
        return [f"{label} is longer than {maximum} characters"]
    return []


# --- regions --------------------------------------------------------------------------------------


def _region_problems(numbered: Iterable[tuple[int, RegionRow]]) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    codes: dict[str, int] = {}
    names: dict[str, int] = {}
    for number, row in numbered:
        if not row.code:
            problems.append((number, "code is empty"))
        elif not SLUG_PATTERN.match(row.code):
            problems.append(
                (number, f"code {row.code!r} is not a slug (lowercase letters, digits and dashes)")
            )
        elif len(row.code) > _CODE_MAX:
            problems.append((number, f"code {row.code!r} is longer than {_CODE_MAX} characters"))
        elif row.code in codes:
            problems.append((number, f"code {row.code!r} is also in row {codes[row.code]}"))
        else:
            codes[row.code] = number
        problems += [(number, p) for p in _text_problems("name", row.name, _REGION_NAME_MAX)]
        key = row.name.casefold()
        if row.name and key in names:
            problems.append((number, f"name {row.name!r} is also in row {names[key]}"))
        elif row.name:
            names[key] = number
        problems += [
            (number, p)
            for p in _text_problems(
                "mandate_municipality", row.mandate_municipality or "", _NAME_MAX, required=False
            )
        ]
    return problems


def check_regions(rows: Sequence[RegionRow], source: str = "regions") -> None:
    """Refuse a region list whole if any row is bad (the first row is row 1)."""
    _refuse(source, _region_problems(enumerate(rows, start=1)))


def _parse_regions(table: NumberedRows, source: str) -> list[RegionRow]:
    numbered = [
        (
            number,
            RegionRow(
                code=values["code"],
                name=values["name"],
                mandate_municipality=values["mandate_municipality"] or None,
            ),
        )
        for number, values in table
    ]
    _refuse(source, _region_problems(numbered))
    return [row for _, row in numbered]


# --- care types -----------------------------------------------------------------------------------


def _parse_bool(label: str, value: str, problems: list[str]) -> bool:
    if value.lower() not in _BOOLEANS:
        problems.append(f"{label} {value!r} is not true or false")
        return False
    return _BOOLEANS[value.lower()]


def _parse_choice(
    label: str, value: str, choices: type[_Choice], problems: list[str]
) -> _Choice | None:
    try:
        return choices(value)
    except ValueError:
        problems.append(f"{label} {value!r} is not one of {', '.join(choices)}")
        return None


def _parse_care_types(table: NumberedRows, source: str) -> list[CareTypeRow]:
    problems: list[tuple[int, str]] = []
    rows: list[CareTypeRow] = []
    seen: dict[str, int] = {}
    for number, values in table:
        found: list[str] = []
        code = values["code"]
        if not _CARE_TYPE_CODE.match(code) or len(code) > _CODE_MAX:
            found.append(f"code {code!r} is not <cluster>.<name> in lowercase")
        elif code in seen:
            found.append(f"code {code!r} is also in row {seen[code]}")
        else:
            seen[code] = number
        cluster = _parse_choice("cluster", values["cluster"], Cluster, found)
        prefix = code.split(".", 1)[0]
        if cluster is not None and _CARE_TYPE_CODE.match(code) and prefix != cluster.value:
            found.append(f"code {code!r} does not start with its cluster {cluster.value!r}")
        scope = _parse_choice("default_scope", values["default_scope"], Scope, found)
        norms = _parse_bool("waiting_norms_apply", values["waiting_norms_apply"], found)
        beds = _parse_bool("has_beds", values["has_beds"], found)
        sort_order = 0
        try:
            sort_order = int(values["sort_order"])
        except ValueError:
            found.append(f"sort_order {values['sort_order']!r} is not a whole number")
        for label, limit in (("name_nl", _NAME_MAX), ("name_en", _NAME_MAX), ("status", 32)):
            found += _text_problems(label, values[label], limit)
        found += _text_problems("source", values["source"], 10_000)
        problems += [(number, p) for p in found]
        if not found and cluster is not None and scope is not None:
            rows.append(
                CareTypeRow(
                    code=code,
                    cluster=cluster,
                    name_nl=values["name_nl"],
                    name_en=values["name_en"],
                    default_scope=scope,
                    waiting_norms_apply=norms,
                    has_beds=beds,
                    sort_order=sort_order,
                    status=values["status"],
                    description=values["description"],
                    source=values["source"],
                )
            )
    _refuse(source, problems)
    return rows


# --- waiting-time norms ---------------------------------------------------------------------------


def _parse_weeks(label: str, value: str, problems: list[str]) -> Decimal:
    try:
        weeks = Decimal(value)
    except InvalidOperation:
        problems.append(f"{label} {value!r} is not a number of weeks")
        return Decimal(0)
    if not weeks.is_finite() or weeks < 0 or weeks > _WEEKS_MAX or weeks != round(weeks, 2):
        problems.append(f"{label} {value!r} is not between 0 and {_WEEKS_MAX} (two decimals)")
    return weeks


def _parse_date(label: str, value: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label} {value!r} is not a date (YYYY-MM-DD)")
        return None


def _overlaps(rows: Iterable[tuple[int, NormRow]]) -> list[tuple[int, str]]:
    """Versions of one norm must not overlap: the new version starts where the old one ends."""
    by_code: dict[str, list[tuple[int, NormRow]]] = {}
    for number, row in rows:
        by_code.setdefault(row.code, []).append((number, row))
    problems: list[tuple[int, str]] = []
    for versions in by_code.values():
        versions.sort(key=lambda item: item[1].valid_from)
        for (_, earlier), (number, later) in pairwise(versions):
            if earlier.valid_to is None or earlier.valid_to > later.valid_from:
                problems.append(
                    (
                        number,
                        f"{later.code} from {later.valid_from} overlaps the version from"
                        f" {earlier.valid_from}; end that one (valid_to) first",
                    )
                )
    return problems


def _parse_norms(table: NumberedRows, source: str) -> list[NormRow]:
    problems: list[tuple[int, str]] = []
    rows: list[tuple[int, NormRow]] = []
    for number, values in table:
        found: list[str] = []
        code = values["code"]
        if not _NORM_CODE.match(code) or len(code) > _CODE_MAX:
            found.append(f"code {code!r} is not a lowercase dotted code like 'treeknorm.ggz'")
        found += _text_problems("name", values["name"], _NAME_MAX)
        found += _text_problems("source", values["source"], 10_000)
        aanmeld = _parse_weeks("aanmeldwachttijd_weeks", values["aanmeldwachttijd_weeks"], found)
        behandel = _parse_weeks("behandelwachttijd_weeks", values["behandelwachttijd_weeks"], found)
        total = _parse_weeks("total_weeks", values["total_weeks"], found)
        valid_from = _parse_date("valid_from", values["valid_from"], found)
        valid_to = (
            _parse_date("valid_to", values["valid_to"], found) if values["valid_to"] else None
        )
        if valid_from is not None and valid_to is not None and valid_to <= valid_from:
            found.append(f"valid_to {valid_to} is not after valid_from {valid_from}")
        problems += [(number, p) for p in found]
        if not found and valid_from is not None:
            row = NormRow(
                code=code,
                name=values["name"],
                aanmeldwachttijd_weeks=aanmeld,
                behandelwachttijd_weeks=behandel,
                total_weeks=total,
                valid_from=valid_from,
                valid_to=valid_to,
                source=values["source"],
            )
            rows.append((number, row))
    _refuse(source, problems + _overlaps(rows))
    return [row for _, row in rows]


# --- files an operator gives ----------------------------------------------------------------------


def read_regions_csv(path: Path) -> list[RegionRow]:
    """Read and check a region list (`code,name,mandate_municipality`); refuse it whole if bad."""
    return _parse_regions(read_csv(path, REGION_COLUMNS), path.name)


def read_care_types_csv(path: Path) -> list[CareTypeRow]:
    """Read and check a care-type list in the packaged file's columns; refuse it whole if bad."""
    return _parse_care_types(read_csv(path, CARE_TYPE_COLUMNS), path.name)


def read_norms_csv(path: Path) -> list[NormRow]:
    """Read and check a waiting-time norm list in the packaged columns; refuse it whole if bad."""
    return _parse_norms(read_csv(path, NORM_COLUMNS), path.name)


# --- the packaged files ---------------------------------------------------------------------------


def _packaged(name: str, columns: Sequence[str]) -> NumberedRows:
    text = resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return parse_csv(text, name, columns)


@lru_cache(maxsize=1)
def _packaged_regions() -> tuple[RegionRow, ...]:
    name = "iza_regions.csv"
    return tuple(_parse_regions(_packaged(name, REGION_COLUMNS), name))


@lru_cache(maxsize=1)
def _packaged_care_types() -> tuple[CareTypeRow, ...]:
    name = "care_types.csv"
    return tuple(_parse_care_types(_packaged(name, CARE_TYPE_COLUMNS), name))


@lru_cache(maxsize=1)
def _packaged_norms() -> tuple[NormRow, ...]:
    name = "waiting_time_norms.csv"
    return tuple(_parse_norms(_packaged(name, NORM_COLUMNS), name))


@lru_cache(maxsize=1)
def _provider_kinds() -> dict[str, str]:
    table = _packaged("agb_provider_kinds.csv", ("code", "name"))
    return {values["code"]: values["name"] for _, values in table}


def packaged_regions() -> list[RegionRow]:
    """The 42 IZA regions shipped with the package."""
    return list(_packaged_regions())


def packaged_care_types() -> list[CareTypeRow]:
    """The crucial care types shipped with the package, in their sort order."""
    return sorted(_packaged_care_types(), key=lambda row: (row.sort_order, row.code))


def packaged_norms() -> list[NormRow]:
    """The waiting-time norms shipped with the package (one row per version)."""
    return list(_packaged_norms())


def provider_kind(agb_code: str) -> str | None:
    """The Vektis provider kind of an AGB code, for display only; None when unknown."""
    code = agb_code.strip()
    if not is_agb(code):
        return None
    return _provider_kinds().get(code[:2])

"""Reference data shipped with the package, and its idempotent loading into the database.

The files live in `services/core/reference/` (see its README for where each comes from): the IZA
regions, the crucial care types, the waiting-time norms and the Vektis provider kinds. Reading a
file checks every row and refuses the whole file with all its problems; loading upserts by the
stable code, so loading twice changes nothing and a renamed region keeps its id (and with it the
history of its departments). Loading never commits: the caller owns the transaction.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import CareType, Organisation, Region, WaitingTimeNorm
from services.core.domain import SLUG_PATTERN, Cluster, OrgKind, Scope, is_agb
from services.core.errors import Conflict, InvalidInput

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
NATIONAL_TABLE_NAME = "Landelijke tafel cruciale ggz"
GOVERNANCE_NAME = "Bestuurlijk overleg cruciale ggz"
OPERATOR_NAME = "Beheer Vroegsignaal"
SINGLETON_ORGANISATIONS: tuple[tuple[OrgKind, str], ...] = (
    (OrgKind.NATIONAL_TABLE, NATIONAL_TABLE_NAME),
    (OrgKind.GOVERNANCE, GOVERNANCE_NAME),
    (OrgKind.OPERATOR, OPERATOR_NAME),
)

_PACKAGE = "services.core.reference"
_NAME_MAX = 200  # organisations.name and regions.name
_REGION_NAME_MAX = _NAME_MAX - len(REGIONAL_TABLE_PREFIX)  # the table's name must fit too
_CODE_MAX = 64
_CARE_TYPE_CODE = re.compile(r"^[a-z][a-z_]*\.[a-z0-9][a-z0-9_]*$")
_NORM_CODE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
_WEEKS_MAX = Decimal("999.99")  # NUMERIC(5, 2)
_BOOLEANS = {"true": True, "false": False}
# Serialises loaders of reference data (two `seed` runs at once would race on the inserts).
_LOCK_KEY = 0x5652_4546_0001


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


@dataclass
class UpsertCounts:
    """How many rows a load created, changed and left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as plain JSON-ready values."""
        return asdict(self)


@dataclass
class ImportReport:
    """What a region import did, including the regional tables it made or renamed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    tables_created: int = 0
    tables_renamed: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as plain JSON-ready values."""
        return asdict(self)


@dataclass
class SeedReport:
    """What `seed_reference_data` did, per kind of reference data."""

    regions: ImportReport
    care_types: UpsertCounts
    norms: UpsertCounts
    organisations: UpsertCounts  # the governance organisations: regional tables and singletons

    def as_dict(self) -> dict[str, dict[str, int]]:
        """The counts as plain JSON-ready values, one object per kind."""
        return {
            "regions": self.regions.as_dict(),
            "care_types": self.care_types.as_dict(),
            "norms": self.norms.as_dict(),
            "organisations": self.organisations.as_dict(),
        }


# --- reading files --------------------------------------------------------------------------------


def _table(text: str, source: str, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows numbered as a spreadsheet shows them after the header (line 2 is row 1)."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in columns if column not in header]
        if missing:
            raise InvalidInput(
                f"{source}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}"
            )
        reader.fieldnames = header
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            values = {key: (value or "").strip() for key, value in row.items() if key is not None}
            rows.append((reader.line_num - 1, values))
    except csv.Error as exc:
        raise InvalidInput(f"{source}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InvalidInput(f"{source}: no rows after the header")
    return rows


def _read_text(path: Path) -> str:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{path}: is a directory, not a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text") from exc


def _packaged_text(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _refuse(source: str, problems: Sequence[tuple[int, str]]) -> None:
    """Refuse the whole input, one line per problem, each naming its row."""
    if problems:
        raise InvalidInput("\n".join(f"{source}: row {row}: {text}" for row, text in problems))


def _text_problems(label: str, value: str, maximum: int, *, required: bool = True) -> list[str]:
    if not value:
        return [f"{label} is empty"] if required else []
    if len(value) > maximum:
        return [f"{label} is longer than {maximum} characters"]
    return []


def _region_problems(numbered: Sequence[tuple[int, RegionRow]]) -> list[tuple[int, str]]:
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


def _parse_regions(text: str, source: str) -> list[RegionRow]:
    numbered = [
        (
            number,
            RegionRow(
                code=values["code"],
                name=values["name"],
                mandate_municipality=values["mandate_municipality"] or None,
            ),
        )
        for number, values in _table(text, source, REGION_COLUMNS)
    ]
    _refuse(source, _region_problems(numbered))
    return [row for _, row in numbered]


def _parse_bool(label: str, value: str, problems: list[str]) -> bool:
    if value.lower() not in _BOOLEANS:
        problems.append(f"{label} {value!r} is not true or false")
        return False
    return _BOOLEANS[value.lower()]


def _parse_care_types(text: str, source: str) -> list[CareTypeRow]:
    problems: list[tuple[int, str]] = []
    rows: list[CareTypeRow] = []
    seen: dict[str, int] = {}
    for number, values in _table(text, source, CARE_TYPE_COLUMNS):
        found: list[str] = []
        code = values["code"]
        if not _CARE_TYPE_CODE.match(code) or len(code) > _CODE_MAX:
            found.append(f"code {code!r} is not <cluster>.<name> in lowercase")
        elif code in seen:
            found.append(f"code {code!r} is also in row {seen[code]}")
        else:
            seen[code] = number
        cluster = Cluster.ACUTE
        try:
            cluster = Cluster(values["cluster"])
        except ValueError:
            found.append(
                f"cluster {values['cluster']!r} is not one of {', '.join(c.value for c in Cluster)}"
            )
        else:
            if _CARE_TYPE_CODE.match(code) and code.split(".", 1)[0] != cluster.value:
                found.append(f"code {code!r} does not start with its cluster {cluster.value!r}")
        scope = Scope.REGIONAL
        try:
            scope = Scope(values["default_scope"])
        except ValueError:
            found.append(
                f"default_scope {values['default_scope']!r} is not"
                f" {' or '.join(s.value for s in Scope)}"
            )
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
        if not found:
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


def _parse_norms(text: str, source: str) -> list[NormRow]:
    problems: list[tuple[int, str]] = []
    rows: list[tuple[int, NormRow]] = []
    for number, values in _table(text, source, NORM_COLUMNS):
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
    # Versions of one norm must not overlap: the new version starts where the old one ends.
    by_code: dict[str, list[tuple[int, NormRow]]] = {}
    for number, row in rows:
        by_code.setdefault(row.code, []).append((number, row))
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
    _refuse(source, sorted(problems))
    return [row for _, row in rows]


def read_regions_csv(path: Path) -> list[RegionRow]:
    """Read and check a region list (`code,name,mandate_municipality`); refuse it whole if bad."""
    return _parse_regions(_read_text(path), path.name)


def read_care_types_csv(path: Path) -> list[CareTypeRow]:
    """Read and check a care-type list in the packaged file's columns; refuse it whole if bad."""
    return _parse_care_types(_read_text(path), path.name)


def read_norms_csv(path: Path) -> list[NormRow]:
    """Read and check a waiting-time norm list in the packaged columns; refuse it whole if bad."""
    return _parse_norms(_read_text(path), path.name)


@lru_cache(maxsize=1)
def _packaged_regions() -> tuple[RegionRow, ...]:
    return tuple(_parse_regions(_packaged_text("iza_regions.csv"), "iza_regions.csv"))


@lru_cache(maxsize=1)
def _packaged_care_types() -> tuple[CareTypeRow, ...]:
    return tuple(_parse_care_types(_packaged_text("care_types.csv"), "care_types.csv"))


@lru_cache(maxsize=1)
def _packaged_norms() -> tuple[NormRow, ...]:
    return tuple(_parse_norms(_packaged_text("waiting_time_norms.csv"), "waiting_time_norms.csv"))


@lru_cache(maxsize=1)
def _provider_kinds() -> dict[str, str]:
    text = _packaged_text("agb_provider_kinds.csv")
    return {values["code"]: values["name"] for _, values in _table(text, "agb", ("code", "name"))}


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


# --- loading into the database --------------------------------------------------------------------


def regional_table_name(region_name: str) -> str:
    """The name of a region's regional table, e.g. 'Regionale tafel Twente'."""
    return f"{REGIONAL_TABLE_PREFIX}{region_name}"


async def _lock(session: AsyncSession) -> None:
    """Hold the reference-data lock until the caller's transaction ends."""
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


async def _ensure_regional_tables(session: AsyncSession, report: ImportReport) -> None:
    """Give every region its regional table, named after the region (renamed when it is)."""
    regions = (await session.execute(select(Region.id, Region.code, Region.name))).all()
    tables = {
        row.region_id: (row.id, row.name)
        for row in await session.execute(
            select(Organisation.id, Organisation.name, Organisation.region_id).where(
                Organisation.kind == OrgKind.REGIONAL_TABLE
            )
        )
    }
    wanted = {region.id: regional_table_name(region.name) for region in regions}
    codes = {region.id: region.code for region in regions}
    holders = {
        row.name: row
        for row in await session.execute(
            select(Organisation.name, Organisation.kind, Organisation.region_id).where(
                Organisation.name.in_(list(wanted.values()))
            )
        )
    }
    problems = []
    for region_id, name in wanted.items():
        holder = holders.get(name)
        if holder is None or holder.region_id in wanted:
            continue  # free, or held by a regional table that is renamed in this same load
        problems.append(
            f"region {codes[region_id]!r}: its table's name {name!r} is taken by a {holder.kind}"
        )
    if problems:
        raise Conflict("; ".join(problems))
    renames = {
        region_id: (tables[region_id][0], name)
        for region_id, name in wanted.items()
        if region_id in tables and tables[region_id][1] != name
    }
    # Two tables may swap names; park the renamed ones first, since names are unique per row.
    for org_id, _ in renames.values():
        await session.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(name=f"{REGIONAL_TABLE_PREFIX}~{org_id}")
            .execution_options(synchronize_session=False)
        )
    for org_id, name in renames.values():
        await session.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(name=name, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
    missing = [
        {"id": uuid.uuid4(), "kind": OrgKind.REGIONAL_TABLE, "name": name, "region_id": region_id}
        for region_id, name in sorted(wanted.items())
        if region_id not in tables
    ]
    if missing:
        await session.execute(insert(Organisation).values(missing))
    report.tables_created += len(missing)
    report.tables_renamed += len(renames)


async def import_regions(
    session: AsyncSession, rows: list[RegionRow], *, retire_missing: bool = False
) -> ImportReport:
    """Upsert regions by code, give each its regional table; optionally retire the rest."""
    if not rows:
        raise InvalidInput("no regions given; an empty list would retire every region")
    _refuse("regions", _region_problems(list(enumerate(rows, start=1))))
    await _lock(session)
    existing = {
        row.code: row
        for row in await session.execute(
            select(Region.id, Region.code, Region.name, Region.mandate_municipality, Region.active)
        )
    }
    in_file = {row.code for row in rows}
    # A name of a region outside the file stays in use, and so does its table's name.
    taken = {
        region.name.casefold(): region.code
        for region in existing.values()
        if region.code not in in_file
    }
    clashes = [
        f"region {row.code!r}: name {row.name!r} belongs to region {taken[row.name.casefold()]!r};"
        " keep that code to rename it"
        for row in rows
        if row.name.casefold() in taken
    ]
    if clashes:
        raise Conflict("; ".join(clashes))

    report = ImportReport()
    changed: list[RegionRow] = []
    for row in rows:
        old = existing.get(row.code)
        if old is None:
            report.created += 1
            changed.append(row)
        elif (old.name, old.mandate_municipality, old.active) != (
            row.name,
            row.mandate_municipality,
            True,
        ):
            report.updated += 1
            changed.append(row)
        else:
            report.unchanged += 1
    if changed:
        statement = insert(Region).values(
            [
                {
                    "code": row.code,
                    "name": row.name,
                    "mandate_municipality": row.mandate_municipality,
                    "active": True,
                }
                for row in changed
            ]
        )
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Region.code],
                set_={
                    "name": excluded.name,
                    "mandate_municipality": excluded.mandate_municipality,
                    "active": True,
                    "updated_at": func.now(),
                },
                where=or_(
                    Region.name.is_distinct_from(excluded.name),
                    Region.mandate_municipality.is_distinct_from(excluded.mandate_municipality),
                    Region.active.is_not(True),
                ),
            )
        )
    if retire_missing:
        retired = await session.execute(
            update(Region)
            .where(Region.code.not_in(sorted(in_file)), Region.active.is_(True))
            .values(active=False, updated_at=func.now())
            .returning(Region.id)
            .execution_options(synchronize_session=False)
        )
        report.retired = len(retired.all())
    await _ensure_regional_tables(session, report)
    return report


async def _upsert_care_types(session: AsyncSession, rows: Iterable[CareTypeRow]) -> UpsertCounts:
    rows = list(rows)
    fields = [column for column in CARE_TYPE_COLUMNS if column != "code"]
    existing = {
        row.code: row
        for row in await session.execute(
            select(CareType.code, *(getattr(CareType, name) for name in fields))
        )
    }
    counts = UpsertCounts()
    changed: list[dict[str, object]] = []
    for row in rows:
        values = asdict(row)
        old = existing.get(row.code)
        if old is None:
            counts.created += 1
        elif any(getattr(old, name) != values[name] for name in fields):
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        changed.append(values)
    if changed:
        statement = insert(CareType).values(changed)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[CareType.code],
                set_={**{name: excluded[name] for name in fields}, "updated_at": func.now()},
                where=or_(
                    *(getattr(CareType, name).is_distinct_from(excluded[name]) for name in fields)
                ),
            )
        )
    return counts


async def _upsert_norms(session: AsyncSession, rows: Iterable[NormRow]) -> UpsertCounts:
    rows = list(rows)
    fields = [c for c in NORM_COLUMNS if c not in ("code", "valid_from")]
    existing = {
        (row.code, row.valid_from): row
        for row in await session.execute(
            select(
                WaitingTimeNorm.code,
                WaitingTimeNorm.valid_from,
                *(getattr(WaitingTimeNorm, name) for name in fields),
            )
        )
    }
    counts = UpsertCounts()
    changed: list[dict[str, object]] = []
    for row in rows:
        values = asdict(row)
        old = existing.get((row.code, row.valid_from))
        if old is None:
            counts.created += 1
        elif any(getattr(old, name) != values[name] for name in fields):
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        changed.append(values)
    if changed:
        statement = insert(WaitingTimeNorm).values(changed)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[WaitingTimeNorm.code, WaitingTimeNorm.valid_from],
                set_={name: excluded[name] for name in fields},
                where=or_(
                    *(
                        getattr(WaitingTimeNorm, name).is_distinct_from(excluded[name])
                        for name in fields
                    )
                ),
            )
        )
    return counts


async def _ensure_singletons(session: AsyncSession) -> UpsertCounts:
    """The national table, the governance board and the operator: one each, by kind."""
    counts = UpsertCounts()
    for kind, name in SINGLETON_ORGANISATIONS:
        current = (
            await session.execute(
                select(Organisation.id, Organisation.name).where(Organisation.kind == kind)
            )
        ).one_or_none()
        if current is not None and current.name == name:
            counts.unchanged += 1
            continue
        holder = (
            await session.execute(select(Organisation.kind).where(Organisation.name == name))
        ).scalar_one_or_none()
        if holder is not None:
            raise Conflict(f"the name {name!r} of the {kind} is taken by a {holder}")
        if current is None:
            await session.execute(
                insert(Organisation).values(id=uuid.uuid4(), kind=kind, name=name)
            )
            counts.created += 1
        else:
            await session.execute(
                update(Organisation)
                .where(Organisation.id == current.id)
                .values(name=name, updated_at=func.now())
                .execution_options(synchronize_session=False)
            )
            counts.updated += 1
    return counts


async def seed_reference_data(session: AsyncSession) -> SeedReport:
    """Load the packaged reference data and the governance organisations; safe to repeat."""
    await _lock(session)
    regions = await import_regions(session, packaged_regions())
    care_types = await _upsert_care_types(session, packaged_care_types())
    norms = await _upsert_norms(session, packaged_norms())
    singletons = await _ensure_singletons(session)
    region_count = (await session.execute(select(func.count()).select_from(Region))).scalar_one()
    made = regions.tables_created + singletons.created
    renamed = regions.tables_renamed + singletons.updated
    organisations = UpsertCounts(
        created=made,
        updated=renamed,
        unchanged=region_count + len(SINGLETON_ORGANISATIONS) - made - renamed,
    )
    await session.flush()
    return SeedReport(regions, care_types, norms, organisations)

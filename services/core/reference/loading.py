"""Loading reference data into the database, idempotently.

Loading upserts by the stable code, so loading twice changes nothing and a renamed region keeps its
id (and with it the history of its departments). A region an operator imported is the operator's:
loading the packaged list adds the packaged regions that are missing and updates the packaged ones,
but leaves an imported region as it is. Loading never commits: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import CareType, Organisation, Region, WaitingTimeNorm
from services.core.domain import OrgKind, RegionSource
from services.core.errors import Conflict, InvalidInput
from services.core.reference.files import (
    CARE_TYPE_COLUMNS,
    NORM_COLUMNS,
    REGIONAL_TABLE_PREFIX,
    CareTypeRow,
    NormRow,
    RegionRow,
    check_regions,
    packaged_care_types,
    packaged_norms,
    packaged_regions,
    regional_table_name,
)

NATIONAL_TABLE_NAME = "Landelijke tafel cruciale ggz"
GOVERNANCE_NAME = "Bestuurlijk overleg cruciale ggz"
OPERATOR_NAME = "Beheer Vroegsignaal"
SINGLETON_ORGANISATIONS: tuple[tuple[OrgKind, str], ...] = (
    (OrgKind.NATIONAL_TABLE, NATIONAL_TABLE_NAME),
    (OrgKind.GOVERNANCE, GOVERNANCE_NAME),
    (OrgKind.OPERATOR, OPERATOR_NAME),
)

# Serialises loaders of reference data (two `seed` runs at once would race on the inserts).
_LOCK_KEY = 0x5652_4546_0001


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
class ImportReport(UpsertCounts):
    """What a region load did, including the regional tables it made or renamed."""

    # Of `unchanged`: regions an operator imported, which loading the packaged list leaves alone.
    kept_imported: int = 0
    retired: int = 0
    tables_created: int = 0
    tables_renamed: int = 0


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


async def _lock(session: AsyncSession) -> None:
    """Hold the reference-data lock until the caller's transaction ends."""
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


# --- regions and their regional tables ------------------------------------------------------------


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
    session: AsyncSession,
    rows: Sequence[RegionRow],
    *,
    source: RegionSource,
    retire_missing: bool = False,
) -> ImportReport:
    """Upsert regions by code, give each its regional table; optionally retire the rest.

    `source` says whose list it is. An operator's list (`IMPORTED`) marks the regions it creates,
    changes or retires as imported; the packaged list (`PACKAGED`) never changes those again.
    """
    if not rows:
        raise InvalidInput("no regions given; an empty list would retire every region")
    check_regions(rows)
    await _lock(session)
    existing = {
        row.code: row
        for row in await session.execute(
            select(
                Region.id,
                Region.code,
                Region.name,
                Region.mandate_municipality,
                Region.active,
                Region.source,
            )
        )
    }
    listed = sorted({row.code for row in rows})
    report = ImportReport()
    if source is RegionSource.PACKAGED:
        # The operator's regions stay as the operator left them: names, municipality, retirement.
        kept = {
            code
            for code in listed
            if code in existing and existing[code].source is RegionSource.IMPORTED
        }
        report.unchanged = report.kept_imported = len(kept)
        rows = [row for row in rows if row.code not in kept]
    loaded = {row.code for row in rows}
    # A name of a region this load leaves alone stays in use, and so does its table's name.
    taken = {
        region.name.casefold(): region.code
        for region in existing.values()
        if region.code not in loaded
    }
    clashes = [
        f"region {row.code!r}: name {row.name!r} belongs to region {taken[row.name.casefold()]!r};"
        " keep that code to rename it"
        for row in rows
        if row.name.casefold() in taken
    ]
    if clashes:
        raise Conflict("; ".join(clashes))

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
                    "source": source,
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
                    "source": excluded.source,
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
        retiring = update(Region).where(Region.code.not_in(listed), Region.active.is_(True))
        if source is RegionSource.PACKAGED:
            retiring = retiring.where(Region.source == RegionSource.PACKAGED)
        retired = await session.execute(
            retiring.values(active=False, source=source, updated_at=func.now())
            .returning(Region.id)
            .execution_options(synchronize_session=False)
        )
        report.retired = len(retired.all())
    await _ensure_regional_tables(session, report)
    return report


# --- care types, norms and the governance organisations -------------------------------------------


async def _upsert(
    session: AsyncSession,
    model: type[CareType] | type[WaitingTimeNorm],
    rows: Sequence[CareTypeRow | NormRow],
    *,
    columns: Sequence[str],
    keys: Sequence[str],
) -> UpsertCounts:
    """Insert the new rows and update the changed ones, matched by `keys`; count what happened."""
    fields = [name for name in columns if name not in keys]
    existing = {
        tuple(row[name] for name in keys): row
        for row in (
            await session.execute(select(*(getattr(model, name) for name in (*keys, *fields))))
        ).mappings()
    }
    counts = UpsertCounts()
    changed: list[dict[str, object]] = []
    for row in rows:
        values = asdict(row)
        old = existing.get(tuple(values[name] for name in keys))
        if old is None:
            counts.created += 1
        elif any(old[name] != values[name] for name in fields):
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        changed.append(values)
    if changed:
        statement = insert(model).values(changed)
        excluded = statement.excluded
        updates: dict[str, ColumnElement[Any]] = {name: excluded[name] for name in fields}
        if "updated_at" in model.__table__.c:
            updates["updated_at"] = func.now()
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[getattr(model, name) for name in keys],
                set_=updates,
                where=or_(
                    *(getattr(model, name).is_distinct_from(excluded[name]) for name in fields)
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
    regions = await import_regions(session, packaged_regions(), source=RegionSource.PACKAGED)
    care_types = await _upsert(
        session, CareType, packaged_care_types(), columns=CARE_TYPE_COLUMNS, keys=("code",)
    )
    norms = await _upsert(
        session,
        WaitingTimeNorm,
        packaged_norms(),
        columns=NORM_COLUMNS,
        keys=("code", "valid_from"),
    )
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

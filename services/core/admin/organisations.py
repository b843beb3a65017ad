"""Organisations: add providers and insurers, import them from CSV, find one by any reference."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit import record_audit
from services.core.csvfile import read_csv, refuse_if
from services.core.db.models import InsurerRegion, Organisation, Region
from services.core.domain import OrgKind, is_agb, is_uzovi
from services.core.errors import Conflict, InvalidInput, NotFound

ORG_CSV_COLUMNS = ("kind", "name", "agb", "uzovi", "coordinates")
_SINGLETONS = {
    "national_table": OrgKind.NATIONAL_TABLE,
    "governance": OrgKind.GOVERNANCE,
    "operator": OrgKind.OPERATOR,
}


async def resolve_organisation(session: AsyncSession, ref: str) -> Organisation:
    """Find an organisation by AGB code, UZOVI code, region code, role name or exact name."""
    ref = ref.strip()
    if is_agb(ref):
        query = select(Organisation).where(Organisation.agb_code == ref)
        described = f"AGB code {ref}"
    elif is_uzovi(ref):
        query = select(Organisation).where(Organisation.uzovi_code == ref)
        described = f"UZOVI code {ref}"
    elif ref in _SINGLETONS:
        query = select(Organisation).where(Organisation.kind == _SINGLETONS[ref])
        described = ref
    else:
        region_table = (
            select(Organisation)
            .join(Region, Organisation.region_id == Region.id)
            .where(Region.code == ref)
        )
        found = (await session.scalars(region_table)).one_or_none()
        if found is not None:
            return found
        query = select(Organisation).where(Organisation.name == ref)
        described = f"name or region code {ref!r}"
    found = (await session.scalars(query)).one_or_none()
    if found is None:
        hint = " (run `vroegsignaal seed` first?)" if ref in _SINGLETONS else ""
        raise NotFound(f"no organisation with {described}{hint}")
    return found


@dataclass(frozen=True)
class OrganisationSpec:
    """A validated request for a new provider or insurer."""

    kind: OrgKind
    name: str
    agb: str | None = None
    uzovi: str | None = None
    coordinates: tuple[str, ...] = field(default_factory=tuple)


def validate_spec(
    kind: str, name: str, agb: str | None, uzovi: str | None, coordinates: Sequence[str]
) -> OrganisationSpec:
    """Check one organisation's fields on their own; raise with every problem in one line."""
    problems: list[str] = []
    name = name.strip()
    agb = (agb or "").strip() or None
    uzovi = (uzovi or "").strip() or None
    codes = tuple(code.strip() for code in coordinates if code.strip())
    if kind not in (OrgKind.PROVIDER, OrgKind.INSURER):
        raise InvalidInput(f"kind must be provider or insurer, not {kind!r}")
    org_kind = OrgKind(kind)
    if not name:
        problems.append("name is empty")
    elif len(name) > 200:
        problems.append("name is longer than 200 characters")
    if org_kind is OrgKind.PROVIDER:
        if agb is None:
            problems.append("a provider needs its AGB code (--agb, 8 digits)")
        elif not is_agb(agb):
            problems.append(f"AGB code {agb!r} is not 8 digits")
        if uzovi is not None:
            problems.append("a provider has no UZOVI code")
        if codes:
            problems.append("only an insurer coordinates regions")
    else:
        if uzovi is None:
            problems.append("an insurer needs its UZOVI code (--uzovi, 4 digits)")
        elif not is_uzovi(uzovi):
            problems.append(f"UZOVI code {uzovi!r} is not 4 digits")
        if agb is not None:
            problems.append("an insurer has no AGB code")
    if problems:
        raise InvalidInput("; ".join(problems))
    return OrganisationSpec(org_kind, name, agb, uzovi, codes)


async def _conflicts(session: AsyncSession, spec: OrganisationSpec) -> list[str]:
    problems = []
    if await session.scalar(select(Organisation.id).where(Organisation.name == spec.name)):
        problems.append(f"an organisation named {spec.name!r} already exists")
    if spec.agb and await session.scalar(
        select(Organisation.id).where(Organisation.agb_code == spec.agb)
    ):
        problems.append(f"AGB code {spec.agb} is already registered")
    if spec.uzovi and await session.scalar(
        select(Organisation.id).where(Organisation.uzovi_code == spec.uzovi)
    ):
        problems.append(f"UZOVI code {spec.uzovi} is already registered")
    return problems


async def _region_ids(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    wanted = set(codes)
    if not wanted:
        return {}
    rows = await session.execute(select(Region.code, Region.id).where(Region.code.in_(wanted)))
    found = dict(rows.all())
    missing = sorted(wanted - found.keys())
    if missing:
        raise NotFound(f"unknown region code(s): {', '.join(missing)} (see `region list`)")
    return found


async def _insert(
    session: AsyncSession, spec: OrganisationSpec, region_ids: dict[str, int]
) -> Organisation:
    org = Organisation(kind=spec.kind, name=spec.name, agb_code=spec.agb, uzovi_code=spec.uzovi)
    session.add(org)
    await session.flush()
    for code in dict.fromkeys(spec.coordinates):
        session.add(InsurerRegion(insurer_id=org.id, region_id=region_ids[code]))
    await record_audit(
        session,
        action="organisation.created",
        object_type="organisation",
        object_id=str(org.id),
        channel="cli",
        details={"kind": spec.kind.value, "name": spec.name, "coordinates": list(spec.coordinates)},
    )
    return org


async def add_organisation(session: AsyncSession, spec: OrganisationSpec) -> Organisation:
    """Register one provider or insurer (with the regions it coordinates)."""
    problems = await _conflicts(session, spec)
    if problems:
        raise Conflict("; ".join(problems))
    region_ids = await _region_ids(session, spec.coordinates)
    return await _insert(session, spec, region_ids)


async def import_organisations(
    session: AsyncSession, path: Path
) -> list[tuple[Organisation, OrganisationSpec]]:
    """Add every organisation in the file, or none: every bad row is reported with its number."""
    rows = read_csv(path, ORG_CSV_COLUMNS)
    problems: list[str] = []
    specs: list[OrganisationSpec] = []
    seen: dict[str, int] = {}
    known_regions = set(await session.scalars(select(Region.code)))
    for number, row in rows:
        try:
            spec = validate_spec(
                row["kind"].strip(),
                row["name"],
                row["agb"],
                row["uzovi"],
                (row["coordinates"] or "").split(";"),
            )
        except InvalidInput as exc:
            problems.append(f"row {number}: {exc}")
            continue
        specs.append(spec)
        for label, value in (("name", spec.name), ("AGB code", spec.agb), ("UZOVI", spec.uzovi)):
            if value is None:
                continue
            key = f"{label} {value}"
            if key in seen:
                problems.append(f"row {number}: {key} repeats row {seen[key]}")
            seen.setdefault(key, number)
        problems.extend(f"row {number}: {problem}" for problem in await _conflicts(session, spec))
        unknown = [code for code in spec.coordinates if code not in known_regions]
        if unknown:
            problems.append(f"row {number}: unknown region code(s) {', '.join(unknown)}")
    refuse_if(path.name, problems)
    region_ids = await _region_ids(session, {code for spec in specs for code in spec.coordinates})
    return [(await _insert(session, spec, region_ids), spec) for spec in specs]

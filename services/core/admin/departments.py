"""Departments: register one, or import a provider's list from CSV (all rows or none)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit import record_audit
from services.core.csvfile import read_csv, refuse_if
from services.core.db.models import CareType, Department, Organisation, Region
from services.core.domain import OrgKind, Scope, is_agb
from services.core.errors import Conflict, InvalidInput, NotFound

DEPARTMENT_CSV_COLUMNS = (
    "provider_agb",
    "code",
    "name",
    "care_type",
    "region",
    "scope",
    "capacity",
)
DEPARTMENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CAPACITY = 100_000


@dataclass(frozen=True)
class DepartmentSpec:
    """A department as asked for; `scope` None means the care type's default scope."""

    provider_agb: str
    code: str
    name: str
    care_type: str
    region: str
    scope: Scope | None = None
    capacity: int | None = None


@dataclass(frozen=True)
class _References:
    """What the checks look up, loaded once for a whole file."""

    providers: dict[str, Organisation]
    care_types: dict[str, CareType]
    regions: dict[str, Region]
    taken: set[tuple[str, str]]  # (provider AGB, department code) already registered


async def _load_references(session: AsyncSession, specs: list[DepartmentSpec]) -> _References:
    agbs = {spec.provider_agb for spec in specs}
    providers = {
        org.agb_code: org
        for org in await session.scalars(
            select(Organisation).where(
                Organisation.kind == OrgKind.PROVIDER, Organisation.agb_code.in_(agbs)
            )
        )
        if org.agb_code
    }
    care_types = {ct.code: ct for ct in await session.scalars(select(CareType))}
    regions = {region.code: region for region in await session.scalars(select(Region))}
    pairs = [(spec.provider_agb, spec.code) for spec in specs]
    taken_rows = await session.execute(
        select(Organisation.agb_code, Department.code)
        .join(Organisation, Department.provider_id == Organisation.id)
        .where(tuple_(Organisation.agb_code, Department.code).in_(pairs))
    )
    taken = {(agb, code) for agb, code in taken_rows if agb}
    return _References(providers, care_types, regions, taken)


def _check(spec: DepartmentSpec, refs: _References) -> list[str]:
    """Every problem with one department, as short phrases."""
    problems = []
    if not is_agb(spec.provider_agb):
        problems.append(f"provider AGB code {spec.provider_agb!r} is not 8 digits")
    elif spec.provider_agb not in refs.providers:
        problems.append(f"no provider with AGB code {spec.provider_agb} (add it with `org add`)")
    if not DEPARTMENT_CODE.match(spec.code):
        problems.append(
            f"department code {spec.code!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    elif (spec.provider_agb, spec.code) in refs.taken:
        problems.append(f"department code {spec.code} already exists for this provider")
    if not spec.name.strip():
        problems.append("name is empty")
    elif len(spec.name) > 200:
        problems.append("name is longer than 200 characters")
    if spec.care_type not in refs.care_types:
        problems.append(f"unknown care type {spec.care_type!r} (see `care-type list`)")
    if spec.region not in refs.regions:
        problems.append(f"unknown region {spec.region!r} (see `region list`)")
    elif not refs.regions[spec.region].active:
        problems.append(f"region {spec.region} is no longer active")
    if spec.capacity is not None and not 0 <= spec.capacity <= MAX_CAPACITY:
        problems.append(f"capacity {spec.capacity} must be between 0 and {MAX_CAPACITY}")
    return problems


async def _insert(
    session: AsyncSession,
    spec: DepartmentSpec,
    refs: _References,
    *,
    channel: str = "cli",
    api_key_id: uuid.UUID | None = None,
) -> Department:
    care_type = refs.care_types[spec.care_type]
    department = Department(
        provider_id=refs.providers[spec.provider_agb].id,
        code=spec.code,
        name=spec.name.strip(),
        care_type_code=care_type.code,
        region_id=refs.regions[spec.region].id,
        scope=spec.scope or care_type.default_scope,
        capacity=spec.capacity,
    )
    session.add(department)
    await session.flush()
    await record_audit(
        session,
        action="department.created",
        object_type="department",
        object_id=str(department.id),
        channel=channel,
        organisation_id=department.provider_id,
        api_key_id=api_key_id,
        details={"code": spec.code, "care_type": care_type.code, "region": spec.region},
    )
    return department


async def add_department(
    session: AsyncSession,
    spec: DepartmentSpec,
    *,
    channel: str = "cli",
    api_key_id: uuid.UUID | None = None,
) -> Department:
    """Register one department of a provider (by the operator, or by the provider's system)."""
    refs = await _load_references(session, [spec])
    problems = _check(spec, refs)
    if problems:
        duplicate = any("already exists" in problem for problem in problems)
        unknown = any(problem.startswith(("no provider", "unknown")) for problem in problems)
        error = Conflict if duplicate else NotFound if unknown else InvalidInput
        raise error("; ".join(problems))
    return await _insert(session, spec, refs, channel=channel, api_key_id=api_key_id)


def _parse_row(row: dict[str, str]) -> tuple[DepartmentSpec | None, list[str]]:
    problems = []
    scope_text = row["scope"].strip().replace("-", "_")
    scope: Scope | None = None
    if scope_text:
        try:
            scope = Scope(scope_text)
        except ValueError:
            problems.append(f"scope {row['scope']!r} must be regional or supra_regional")
    capacity: int | None = None
    if row["capacity"].strip():
        try:
            capacity = int(row["capacity"])
        except ValueError:
            problems.append(f"capacity {row['capacity']!r} is not a whole number")
    spec = DepartmentSpec(
        provider_agb=row["provider_agb"].strip(),
        code=row["code"].strip(),
        name=row["name"].strip(),
        care_type=row["care_type"].strip(),
        region=row["region"].strip(),
        scope=scope,
        capacity=capacity,
    )
    return spec, problems


async def import_departments(
    session: AsyncSession, path: Path, *, progress: Callable[[int], None] | None = None
) -> list[Department]:
    """Add every department in the file, or refuse the file with each bad row and field."""
    rows = read_csv(path, DEPARTMENT_CSV_COLUMNS)
    parsed = [(number, *_parse_row(row)) for number, row in rows]
    specs = [spec for _, spec, _ in parsed if spec is not None]
    refs = await _load_references(session, specs)
    problems: list[str] = []
    first_row: dict[tuple[str, str], int] = {}
    for number, spec, row_problems in parsed:
        assert spec is not None
        row_problems = row_problems + _check(spec, refs)
        key = (spec.provider_agb, spec.code)
        if key in first_row:
            row_problems.append(f"department code {spec.code} repeats row {first_row[key]}")
        first_row.setdefault(key, number)
        problems.extend(f"row {number}: {problem}" for problem in row_problems)
        if progress:
            progress(1)
    refuse_if(path.name, problems)
    created = []
    for spec in specs:
        created.append(await _insert(session, spec, refs))
        if progress:
            progress(1)
    return created


__all__ = [
    "DEPARTMENT_CSV_COLUMNS",
    "Conflict",
    "DepartmentSpec",
    "add_department",
    "import_departments",
]

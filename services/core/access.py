"""Who is calling, and which departments they may see or report on.

The rules follow DESIGN.md ("Roles"): a provider sees its own departments, an insurer those in
the regions it coordinates, a regional table those of its region, the national table the
supra-regional ones, the governance board and the operator all of them (read-only overview).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import ApiKey, Department, InsurerRegion, Organisation, User
from services.core.domain import OrgKind, Role, Scope


@dataclass(frozen=True)
class Caller:
    """The organisation behind a request, with what its role needs to decide access."""

    organisation_id: uuid.UUID
    organisation_name: str
    kind: OrgKind
    role: Role
    agb_code: str | None = None
    region_id: int | None = None  # a regional table's region
    coordinated_region_ids: frozenset[int] = frozenset()
    api_key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    channel: str = "api"  # how the caller reached us (api, webhook, dashboard, cli), for the audit


async def load_caller(
    session: AsyncSession,
    organisation: Organisation,
    role: Role,
    *,
    key: ApiKey | None = None,
    user: User | None = None,
    channel: str = "api",
) -> Caller:
    """Build the caller of an organisation, with the regions an insurer coordinates."""
    coordinated: frozenset[int] = frozenset()
    if organisation.kind is OrgKind.INSURER:
        coordinated = frozenset(
            await session.scalars(
                select(InsurerRegion.region_id).where(InsurerRegion.insurer_id == organisation.id)
            )
        )
    return Caller(
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        kind=organisation.kind,
        role=role,
        agb_code=organisation.agb_code,
        region_id=organisation.region_id,
        coordinated_region_ids=coordinated,
        api_key_id=key.id if key else None,
        user_id=user.id if user else None,
        channel=channel,
    )


def visible_departments(caller: Caller) -> ColumnElement[bool]:
    """A WHERE clause on `departments` that keeps what the caller may read."""
    match caller.role:
        case Role.PROVIDER:
            return Department.provider_id == caller.organisation_id
        case Role.INSURER:
            if not caller.coordinated_region_ids:
                return false()
            return Department.region_id.in_(caller.coordinated_region_ids)
        case Role.REGIONAL_TABLE:
            return Department.region_id == caller.region_id
        case Role.NATIONAL_TABLE:
            return Department.scope == Scope.SUPRA_REGIONAL
        case Role.GOVERNANCE | Role.ADMIN:
            return true()
    return false()


def may_read_signals(caller: Caller) -> bool:
    """Raw signals are for those who report and act on them; the BO reads the digest instead."""
    return caller.role is not Role.GOVERNANCE


def may_report_for(caller: Caller, *, provider_id: uuid.UUID, region_id: int) -> bool:
    """Whether the caller may post signals about a department of this provider and region."""
    if caller.role is Role.PROVIDER:
        return provider_id == caller.organisation_id
    if caller.role is Role.INSURER:
        return region_id in caller.coordinated_region_ids
    return False

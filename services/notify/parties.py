"""Who an alert concerns: its department and region, the parties of each audience, and what a
caller may see of alerts or do with one.

One place for these answers, because the ladder (who is told), the alert API (who may read or
act) and the dashboard must never disagree about them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
from services.core.db.models import (
    Alert,
    CareType,
    Department,
    InsurerRegion,
    Organisation,
    Region,
    Silence,
    User,
)
from services.core.domain import AlertKind, EscalationStep, OrgKind, Role, Scope
from services.core.events.payloads import Alert as AlertPart
from services.notify.policy import AlertShape, Audience
from services.rules.reasons import for_event


@dataclass(frozen=True)
class AlertContext:
    """An alert with what the ladder and the messages need to know about it."""

    alert: Alert
    department: Department | None
    provider_agb: str | None
    provider_name: str | None
    region_code: str | None
    region_name: str | None
    care_type_name: str
    cluster: str
    scope: Scope

    @property
    def shape(self) -> AlertShape:
        return AlertShape(
            kind=self.alert.kind,
            level=self.alert.level,
            no_alternative=self.alert.no_alternative,
            scope=self.scope,
        )

    def part(self) -> AlertPart:
        """The alert as events and the API show it."""
        alert = self.alert
        return AlertPart(
            id=alert.id,
            kind=alert.kind,
            department_id=alert.department_id,
            department=self.department.code if self.department else None,
            provider_agb=self.provider_agb,
            region=self.region_code,
            care_type=alert.care_type_code,
            cluster=self.cluster,
            scope=self.scope,
            level=alert.level,
            status=alert.status,
            escalation=alert.escalation,
            no_alternative=alert.no_alternative,
            reasons=for_event(alert.reasons),
            opened_at=alert.opened_at,
            escalated_at=alert.escalated_at,
            acknowledged_at=alert.acknowledged_at,
            resolved_at=alert.resolved_at,
            ruleset_version=alert.ruleset_version,
        )


async def load_context(
    session: AsyncSession, alert_id: uuid.UUID, *, lock: bool = False
) -> AlertContext | None:
    """The alert and its surroundings; `lock` holds its row to the end of the transaction."""
    query = select(Alert).where(Alert.id == alert_id)
    if lock:
        query = query.with_for_update(key_share=True)
    alert = (await session.execute(query)).scalar_one_or_none()
    if alert is None:
        return None
    return await context_of(session, alert)


async def context_of(session: AsyncSession, alert: Alert) -> AlertContext:
    department = await session.get(Department, alert.department_id) if alert.department_id else None
    provider = await session.get(Organisation, department.provider_id) if department else None
    region = await session.get(Region, alert.region_id) if alert.region_id is not None else None
    care_type = await session.get(CareType, alert.care_type_code)
    assert care_type is not None  # a foreign key
    if department is not None:
        scope = department.scope
    else:
        scope = Scope.SUPRA_REGIONAL if alert.region_id is None else Scope.REGIONAL
    return AlertContext(
        alert=alert,
        department=department,
        provider_agb=provider.agb_code if provider else None,
        provider_name=provider.name if provider else None,
        region_code=region.code if region else None,
        region_name=region.name if region else None,
        care_type_name=care_type.name_nl,
        cluster=care_type.cluster.value,
        scope=scope,
    )


async def organisations_of(
    session: AsyncSession, context: AlertContext, audiences: tuple[Audience, ...]
) -> list[Organisation]:
    """The organisations behind the audiences, for this alert (each once, in a stable order)."""
    found: dict[uuid.UUID, Organisation] = {}
    alert = context.alert
    for audience in audiences:
        match audience:
            case Audience.PROVIDER:
                if context.department is None:
                    continue
                query = select(Organisation).where(
                    Organisation.id == context.department.provider_id
                )
            case Audience.COORDINATING_INSURER:
                if alert.region_id is None:
                    continue
                query = (
                    select(Organisation)
                    .join(InsurerRegion, InsurerRegion.insurer_id == Organisation.id)
                    .where(InsurerRegion.region_id == alert.region_id)
                )
            case Audience.REGIONAL_TABLE:
                if alert.region_id is None:
                    continue
                query = select(Organisation).where(
                    Organisation.kind == OrgKind.REGIONAL_TABLE,
                    Organisation.region_id == alert.region_id,
                )
            case Audience.NATIONAL_TABLE:
                query = select(Organisation).where(Organisation.kind == OrgKind.NATIONAL_TABLE)
        for organisation in (await session.execute(query.order_by(Organisation.name))).scalars():
            found.setdefault(organisation.id, organisation)
    return list(found.values())


async def people_of(session: AsyncSession, organisation_ids: list[uuid.UUID]) -> list[User]:
    """The active dashboard users of these organisations: who gets e-mail."""
    if not organisation_ids:
        return []
    query = (
        select(User)
        .where(User.organisation_id.in_(organisation_ids), User.active.is_(True))
        .order_by(User.email)
    )
    return list((await session.execute(query)).scalars())


def audiences_of(caller: Caller, context: AlertContext) -> set[Audience]:
    """The audiences the caller belongs to for this alert: what it may do follows from these."""
    return _audiences(caller, context.department, context.alert.region_id)


def department_audiences(caller: Caller, department: Department) -> set[Audience]:
    """The audiences the caller belongs to for a department's alerts (e.g. to silence them)."""
    return _audiences(caller, department, department.region_id)


def _audiences(
    caller: Caller, department: Department | None, region_id: int | None
) -> set[Audience]:
    found: set[Audience] = set()
    match caller.role:
        case Role.PROVIDER:
            if department is not None and department.provider_id == caller.organisation_id:
                found.add(Audience.PROVIDER)
        case Role.INSURER:
            if region_id is not None and region_id in caller.coordinated_region_ids:
                found.add(Audience.COORDINATING_INSURER)
        case Role.REGIONAL_TABLE:
            if region_id is not None and region_id == caller.region_id:
                found.add(Audience.REGIONAL_TABLE)
        case Role.NATIONAL_TABLE:
            found.add(Audience.NATIONAL_TABLE)
    return found


def visible_alerts(caller: Caller) -> ColumnElement[bool]:
    """A WHERE clause on `alerts` keeping what the caller may read.

    A provider its own departments' alerts; an insurer and a regional table their regions'; the
    national table supra-regional care, national coverage and whatever reached its step; the
    governance board and the operator everything (read-only).
    """
    match caller.role:
        case Role.PROVIDER:
            own = select(Department.id).where(Department.provider_id == caller.organisation_id)
            return Alert.department_id.in_(own.scalar_subquery())
        case Role.INSURER:
            if not caller.coordinated_region_ids:
                return false()
            return Alert.region_id.in_(caller.coordinated_region_ids)
        case Role.REGIONAL_TABLE:
            return Alert.region_id == caller.region_id
        case Role.NATIONAL_TABLE:
            supra = exists().where(
                Department.id == Alert.department_id, Department.scope == Scope.SUPRA_REGIONAL
            )
            return or_(
                Alert.escalation == EscalationStep.NATIONAL_TABLE,
                and_(Alert.kind == AlertKind.COVERAGE, Alert.region_id.is_(None)),
                supra,
            )
        case Role.GOVERNANCE | Role.ADMIN:
            return true()
    return false()


def silenced_now(now: datetime) -> ColumnElement[bool]:
    """A WHERE clause on `alerts`: its department is silenced at `now`."""
    return exists().where(
        Silence.department_id == Alert.department_id,
        Silence.starts_at <= now,
        Silence.ends_at > now,
        Silence.lifted_at.is_(None),
    )


async def is_silenced(session: AsyncSession, alert: Alert, now: datetime) -> bool:
    if alert.department_id is None:
        return False
    found = await session.scalar(select(silenced_now(now)).where(Alert.id == alert.id))
    return bool(found)

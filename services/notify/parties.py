"""Who an alert concerns: its department and region, the parties of each audience, and what a
caller may see of alerts or do with one.

One place for these answers, because the ladder (who is told), the alert API (who may read or
act) and the dashboard must never disagree about them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    exists,
    false,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime, Uuid

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


M = TypeVar("M", Alert, Department)


def _detached(model: type[M], values: dict[str, Any]) -> M:
    """An object of no session holding these column values, made the way the ORM makes the
    objects it loads (no constructor, no change events for the values given): about fifteen
    times cheaper than the constructor, which counts when a batch makes a thousand."""
    instance: M = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


def _prefixed(table: Table, prefix: str) -> list[ColumnElement[Any]]:
    return [column.label(f"{prefix}{column.name}") for column in table.c]


_ALERTS = cast(Table, Alert.__table__)
_DEPARTMENTS = cast(Table, Department.__table__)
_PROVIDERS = cast(Table, Organisation.__table__).alias("provider")
_REGIONS = cast(Table, Region.__table__)
_CARE_TYPES = cast(Table, CareType.__table__)


_NOW = bindparam("now", type_=DateTime(timezone=True))
# Built once: making a statement of this size costs the notifier more CPU per batch than the
# database spends answering it (docs/benchmarks.md, "Notifier").
_CONTEXTS = (
    select(
        *_prefixed(_ALERTS, "a_"),
        *_prefixed(_DEPARTMENTS, "d_"),
        _PROVIDERS.c.agb_code.label("provider_agb"),
        _PROVIDERS.c.name.label("provider_name"),
        _REGIONS.c.code.label("region_code"),
        _REGIONS.c.name.label("region_name"),
        _CARE_TYPES.c.name_nl.label("care_type_name"),
        _CARE_TYPES.c.cluster.label("cluster"),
        exists()
        .where(
            Silence.department_id == _ALERTS.c.department_id,
            Silence.starts_at <= _NOW,
            Silence.ends_at > _NOW,
            Silence.lifted_at.is_(None),
        )
        .label("silenced"),
    )
    .select_from(
        _ALERTS.outerjoin(_DEPARTMENTS, _DEPARTMENTS.c.id == _ALERTS.c.department_id)
        .outerjoin(_PROVIDERS, _PROVIDERS.c.id == _DEPARTMENTS.c.provider_id)
        .outerjoin(_REGIONS, _REGIONS.c.id == _ALERTS.c.region_id)
        .join(_CARE_TYPES, _CARE_TYPES.c.code == _ALERTS.c.care_type_code)
    )
    .where(_ALERTS.c.id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
    .order_by(_ALERTS.c.id)
    .with_for_update(of=_ALERTS, key_share=True)
)


async def load_contexts(
    session: AsyncSession, alert_ids: Collection[uuid.UUID], now: datetime
) -> dict[uuid.UUID, tuple[AlertContext, bool]]:
    """`load_context(lock=True)` and `is_silenced` for many alerts in one statement: each alert
    found, with its surroundings and whether its department is silenced at `now`.

    The rows are locked in the order of their ids (so two batches cannot deadlock on them), the
    same lock `load_context` takes. The alerts and departments are made as objects of no
    session: what the caller changes on them it writes itself.
    """
    if not alert_ids:
        return {}
    result = await session.execute(_CONTEXTS, {"ids": list(alert_ids), "now": now})
    found: dict[uuid.UUID, tuple[AlertContext, bool]] = {}
    for row in result.mappings():
        alert = _detached(Alert, {c.name: row[f"a_{c.name}"] for c in _ALERTS.c})
        department = (
            _detached(Department, {c.name: row[f"d_{c.name}"] for c in _DEPARTMENTS.c})
            if alert.department_id is not None
            else None
        )
        if department is not None:
            scope = department.scope
        else:
            scope = Scope.SUPRA_REGIONAL if alert.region_id is None else Scope.REGIONAL
        context = AlertContext(
            alert=alert,
            department=department,
            provider_agb=row["provider_agb"],
            provider_name=row["provider_name"],
            region_code=row["region_code"],
            region_name=row["region_name"],
            care_type_name=row["care_type_name"],
            cluster=row["cluster"].value,
            scope=scope,
        )
        found[alert.id] = (context, bool(row["silenced"]))
    return found


@dataclass(frozen=True)
class Parties:
    """The organisations behind the audiences of many alerts, read at once: `organisations_of`
    for each of them without a statement each."""

    insurers: dict[int, list[uuid.UUID]]  # region id → coordinating insurers, by name
    regional_tables: dict[int, list[uuid.UUID]]  # region id → its table(s), by name
    national_tables: list[uuid.UUID]  # by name

    def organisations_of(
        self, context: AlertContext, audiences: Iterable[Audience]
    ) -> list[uuid.UUID]:
        """What `organisations_of` answers, as ids: per audience in turn, each by name, each
        organisation once."""
        found: dict[uuid.UUID, None] = {}
        region = context.alert.region_id
        for audience in audiences:
            match audience:
                case Audience.PROVIDER:
                    if context.department is None:
                        continue
                    ids = [context.department.provider_id]
                case Audience.COORDINATING_INSURER:
                    if region is None:
                        continue
                    ids = self.insurers.get(region, [])
                case Audience.REGIONAL_TABLE:
                    if region is None:
                        continue
                    ids = self.regional_tables.get(region, [])
                case Audience.NATIONAL_TABLE:
                    ids = self.national_tables
            for organisation_id in ids:
                found.setdefault(organisation_id, None)
        return list(found)

    def all_of(self, contexts: Iterable[AlertContext]) -> set[uuid.UUID]:
        """Every organisation any audience of these alerts may take in."""
        found: set[uuid.UUID] = set(self.national_tables)
        for context in contexts:
            found.update(self.organisations_of(context, tuple(Audience)))
        return found


_REGION_IDS = bindparam("regions", type_=ARRAY(Integer()))
# The coordinating insurers and regional tables of some regions, and the national table(s), by
# name (built once, as `_CONTEXTS`).
_PARTIES = select(
    union_all(
        select(
            literal(Audience.COORDINATING_INSURER.value).label("audience"),
            InsurerRegion.region_id.label("region_id"),
            Organisation.id.label("id"),
            Organisation.name.label("name"),
        )
        .join(InsurerRegion, InsurerRegion.insurer_id == Organisation.id)
        .where(InsurerRegion.region_id == any_(_REGION_IDS)),
        select(
            literal(Audience.REGIONAL_TABLE.value).label("audience"),
            Organisation.region_id,
            Organisation.id,
            Organisation.name,
        ).where(
            Organisation.kind == OrgKind.REGIONAL_TABLE, Organisation.region_id == any_(_REGION_IDS)
        ),
        select(
            literal(Audience.NATIONAL_TABLE.value).label("audience"),
            null().label("region_id"),
            Organisation.id,
            Organisation.name,
        ).where(Organisation.kind == OrgKind.NATIONAL_TABLE),
    ).subquery()
).order_by(text("name"))


async def load_parties(session: AsyncSession, contexts: Iterable[AlertContext]) -> Parties:
    """The coordinating insurers and regional tables of the alerts' regions, and the national
    table, in one statement, each list in the order `organisations_of` gives."""
    regions = sorted({c.alert.region_id for c in contexts if c.alert.region_id is not None})
    parties = Parties(insurers={}, regional_tables={}, national_tables=[])
    for row in await session.execute(_PARTIES, {"regions": regions}):
        match row.audience:
            case Audience.COORDINATING_INSURER.value:
                parties.insurers.setdefault(row.region_id, []).append(row.id)
            case Audience.REGIONAL_TABLE.value:
                parties.regional_tables.setdefault(row.region_id, []).append(row.id)
            case _:
                parties.national_tables.append(row.id)
    return parties


_PEOPLE = (
    select(User.organisation_id, User.email)
    .where(
        User.organisation_id == any_(bindparam("organisations", type_=ARRAY(Uuid()))),
        User.active.is_(True),
    )
    .order_by(User.email)
)


async def load_people(
    session: AsyncSession, organisation_ids: Collection[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """(organisation, e-mail) of the active users of these organisations, in the order of
    `people_of` (by e-mail): filtered to some of them, the order is `people_of`'s for those."""
    if not organisation_ids:
        return []
    rows = await session.execute(_PEOPLE, {"organisations": list(organisation_ids)})
    return [(row.organisation_id, row.email) for row in rows]


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

"""The dashboard's reads, each scoped by the same clauses as the API (`visible_alerts`,
`visible_departments`, `scoped_coverage` of `/v1/coverage`), so a page never shows what the
API would refuse the same organisation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.core.access import Caller, visible_departments
from services.core.coverage import cell_level, scoped_coverage
from services.core.db.models import (
    Alert,
    AlertEvent,
    CareType,
    Department,
    Organisation,
    Region,
    RegionalCoverage,
    Signal,
)
from services.core.domain import AlertStatus, EscalationStep, Level, Role, SignalKind
from services.notify.parties import silenced_now, visible_alerts

# Aliases: `visible_alerts` names `departments` itself (a provider's own, the national table's
# supra-regional); the page's joins use their own names so the two never correlate by accident.
Dept = aliased(Department, name="dept")
Provider = aliased(Organisation, name="provider")

LEVEL_RANK = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}
STEP_RANK = {
    EscalationStep.PROVIDER: 0,
    EscalationStep.REGIONAL_TABLE: 1,
    EscalationStep.NATIONAL_TABLE: 2,
}
STATUS_RANK = {AlertStatus.OPEN: 0, AlertStatus.ACKNOWLEDGED: 1, AlertStatus.RESOLVED: 2}
AGB = re.compile(r"^[0-9]{8}$")


@dataclass(frozen=True)
class AlertRow:
    """An alert as a list shows it."""

    id: uuid.UUID
    kind: str
    level: str
    status: str
    escalation: str
    opened_at: datetime
    updated_at: datetime
    department_id: uuid.UUID | None
    department_code: str | None
    department_name: str | None
    provider_name: str | None
    provider_agb: str | None
    region_code: str | None
    region_name: str | None
    care_type: str
    care_type_names: tuple[str, str]
    cluster: str
    silenced: bool = False


def _alert_columns(now: datetime) -> Select[*tuple[Any, ...]]:
    query: Select[*tuple[Any, ...]] = (
        select(
            Alert.id,
            Alert.kind,
            Alert.level,
            Alert.status,
            Alert.escalation,
            Alert.opened_at,
            Alert.updated_at,
            Alert.department_id,
            Dept.code,
            Dept.name,
            Provider.name,
            Provider.agb_code,
            Region.code,
            Region.name,
            CareType.code,
            CareType.name_nl,
            CareType.name_en,
            CareType.cluster,
            silenced_now(now).label("silenced"),
        )
        .select_from(Alert)
        .outerjoin(Dept, Dept.id == Alert.department_id)
        .outerjoin(Provider, Provider.id == Dept.provider_id)
        .outerjoin(Region, Region.id == Alert.region_id)
        .join(CareType, CareType.code == Alert.care_type_code)
    )
    return query


def _row(raw: Any) -> AlertRow:
    return AlertRow(
        id=raw[0],
        kind=raw[1].value,
        level=raw[2].value,
        status=raw[3].value,
        escalation=raw[4].value,
        opened_at=raw[5],
        updated_at=raw[6],
        department_id=raw[7],
        department_code=raw[8],
        department_name=raw[9],
        provider_name=raw[10],
        provider_agb=raw[11],
        region_code=raw[12],
        region_name=raw[13],
        care_type=raw[14],
        care_type_names=(raw[15], raw[16]),
        cluster=raw[17].value,
        silenced=bool(raw[18]),
    )


@dataclass(frozen=True)
class AlertFilters:
    """The alert list's filters, already checked (unknown values were dropped)."""

    region: str | None = None
    cluster: str | None = None
    care_type: str | None = None
    level: Level | None = None
    status: AlertStatus | None = None
    escalation: EscalationStep | None = None
    provider: str | None = None
    open_only: bool = False

    def clauses(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.region:
            found.append(Alert.region_id.in_(select(Region.id).where(Region.code == self.region)))
        if self.cluster:
            found.append(
                Alert.care_type_code.in_(
                    select(CareType.code).where(CareType.cluster == self.cluster)
                )
            )
        if self.care_type:
            found.append(Alert.care_type_code == self.care_type)
        if self.level:
            found.append(Alert.level == self.level)
        if self.status:
            found.append(Alert.status == self.status)
        elif self.open_only:
            found.append(Alert.status != AlertStatus.RESOLVED)
        if self.escalation:
            found.append(Alert.escalation == self.escalation)
        if self.provider:
            providers = select(Organisation.id)
            if AGB.match(self.provider):
                providers = providers.where(Organisation.agb_code == self.provider)
            else:
                pattern = "%" + re.sub(r"([%_\\])", r"\\\1", self.provider) + "%"
                providers = providers.where(Organisation.name.ilike(pattern, escape="\\"))
            found.append(
                Alert.department_id.in_(
                    select(Department.id).where(Department.provider_id.in_(providers))
                )
            )
        return found


SORTS: dict[str, Any] = {
    "opened": Alert.opened_at,
    "updated": Alert.updated_at,
    "level": case(LEVEL_RANK, value=Alert.level, else_=0),
    "step": case(STEP_RANK, value=Alert.escalation, else_=0),
    "status": case(STATUS_RANK, value=Alert.status, else_=0),
    "region": Region.name,
    "care_type": CareType.sort_order,
    "department": Dept.code,
    "provider": Provider.name,
}


async def list_alerts(
    session: AsyncSession,
    caller: Caller,
    filters: AlertFilters,
    *,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
    now: datetime,
) -> tuple[list[AlertRow], int]:
    """One page of the alerts the caller may see, and how many there are in all."""
    where = [visible_alerts(caller), *filters.clauses()]
    total = await session.scalar(select(func.count(Alert.id)).where(*where))
    key = SORTS.get(sort, Alert.opened_at)
    order = [key.desc().nulls_last(), Alert.id.desc()] if descending else [key.asc(), Alert.id]
    rows = await session.execute(
        _alert_columns(now).where(*where).order_by(*order).offset(offset).limit(limit)
    )
    return [_row(raw) for raw in rows], int(total or 0)


async def alert_rows(
    session: AsyncSession,
    caller: Caller,
    *where: ColumnElement[bool],
    now: datetime,
    limit: int = 10,
) -> list[AlertRow]:
    """The newest alerts the caller may see that also meet `where`."""
    rows = await session.execute(
        _alert_columns(now)
        .where(visible_alerts(caller), *where)
        .order_by(Alert.opened_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return [_row(raw) for raw in rows]


async def open_counts(session: AsyncSession, caller: Caller) -> dict[tuple[str, str], int]:
    """Open (not resolved) alerts the caller may see, by (level, step)."""
    rows = await session.execute(
        select(Alert.level, Alert.escalation, func.count())
        .where(visible_alerts(caller), Alert.status != AlertStatus.RESOLVED)
        .group_by(Alert.level, Alert.escalation)
    )
    return {(level.value, step.value): int(count) for level, step, count in rows}


@dataclass(frozen=True)
class Change:
    """One entry of an alert's timeline, for the list of newest changes and the live feed."""

    event_id: int
    type: str
    at: datetime
    level: str
    escalation: str
    alert: AlertRow


async def changes(
    session: AsyncSession,
    caller: Caller,
    *,
    after: int | None = None,
    limit: int = 10,
    now: datetime,
) -> list[Change]:
    """The newest timeline entries of alerts the caller may see (after an id: oldest first)."""
    query = (
        _alert_columns(now)
        .add_columns(AlertEvent.id, AlertEvent.type, AlertEvent.at, AlertEvent.level)
        .add_columns(AlertEvent.escalation)
        .join(AlertEvent, AlertEvent.alert_id == Alert.id)
        .where(visible_alerts(caller))
    )
    if after is not None:
        query = query.where(AlertEvent.id > after).order_by(AlertEvent.id)
    else:
        query = query.order_by(AlertEvent.id.desc())
    rows = await session.execute(query.limit(limit))
    return [
        Change(
            event_id=raw[19],
            type=raw[20].value,
            at=raw[21],
            level=raw[22].value,
            escalation=raw[23].value,
            alert=_row(raw),
        )
        for raw in rows
    ]


async def latest_change_id(session: AsyncSession) -> int:
    """Where the live feed of a page starts: the newest timeline entry when it was made."""
    return int(await session.scalar(select(func.max(AlertEvent.id))) or 0)


@dataclass(frozen=True)
class CoverageCell:
    """One region × care type (or, summed, × cluster) of the coverage map."""

    region_id: int | None
    region_code: str | None
    region_name: str | None
    care_type: str | None
    care_type_names: tuple[str, str] | None
    cluster: str
    departments: int
    threatened: int
    critical: int
    capacity_total: int
    capacity_at_risk: int
    gap: bool
    level: str


async def coverage_cells(
    session: AsyncSession,
    caller: Caller,
    *,
    share: float,
    region_id: int | None = None,
    only_region: bool = False,
) -> list[CoverageCell]:
    """Coverage per region × care type, scoped as `GET /v1/coverage` scopes it."""
    query = scoped_coverage(
        select(RegionalCoverage, Region.code, Region.name, CareType), caller
    ).order_by(Region.name.nulls_first(), CareType.sort_order)
    if only_region:
        query = query.where(RegionalCoverage.region_id == region_id)
    found: list[CoverageCell] = []
    for cell, code, name, care_type in await session.execute(query):
        found.append(
            CoverageCell(
                region_id=cell.region_id,
                region_code=code,
                region_name=name,
                care_type=care_type.code,
                care_type_names=(care_type.name_nl, care_type.name_en),
                cluster=care_type.cluster.value,
                departments=cell.departments_active,
                threatened=cell.threatened,
                critical=cell.critical,
                capacity_total=cell.capacity_total,
                capacity_at_risk=cell.capacity_at_risk,
                gap=bool(cell.departments_active and cell.no_alternative),
                level=cell_level(cell, share).value,
            )
        )
    return found


def by_cluster(cells: Sequence[CoverageCell]) -> list[CoverageCell]:
    """The cells summed per region × cluster; the level is the gravest of its care types."""
    summed: dict[tuple[int | None, str], CoverageCell] = {}
    for cell in cells:
        key = (cell.region_id, cell.cluster)
        before = summed.get(key)
        if before is None:
            summed[key] = CoverageCell(
                **{**cell.__dict__, "care_type": None, "care_type_names": None}
            )
            continue
        summed[key] = CoverageCell(
            region_id=cell.region_id,
            region_code=cell.region_code,
            region_name=cell.region_name,
            care_type=None,
            care_type_names=None,
            cluster=cell.cluster,
            departments=before.departments + cell.departments,
            threatened=before.threatened + cell.threatened,
            critical=before.critical + cell.critical,
            capacity_total=before.capacity_total + cell.capacity_total,
            capacity_at_risk=before.capacity_at_risk + cell.capacity_at_risk,
            gap=before.gap or cell.gap,
            level=max(before.level, cell.level, key=lambda v: LEVEL_RANK[Level(v)]),
        )
    return list(summed.values())


async def visible_regions(session: AsyncSession, caller: Caller) -> list[tuple[str, str]]:
    """(code, name) of the regions the caller has anything in: for filters and links."""
    match caller.role:
        case Role.INSURER:
            where: ColumnElement[bool] = Region.id.in_(caller.coordinated_region_ids or {-1})
        case Role.REGIONAL_TABLE:
            where = Region.id == caller.region_id
        case Role.PROVIDER:
            where = Region.id.in_(
                select(Department.region_id).where(Department.provider_id == caller.organisation_id)
            )
        case Role.NATIONAL_TABLE:
            where = Region.id.in_(
                select(Department.region_id).where(visible_departments(caller))
            ) | Region.id.in_(select(Alert.region_id).where(visible_alerts(caller)))
        case _:
            where = Region.active.is_(True)
    rows = await session.execute(
        select(Region.code, Region.name).where(where).order_by(Region.name)
    )
    return [(code, name) for code, name in rows]


async def care_types(session: AsyncSession) -> list[tuple[str, str, str, str]]:
    """(code, Dutch name, English name, cluster) of every care type, in the clusters' order."""
    rows = await session.execute(
        select(CareType.code, CareType.name_nl, CareType.name_en, CareType.cluster).order_by(
            CareType.sort_order, CareType.code
        )
    )
    return [(code, nl, en, cluster.value) for code, nl, en, cluster in rows]


def region_alerts_clause(region_id: int) -> ColumnElement[bool]:
    return and_(Alert.region_id == region_id, Alert.status != AlertStatus.RESOLVED)


def open_at_national() -> ColumnElement[bool]:
    return and_(
        Alert.escalation == EscalationStep.NATIONAL_TABLE, Alert.status != AlertStatus.RESOLVED
    )


def department_alerts_clause(department_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(Alert.department_id == department_id)


REPORTS_PER_KIND = 120  # a chart of more points is no easier to read


async def department_reports(
    session: AsyncSession,
    department_id: uuid.UUID,
    kinds: Sequence[SignalKind],
    *,
    since: datetime,
) -> dict[SignalKind, list[tuple[datetime, dict[str, Any]]]]:
    """A department's reports of these kinds since a moment, oldest first, per kind."""
    found: dict[SignalKind, list[tuple[datetime, dict[str, Any]]]] = {}
    for kind in dict.fromkeys(kinds):
        rows = await session.execute(
            select(Signal.observed_at, Signal.data)
            .where(
                Signal.department_id == department_id,
                Signal.kind == kind,
                Signal.observed_at >= since,
            )
            .order_by(Signal.observed_at.desc())
            .limit(REPORTS_PER_KIND)
        )
        found[kind] = [(when, data) for when, data in reversed(rows.all())]
    return found

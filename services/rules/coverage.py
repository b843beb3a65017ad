"""Regional coverage: per region × care type (national for supra-regional care), what is there
and how much of it is at risk; and whether a threatened department has an alternative.

A threatened department that is the last of its care type in its region, or whose loss would
take away more than `no_alternative_share` of the region's capacity for that care type, has no
equivalent alternative (`no_alternative`): it goes up one level. A cell with departments but not
one unthreatened among them is a coverage gap: it gets a coverage alert of its own. Cells are
recomputed under a lock of their own, so two workers judging two departments of one cell follow
one another.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import (
    Alert,
    Assessment,
    Department,
    RegionalCoverage,
)
from services.core.domain import (
    AlertEventType,
    AlertKind,
    AlertStatus,
    Cluster,
    DepartmentStatus,
    EscalationStep,
    Level,
    Scope,
)
from services.core.events.outbox import NewEvent
from services.core.events.payloads import Alert as AlertPart
from services.core.events.payloads import (
    AlertOpened,
    AlertResolved,
    CoverageChanged,
    ResolutionReason,
    Service,
    new_event,
)
from services.rules.alerts import timeline_entry
from services.rules.loading import DepartmentFacts
from services.rules.reasons import for_event

CELL_LOCK_SPACE = 0x5653_0200
AT_RISK = (Level.THREATENED, Level.CRITICAL)


@dataclass(frozen=True)
class Member:
    """One active department of a cell with its current level."""

    id: object
    level: Level
    capacity: int


@dataclass(frozen=True)
class Cell:
    region_id: int | None  # None: national (supra-regional care)
    region: str | None
    care_type: str
    cluster: Cluster
    members: tuple[Member, ...]

    @property
    def capacity_total(self) -> int:
        return sum(m.capacity for m in self.members)

    @property
    def at_risk(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.level in AT_RISK)

    @property
    def gap(self) -> bool:
        """Departments there are, but not one without a threat."""
        return bool(self.members) and len(self.at_risk) == len(self.members)

    def level(self, share: float) -> Level:
        if self.gap:
            return Level.CRITICAL
        at_risk = sum(m.capacity for m in self.at_risk)
        if self.capacity_total and at_risk / self.capacity_total > share:
            return Level.THREATENED
        return Level.WATCH if self.at_risk else Level.OK


def no_alternative(cell: Cell, department_id: object, level: Level, share: float) -> bool:
    """A threatened department with no equivalent alternative in its cell."""
    if level not in AT_RISK:
        return False
    others = [m for m in cell.members if m.id != department_id]
    if not others:
        return True  # the last of its care type here
    mine = next((m.capacity for m in cell.members if m.id == department_id), 0)
    return bool(cell.capacity_total) and mine / cell.capacity_total > share


async def lock_cell(session: AsyncSession, facts: DepartmentFacts) -> None:
    region = None if facts.scope == Scope.SUPRA_REGIONAL.value else facts.region
    key = zlib.crc32(f"{region or 'national'}/{facts.care_type}".encode()) & 0x7FFF_FFFF
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {"space": CELL_LOCK_SPACE, "key": key},
    )


async def load_cell(session: AsyncSession, facts: DepartmentFacts) -> Cell:
    """The department's cell with every active member's newest level (ok when never judged)."""
    national = facts.scope == Scope.SUPRA_REGIONAL.value
    latest = (
        select(Assessment.level)
        .where(Assessment.department_id == Department.id)
        .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(Department.id, Department.capacity, latest).where(
        Department.care_type_code == facts.care_type,
        Department.status == DepartmentStatus.ACTIVE,
    )
    if national:
        query = query.where(Department.scope == Scope.SUPRA_REGIONAL)
    else:
        query = query.where(
            Department.region_id == facts.region_id, Department.scope == Scope.REGIONAL
        )
    members = tuple(
        Member(row[0], Level(row[2] or Level.OK), int(row[1] or 0))
        for row in await session.execute(query)
    )
    return Cell(
        region_id=None if national else facts.region_id,
        region=None if national else facts.region,
        care_type=facts.care_type,
        cluster=facts.cluster,
        members=members,
    )


async def follow_cell(
    session: AsyncSession,
    cell: Cell,
    now: datetime,
    *,
    share: float,
    ruleset_version: str,
    hysteresis_reports: int = 1,
) -> list[NewEvent]:
    """Store the cell's figures; announce a change; open or close its coverage alert.

    Like a department's alert, a coverage alert closes only after the cell has stayed without a
    gap over `hysteresis_reports` reports from its departments, so a region whose last
    unthreatened department hovers around a threshold does not open and close alerts each month.
    """
    where = (
        RegionalCoverage.region_id.is_(None)
        if cell.region_id is None
        else RegionalCoverage.region_id == cell.region_id
    )
    before = (
        await session.execute(
            select(RegionalCoverage).where(where, RegionalCoverage.care_type_code == cell.care_type)
        )
    ).scalar_one_or_none()
    figures = {
        "departments_active": len(cell.members),
        "threatened": sum(1 for m in cell.members if m.level is Level.THREATENED),
        "critical": sum(1 for m in cell.members if m.level is Level.CRITICAL),
        "no_alternative": 1 if cell.gap else 0,
        "capacity_total": cell.capacity_total,
        "capacity_at_risk": sum(m.capacity for m in cell.at_risk),
    }
    level = cell.level(share)
    previous_level = cell_level(before, share) if before is not None else None
    if before is not None and all(getattr(before, k) == v for k, v in figures.items()):
        return await _coverage_alert(session, cell, level, now, ruleset_version, hysteresis_reports)
    if before is None:
        session.add(
            RegionalCoverage(region_id=cell.region_id, care_type_code=cell.care_type, **figures)
        )
    else:
        for name, value in figures.items():
            setattr(before, name, value)
    events = [
        new_event(
            CoverageChanged(
                region=cell.region,
                care_type=cell.care_type,
                cluster=cell.cluster,
                departments=figures["departments_active"],
                threatened=figures["threatened"],
                critical=figures["critical"],
                capacity_total=figures["capacity_total"],
                capacity_at_risk=figures["capacity_at_risk"],
                no_alternative=cell.gap,
                previous_level=previous_level,
                level=level,
                ruleset_version=ruleset_version,
                changed_at=now,
            ),
            source=Service.RULES,
        )
    ]
    return events + await _coverage_alert(
        session, cell, level, now, ruleset_version, hysteresis_reports
    )


def cell_level(row: RegionalCoverage, share: float) -> Level:
    """A stored cell's level: critical for a gap, threatened when much capacity is at risk."""
    if row.departments_active and row.no_alternative:
        return Level.CRITICAL
    if row.capacity_total and row.capacity_at_risk / row.capacity_total > share:
        return Level.THREATENED
    return Level.WATCH if row.threatened or row.critical else Level.OK


async def _coverage_alert(
    session: AsyncSession,
    cell: Cell,
    level: Level,
    now: datetime,
    version: str,
    hysteresis_reports: int,
) -> list[NewEvent]:
    region_match = (
        Alert.region_id.is_(None) if cell.region_id is None else (Alert.region_id == cell.region_id)
    )
    alert = (
        await session.execute(
            select(Alert).where(
                Alert.kind == AlertKind.COVERAGE,
                region_match,
                Alert.care_type_code == cell.care_type,
                Alert.status != AlertStatus.RESOLVED,
            )
        )
    ).scalar_one_or_none()
    if cell.gap and alert is None:
        alert = Alert(
            kind=AlertKind.COVERAGE,
            region_id=cell.region_id,
            care_type_code=cell.care_type,
            level=level,
            status=AlertStatus.OPEN,
            escalation=EscalationStep.REGIONAL_TABLE
            if cell.region_id is not None
            else EscalationStep.NATIONAL_TABLE,
            no_alternative=True,
            reasons=[gap_reason(cell)],
            opened_at=now,
            ruleset_version=version,
        )
        session.add(alert)
        await session.flush()
        session.add(timeline_entry(alert, AlertEventType.OPENED, now))
        return [
            new_event(AlertOpened(alert=_part(cell, alert), signal_id=None), source=Service.RULES)
        ]
    if cell.gap and alert is not None:
        alert.ok_since = None  # the gap is back: the hysteresis starts again when it closes
        return []
    if alert is None:
        return []
    if alert.ok_since is None:
        alert.ok_since = now
    if await _reports_since(session, cell, alert.ok_since) < hysteresis_reports:
        return []
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolution = ResolutionReason.RECOVERED.value
    session.add(timeline_entry(alert, AlertEventType.RESOLVED, now))
    await session.flush()
    payload = AlertResolved(
        alert=_part(cell, alert), reason=ResolutionReason.RECOVERED, resolved_by=None, note=None
    )
    return [new_event(payload, source=Service.RULES)]


async def _reports_since(session: AsyncSession, cell: Cell, since: datetime) -> int:
    """Reports (assessments of a signal) from the cell's departments since the gap closed."""
    count = await session.scalar(
        select(func.count())
        .select_from(Assessment)
        .where(
            Assessment.department_id.in_([m.id for m in cell.members]),
            Assessment.assessed_at >= since,
            Assessment.signal_id.is_not(None),
        )
    )
    return int(count or 0)


def _part(cell: Cell, alert: Alert) -> AlertPart:
    return AlertPart(
        id=alert.id,
        kind=AlertKind.COVERAGE,
        department_id=None,
        department=None,
        provider_agb=None,
        region=cell.region,
        care_type=cell.care_type,
        cluster=cell.cluster,
        scope=Scope.REGIONAL if cell.region_id is not None else Scope.SUPRA_REGIONAL,
        level=alert.level,
        status=alert.status,
        escalation=alert.escalation,
        no_alternative=True,
        reasons=for_event(alert.reasons),
        opened_at=alert.opened_at,
        escalated_at=alert.escalated_at,
        acknowledged_at=alert.acknowledged_at,
        resolved_at=alert.resolved_at,
        ruleset_version=alert.ruleset_version,
    )


def with_member(cell: Cell, department_id: object, level: Level) -> Cell:
    """The cell as it is once this department has its new level."""
    members = tuple(
        Member(m.id, level, m.capacity) if m.id == department_id else m for m in cell.members
    )
    return Cell(cell.region_id, cell.region, cell.care_type, cell.cluster, members)


def raised(level: Level) -> Level:
    """One level up (critical stays critical)."""
    return {Level.WATCH: Level.THREATENED, Level.THREATENED: Level.CRITICAL}.get(level, level)


def no_alternative_reason(cell: Cell, level: Level) -> dict[str, object]:
    """The reason a department went up a level: it has no equivalent alternative."""
    where_nl = f"in regio {cell.region}" if cell.region else "in het land"
    where_en = f"in region {cell.region}" if cell.region else "in the country"
    others = len(cell.members) - 1
    return {
        "rule_id": "coverage.no_alternative",
        "level": level.value,
        "kind": None,
        "explanation": f"No equivalent alternative {where_en}: {others} other department(s) of"
        f" this care type, and this one carries a large share of its capacity or is the last.",
        "explanation_nl": f"Geen gelijkwaardig alternatief {where_nl}: {others} andere"
        " afdeling(en) van dit zorgtype, en deze draagt een groot deel van de capaciteit of is"
        " de laatste.",
        "figures": {"departments": len(cell.members), "capacity_total": cell.capacity_total},
        "thresholds": {},
        "norm": None,
        "signal_ids": [],
    }


def gap_reason(cell: Cell) -> dict[str, object]:
    """Why a coverage alert is open: not one department of this care type left unthreatened."""
    where_nl = f"in regio {cell.region}" if cell.region else "in het land"
    where_en = f"in region {cell.region}" if cell.region else "in the country"
    at_risk = sum(m.capacity for m in cell.at_risk)
    return {
        "rule_id": "coverage.gap",
        "level": Level.CRITICAL.value,
        "kind": None,
        "explanation": f"No unthreatened department of this care type left {where_en}:"
        f" {len(cell.at_risk)} of {len(cell.members)} threatened or critical, capacity"
        f" {at_risk} of {cell.capacity_total} at risk.",
        "explanation_nl": f"Geen onbedreigde afdeling van dit zorgtype meer {where_nl}:"
        f" {len(cell.at_risk)} van {len(cell.members)} dreigend of acuut, capaciteit"
        f" {at_risk} van {cell.capacity_total} in gevaar.",
        "figures": {
            "departments": len(cell.members),
            "at_risk": len(cell.at_risk),
            "capacity_total": cell.capacity_total,
            "capacity_at_risk": at_risk,
        },
        "thresholds": {},
        "norm": None,
        "signal_ids": [],
    }

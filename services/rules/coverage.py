"""Regional coverage: per region × care type (national for supra-regional care), what is there
and how much of it is at risk; and whether a threatened department has an alternative.

A threatened department that is the last of its care type in its region, or whose loss would
take away more than `no_alternative_share` of the region's capacity for that care type, has no
equivalent alternative (`no_alternative`): it goes up one level. A cell with departments but not
one unthreatened among them is a coverage gap: it gets a coverage alert of its own. Cells are
recomputed under a lock of their own (`lock_key`), so two workers judging two departments of one
cell follow one another; a batch of judgements reads its cells once (`batch.py`).
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from services.core.coverage import cell_level
from services.core.db.models import Alert, RegionalCoverage
from services.core.domain import (
    AlertEventType,
    AlertKind,
    AlertStatus,
    Cluster,
    EscalationStep,
    Level,
    Scope,
)
from services.core.events.outbox import NewEvent
from services.core.events.payloads import ResolutionReason
from services.rules.alerts import timeline_row
from services.rules.events import alert_opened, alert_recovered, coverage_alert, coverage_changed
from services.rules.loading import DepartmentFacts

if TYPE_CHECKING:
    from services.rules.batch import Batch

CELL_LOCK_SPACE = 0x5653_0200
AT_RISK = (Level.THREATENED, Level.CRITICAL)


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class Member:
    """One active department of a cell with its current level."""

    id: Any  # a department id; `Any`, not `object`: mypyc (native.py) fails on that field
    level: Level
    capacity: int

    def __init__(self, id: Any, level: Level, capacity: int) -> None:
        self.id = id
        self.level = level
        self.capacity = capacity


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class Cell:
    region_id: int | None  # None: national (supra-regional care)
    region: str | None
    care_type: str
    cluster: Cluster
    members: tuple[Member, ...]

    def __init__(
        self,
        region_id: int | None,
        region: str | None,
        care_type: str,
        cluster: Cluster,
        members: tuple[Member, ...],
    ) -> None:
        self.region_id = region_id
        self.region = region
        self.care_type = care_type
        self.cluster = cluster
        self.members = members

    @cached_property
    def capacity_total(self) -> int:
        return sum(m.capacity for m in self.members)

    @cached_property
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


CellKey = tuple[int | None, str]  # (region id, or None for the country; care type)


def cell_key(facts: DepartmentFacts) -> CellKey:
    """The department's cell: its region's, or the national one for supra-regional care."""
    national = facts.scope == Scope.SUPRA_REGIONAL.value
    return (None if national else facts.region_id, facts.care_type)


def lock_key(facts: DepartmentFacts) -> int:
    """The advisory lock (in `CELL_LOCK_SPACE`) that guards the department's cell."""
    region = None if facts.scope == Scope.SUPRA_REGIONAL.value else facts.region
    return zlib.crc32(f"{region or 'national'}/{facts.care_type}".encode()) & 0x7FFF_FFFF


async def follow_cell(
    batch: Batch,
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
    key = (cell.region_id, cell.care_type)
    before = batch.coverage.get(key)
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
        return await _coverage_alert(batch, cell, level, now, ruleset_version, hysteresis_reports)
    if before is None:
        batch.coverage[key] = row = RegionalCoverage(
            region_id=cell.region_id, care_type_code=cell.care_type, **figures
        )
        batch.add(row)
    else:
        for name, value in figures.items():
            setattr(before, name, value)
    events = [
        coverage_changed(
            cell,
            figures,
            previous_level=previous_level,
            level=level,
            ruleset_version=ruleset_version,
            changed_at=now,
        )
    ]
    return events + await _coverage_alert(
        batch, cell, level, now, ruleset_version, hysteresis_reports
    )


async def _coverage_alert(
    batch: Batch,
    cell: Cell,
    level: Level,
    now: datetime,
    version: str,
    hysteresis_reports: int,
) -> list[NewEvent]:
    key = (cell.region_id, cell.care_type)
    alert = batch.coverage_alerts.get(key)
    if cell.gap and alert is None:
        alert = Alert(
            id=uuid.uuid4(),
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
        batch.coverage_alerts[key] = alert
        batch.add(alert)
        batch.timeline.append(timeline_row(alert, AlertEventType.OPENED, now))
        return [alert_opened(coverage_alert(cell, alert), None)]
    if cell.gap and alert is not None:
        alert.ok_since = None  # the gap is back: the hysteresis starts again when it closes
        return []
    if alert is None:
        return []
    if alert.ok_since is None:
        alert.ok_since = now
    reports = await batch.reports_since([m.id for m in cell.members], alert.ok_since)
    if reports < hysteresis_reports:
        return []
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolution = ResolutionReason.RECOVERED.value
    del batch.coverage_alerts[key]
    batch.timeline.append(timeline_row(alert, AlertEventType.RESOLVED, now))
    return [alert_recovered(coverage_alert(cell, alert))]


def with_member(cell: Cell, department_id: object, level: Level) -> Cell:
    """The cell as it is once this department has its new level (the same cell when its level
    is unchanged: the usual case, and a national cell has hundreds of members to copy)."""
    for member in cell.members:
        if member.id == department_id:
            if member.level == level:
                return cell
            break
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

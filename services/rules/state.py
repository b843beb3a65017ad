"""What the engine knows of a department when it judges it: its reports, and its memory.

Pure data, built by the worker from the database. `figures()` turns the newest report of each
kind into what a CEL condition sees (docs/rules.md, "What a condition sees"): numbers as doubles
(CEL does not mix int and double), figures a provider did not report left out, and derived
figures (vacancy rate, bed occupancy, days until a closure) worked out once here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.core.domain import Cluster, SignalKind

# Care that cannot run without a psychiatrist (the rules may ask `department.needs_psychiatrist`).
PSYCHIATRIST_CLUSTERS = frozenset({Cluster.ACUTE, Cluster.CLINICAL, Cluster.SECURE})
PSYCHIATRIST_CARE_TYPES = frozenset({"outreach.fact"})


@dataclass(frozen=True)
class Report:
    """One signal as the engine sees it."""

    id: uuid.UUID
    kind: SignalKind
    observed_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class RuleMemory:
    """How long a rule's condition has held: reports in a row, and since when."""

    consecutive: int
    since: datetime


@dataclass(frozen=True)
class DepartmentState:
    department_id: uuid.UUID
    care_type: str
    cluster: Cluster
    scope: str
    capacity: int | None
    registered_at: datetime
    norms: Mapping[str, float] | None  # {"aanmeld_weeks": 4.0, "behandel_weeks": 10.0}
    reports: Mapping[SignalKind, tuple[Report, ...]]  # oldest first, per kind
    memory: Mapping[str, RuleMemory] = field(default_factory=dict)

    def latest(self, kind: SignalKind) -> Report | None:
        series = self.reports.get(kind)
        return series[-1] if series else None

    def last_report_at(self) -> datetime | None:
        times = [series[-1].observed_at for series in self.reports.values() if series]
        return max(times) if times else None

    @property
    def needs_psychiatrist(self) -> bool:
        return self.cluster in PSYCHIATRIST_CLUSTERS or self.care_type in PSYCHIATRIST_CARE_TYPES


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _numbers(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: n for k, v in data.items() if (n := _number(v)) is not None}


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole * 100.0


def figures(state: DepartmentState, today: date) -> dict[str, Any]:
    """The variables of a CEL condition for this department today."""
    department: dict[str, Any] = {
        "care_type": state.care_type,
        "cluster": state.cluster.value,
        "scope": state.scope,
        "needs_psychiatrist": state.needs_psychiatrist,
    }
    if state.capacity is not None:
        department["capacity"] = float(state.capacity)
    seen: dict[str, Any] = {
        "department": department,
        "norm": dict(state.norms or {}),
        **{kind.value: {} for kind in SignalKind},
    }
    if report := state.latest(SignalKind.STAFFING):
        staffing = _numbers(report.data)
        vacancy = _share(staffing.get("vacancies_fte"), staffing.get("fte_budgeted"))
        if vacancy is not None:
            staffing["vacancy_pct"] = vacancy
        seen["staffing"] = staffing
    if report := state.latest(SignalKind.WAITLIST):
        seen["waitlist"] = _numbers(report.data)
    if report := state.latest(SignalKind.CAPACITY):
        capacity = _numbers(report.data)
        total, closed = capacity.get("beds_total"), capacity.get("beds_closed", 0.0)
        open_beds = total - closed if total is not None else None
        occupancy = _share(capacity.get("beds_occupied"), open_beds)
        if occupancy is not None:
            capacity["occupancy_pct"] = occupancy
        closed_share = _share(capacity.get("beds_closed"), total)
        if closed_share is not None:
            capacity["closed_pct"] = closed_share
        seen["capacity"] = capacity
    if report := state.latest(SignalKind.ADMISSION_STOP):
        seen["admission_stop"] = _admission_stop(state, report, today)
    if report := state.latest(SignalKind.CLOSURE):
        closure: dict[str, Any] = {"scope": str(report.data.get("scope", "full"))}
        if (when := _day(report.data.get("effective_date"))) is not None:
            closure["days_until"] = float((when - today).days)
        if (lost := _number(report.data.get("capacity_lost"))) is not None:
            closure["capacity_lost"] = lost
        seen["closure"] = closure
    if report := state.latest(SignalKind.CONTRACT):
        contract: dict[str, Any] = {"status": str(report.data.get("status", ""))}
        if (when := _day(report.data.get("effective_date"))) is not None:
            contract["days_until_effective"] = float((when - today).days)
        seen["contract"] = contract
    return seen


def _admission_stop(state: DepartmentState, report: Report, today: date) -> dict[str, Any]:
    """Active or not, and for how many days: from `since`, or from the first active report."""
    active = bool(report.data.get("active"))
    stop: dict[str, Any] = {"active": active}
    if not active:
        return stop
    start = _day(report.data.get("since"))
    if start is None:
        start = report.observed_at.date()
        for earlier in reversed(state.reports.get(SignalKind.ADMISSION_STOP, ())):
            if not earlier.data.get("active"):
                break
            start = earlier.observed_at.date()
    stop["days_active"] = float(max(0, (today - start).days))
    return stop

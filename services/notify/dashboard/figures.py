"""From a reason and a department's signals to a chart: which figure to draw, its threshold or
norm, and the forecast where one fired. Pure functions, so they are tested without a browser.

The figures are worked out by the engine's own code (`services.rules.state.figures`), one report
at a time, so a derived figure such as the vacancy rate is drawn exactly as the rule saw it. The
threshold comes from the reason itself (a forecast's limit, a norm the reason cites) or else from
the rule's condition: the number the figure is compared with (`staffing.vacancy_pct >= 15.0`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.core.domain import Cluster, SignalKind
from services.rules.ruleset import Rule
from services.rules.state import DepartmentState, Report, figures

NUMERIC_KINDS = (SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.CAPACITY)
_ZERO = uuid.UUID(int=0)
_FIGURE = re.compile(r"\b(staffing|waitlist|capacity)\.([a-z_]+)\b")


@dataclass(frozen=True)
class Measure:
    """One figure of one signal kind, e.g. `staffing.vacancy_pct`."""

    kind: SignalKind
    field: str

    @property
    def key(self) -> str:
        return f"{self.kind.value}.{self.field}"


@dataclass(frozen=True)
class Limit:
    """The line drawn in: a rule's threshold or a norm."""

    value: float
    is_norm: bool


# What the department page draws: per kind, groups of figures that share a unit.
SERIES_GROUPS: tuple[tuple[SignalKind, str, tuple[str, ...]], ...] = (
    (
        SignalKind.STAFFING,
        "fte",
        ("fte_budgeted", "fte_filled", "vacancies_fte", "psychiatrist_fte"),
    ),
    (
        SignalKind.STAFFING,
        "%",
        ("vacancy_pct", "sick_leave_pct", "temp_staff_pct", "unfilled_shifts_pct"),
    ),
    (SignalKind.WAITLIST, "weeks", ("aanmeldwachttijd_weeks", "behandelwachttijd_weeks")),
    (SignalKind.WAITLIST, "people", ("waiting_count", "waiting_over_norm_count")),
    (
        SignalKind.CAPACITY,
        "beds",
        ("beds_total", "beds_occupied", "beds_closed", "out_of_area_placements"),
    ),
    (SignalKind.CAPACITY, "%", ("occupancy_pct", "closed_pct")),
)


def figures_of(kind: SignalKind, observed_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a rule sees in one report of this kind (derived ones included)."""
    state = DepartmentState(
        department_id=_ZERO,
        care_type="",
        cluster=Cluster.ACUTE,
        scope="regional",
        capacity=None,
        registered_at=observed_at,
        norms=None,
        reports={kind: (Report(_ZERO, kind, observed_at, dict(data)),)},
    )
    found: dict[str, Any] = figures(state, observed_at.date())[kind.value]
    return found


def series(
    reports: Iterable[tuple[datetime, Mapping[str, Any]]], kind: SignalKind, field: str
) -> list[tuple[datetime, float]]:
    """One figure over time from reports of one kind (oldest first); reports without it skipped."""
    points: list[tuple[datetime, float]] = []
    for observed_at, data in sorted(reports, key=lambda r: r[0]):
        value = figures_of(kind, observed_at, data).get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            points.append((observed_at, float(value)))
    return points


def measure_of(reason: Mapping[str, Any], rule: Rule | None) -> Measure | None:
    """The figure a reason is about: the rule's `measure`, else the first figure its condition
    tests, else the first figure of a numeric kind the reason cites."""
    candidates: list[str] = []
    if rule is not None and rule.measure:
        candidates.append(rule.measure)
    if rule is not None and rule.when:
        candidates += [f"{m.group(1)}.{m.group(2)}" for m in _FIGURE.finditer(rule.when)]
    candidates += [str(key) for key in reason.get("figures", {})]
    for candidate in candidates:
        kind_name, _, field = candidate.partition(".")
        if kind_name in {k.value for k in NUMERIC_KINDS} and field:
            return Measure(SignalKind(kind_name), field)
    return None


def limit_of(reason: Mapping[str, Any], rule: Rule | None, measure: Measure) -> Limit | None:
    """The threshold or norm to draw for this reason's figure, if the rule has one."""
    thresholds = reason.get("thresholds") or {}
    limit = thresholds.get("limit") if isinstance(thresholds, Mapping) else None
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return Limit(float(limit), is_norm=bool(rule and rule.limit and "norm." in rule.limit))
    if rule is None or not rule.when:
        return None
    pattern = re.compile(
        re.escape(measure.key) + r"\s*(>=|>|==)\s*(?:([0-9]+(?:\.[0-9]+)?)|(norm\.[a-z_]+))"
    )
    found = pattern.search(rule.when)
    if found is None:
        return None
    if found.group(2) is not None:
        return Limit(float(found.group(2)), is_norm=False)
    cited = reason.get("figures", {}).get(found.group(3))
    if isinstance(cited, int | float) and not isinstance(cited, bool):
        return Limit(float(cited), is_norm=True)
    return None


def forecast_end(
    reason: Mapping[str, Any], points: Sequence[tuple[datetime, float]], limit: Limit | None
) -> tuple[datetime, float] | None:
    """Where a fired forecast meets its limit: `days` after the newest point."""
    days = reason.get("figures", {}).get("days")
    if limit is None or not points or not isinstance(days, int | float):
        return None
    if isinstance(days, bool) or days < 0 or days > 3650:
        return None
    return points[-1][0] + timedelta(days=float(days)), limit.value


def event_facts(kind: SignalKind, data: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The fields of an event-like report (admission stop, closure, contract) to list as text."""
    order = {
        SignalKind.ADMISSION_STOP: ("active", "since", "expected_until", "reason"),
        SignalKind.CLOSURE: ("effective_date", "scope", "capacity_lost", "reason"),
        SignalKind.CONTRACT: ("status", "effective_date"),
    }.get(kind, tuple(data))
    return [(name, data[name]) for name in order if name in data]

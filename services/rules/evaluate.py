"""The evaluation: department state + ruleset + now → assessment. A pure function.

No I/O and no clock of its own, so every rule kind can be tested with a handful of reports and the
whole ruleset benchmarked in microseconds. The worker around it loads the state and stores what
comes out, including each rule's memory (how long its condition has held) for the next time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cel

from services.core.domain import Level, SignalKind
from services.rules.explain import lookup, render
from services.rules.ruleset import CompiledRule, Rule, RuleKind, Ruleset
from services.rules.series import Point, days_until_limit, relative_change
from services.rules.state import DepartmentState, RuleMemory, figures

ORDER = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}
WEIGHT = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 3, Level.CRITICAL: 9}
_REPORT_KINDS = tuple(SignalKind)


@dataclass(frozen=True)
class Reason:
    """Why a department is at a level: one rule that fired, with the figures behind it."""

    rule_id: str
    kind: RuleKind
    level: Level
    signal_kinds: tuple[SignalKind, ...]
    explanation: Mapping[str, str]  # language → sentence
    figures: Mapping[str, Any]
    limit: float | None
    signal_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Assessment:
    level: Level
    score: int
    reasons: tuple[Reason, ...]
    memory: Mapping[str, RuleMemory] = field(default_factory=dict)
    ruleset_version: str = ""


def evaluate(
    state: DepartmentState,
    ruleset: Ruleset,
    now: datetime,
    *,
    trigger: SignalKind | None = None,
) -> Assessment:
    """Judge the department now; `trigger` is the kind of the signal that arrived (if any)."""
    seen = figures(state, now.date())
    context = cel.Context(seen)
    reasons: list[Reason] = []
    memory: dict[str, RuleMemory] = {}
    composites: list[CompiledRule] = []
    for compiled in ruleset.for_department(state.cluster.value, state.care_type):
        rule = compiled.rule
        if rule.kind is RuleKind.COMPOSITE:
            composites.append(compiled)
            continue
        if rule.signals and not any(state.reports.get(kind) for kind in rule.signals):
            continue  # nothing of its kind reported yet: it cannot hold
        reason = _judge(compiled, state, seen, context, now, trigger, memory)
        if reason is not None:
            reasons.append(reason)
    plain = list(reasons)  # composites count these, never each other
    for compiled in composites:
        reason = _composite(compiled, plain, seen)
        if reason is not None:
            reasons.append(reason)
    level = max((r.level for r in reasons), key=ORDER.__getitem__, default=Level.OK)
    reasons.sort(key=lambda r: (-ORDER[r.level], r.rule_id))
    return Assessment(
        level=level,
        score=sum(WEIGHT[r.level] for r in reasons),
        reasons=tuple(reasons),
        memory=memory,
        ruleset_version=ruleset.version,
    )


def _holds(program: cel.Program | None, context: cel.Context) -> bool:
    """A condition whose figures are missing (not reported) does not hold."""
    if program is None:
        return False
    try:
        return program.execute(context) is True
    except (KeyError, RuntimeError, ValueError, TypeError):
        return False


def _judge(
    compiled: CompiledRule,
    state: DepartmentState,
    seen: Mapping[str, Any],
    context: cel.Context,
    now: datetime,
    trigger: SignalKind | None,
    memory: dict[str, RuleMemory],
) -> Reason | None:
    rule = compiled.rule
    extra: dict[str, Any] = {}
    if rule.kind in (RuleKind.THRESHOLD, RuleKind.SUSTAINED, RuleKind.EVENT):
        if not _holds(compiled.condition, context):
            return None
        if not _held_long_enough(rule, state, now, trigger, memory):
            return None
    elif rule.kind is RuleKind.TREND:
        points = _series(state, rule, since=now - timedelta(days=rule.window_days or 0))
        change = relative_change(points)
        if change is None or change < (rule.rise or 0):
            return None
        extra = {"value": points[-1].value, "change": f"{change * 100:.0f} %"}
    elif rule.kind is RuleKind.FORECAST:
        limit = _limit(compiled, context)
        points = _series(state, rule)[-max(rule.min_reports, 6) :]
        if limit is None or len(points) < rule.min_reports:
            return None
        days = days_until_limit(points, limit)
        if days is None or days > (rule.horizon_days or 0):
            return None
        extra = {"value": points[-1].value, "limit": limit, "days": round(days)}
    elif rule.kind is RuleKind.SILENCE:
        last = state.last_report_at() or state.registered_at
        silent = (now - last).days
        if silent < (rule.days or 0):
            return None
        extra = {"days": silent}
    return _reason(compiled, state, seen, extra)


def _held_long_enough(
    rule: Rule,
    state: DepartmentState,
    now: datetime,
    trigger: SignalKind | None,
    memory: dict[str, RuleMemory],
) -> bool:
    """Count the reports in a row (or days) the condition held; remember it for next time."""
    before = state.memory.get(rule.id)
    counts = trigger is not None and trigger in rule.signals
    if before is None:
        current = RuleMemory(consecutive=1, since=now)
    else:
        current = RuleMemory(before.consecutive + (1 if counts else 0), before.since)
    memory[rule.id] = current
    hold = rule.hold
    if hold is None:
        return True
    if hold.reports is not None:
        return current.consecutive >= hold.reports
    return now - current.since >= timedelta(days=hold.days or 0)


def _series(state: DepartmentState, rule: Rule, since: datetime | None = None) -> list[Point]:
    kind_name, _, figure = (rule.measure or "").partition(".")
    points = []
    for report in state.reports.get(SignalKind(kind_name), ()):
        value = report.data.get(figure)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if since is None or report.observed_at >= since:
            points.append(Point(report.observed_at, float(value)))
    return points


def _limit(compiled: CompiledRule, context: cel.Context) -> float | None:
    if compiled.limit is None:
        return None
    try:
        value = compiled.limit.execute(context)
    except (KeyError, RuntimeError, ValueError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _composite(
    compiled: CompiledRule, reasons: list[Reason], seen: Mapping[str, Any]
) -> Reason | None:
    """Independent reasons from different signal kinds, together, raise the level."""
    rule = compiled.rule
    floor = ORDER[Level(rule.from_level or Level.WATCH)]
    kinds = {
        kind
        for reason in reasons
        if ORDER[reason.level] >= floor and reason.kind is not RuleKind.SILENCE
        for kind in reason.signal_kinds
    }
    if len(kinds) < (rule.min_kinds or 2):
        return None
    extra = {"value": float(len(kinds)), "kinds": ", ".join(sorted(kinds))}
    ids = tuple(i for r in reasons if set(r.signal_kinds) & kinds for i in r.signal_ids)
    reason = _reason(compiled, None, seen, extra, signal_kinds=tuple(sorted(kinds)))
    return Reason(**{**reason.__dict__, "signal_ids": tuple(dict.fromkeys(ids))})


def _reason(
    compiled: CompiledRule,
    state: DepartmentState | None,
    seen: Mapping[str, Any],
    extra: Mapping[str, Any],
    *,
    signal_kinds: tuple[SignalKind, ...] | None = None,
) -> Reason:
    rule = compiled.rule
    values = {**seen, **extra}
    kinds = signal_kinds if signal_kinds is not None else rule.signals
    cited = {name: value for name in compiled.cites if (value := lookup(seen, name)) is not None}
    ids: tuple[uuid.UUID, ...] = ()
    if state is not None:
        latest = (state.latest(kind) for kind in kinds)
        ids = tuple(report.id for report in latest if report is not None)
    limit = extra.get("limit")
    return Reason(
        rule_id=rule.id,
        kind=rule.kind,
        level=Level(rule.level),
        signal_kinds=tuple(kinds),
        explanation={
            "nl": render(rule.explain.nl, values, "nl"),
            "en": render(rule.explain.en, values, "en"),
        },
        figures={**cited, **{k: v for k, v in extra.items() if k != "limit"}},
        limit=float(limit) if isinstance(limit, int | float) else None,
        signal_ids=ids,
    )

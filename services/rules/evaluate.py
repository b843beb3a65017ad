"""The evaluation: department state + ruleset + now → assessment. A pure function.

No I/O and no clock of its own, so every rule kind can be tested with a handful of reports and the
whole ruleset benchmarked in microseconds. The worker around it loads the state and stores what
comes out, including each rule's memory (how long its condition has held) for the next time.

Why it is shaped as it is (bench/rules.py, docs/benchmarks.md "Rules"): the rules that can judge
a department are picked once per ruleset for each cluster, care type and set of reported kinds
(`_plan`), not filtered per call. Handing figures to the `cel` package costs about 2 µs per
figure (each is converted into a CEL value), more than a whole rule, so conditions written in the
common part of CEL run as closures over the figures (`conditions.py`), with CEL's own answers;
every other condition, and any value those closures are not sure about, goes to the compiled CEL
program. Explanations are rendered when they are read (`Reason.explanation`), from templates
parsed once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeGuard

import cel

from services.core.domain import Cluster, Level, SignalKind
from services.rules.conditions import Condition, Unsure
from services.rules.explain import Template, compile_template, lookup, render_template
from services.rules.ruleset import CompiledRule, RuleKind, Ruleset
from services.rules.series import days_until_reached_at
from services.rules.state import DepartmentState, RuleMemory, figures

# Final: compiled (native.py), a Final module name is a C variable, not a module-dict lookup.
ORDER: Final = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}
WEIGHT: Final = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 3, Level.CRITICAL: 9}
_CONDITIONAL: Final = (RuleKind.THRESHOLD, RuleKind.SUSTAINED, RuleKind.EVENT)
# Members as module names: `RuleKind.TREND` is a descriptor lookup (~0.15 µs) on every use.
_TREND: Final = RuleKind.TREND
_FORECAST: Final = RuleKind.FORECAST
_SILENCE: Final = RuleKind.SILENCE
_OK: Final = Level.OK
_WATCH: Final = Level.WATCH
_THREATENED: Final = Level.THREATENED
_CRITICAL: Final = Level.CRITICAL
_FAILED: Final = (KeyError, RuntimeError, ValueError, TypeError)  # what a CEL program raises
_NUMBER: Final = (int, float)  # a tuple, not `int | float`: that builds a new union at every call


class Explanation(Mapping[str, str]):
    """A reason's sentence per language, rendered when first read: a judgement that is not
    stored, or not shown, never pays for its texts."""

    __slots__ = ("_of", "_texts")

    def __init__(
        self, templates: Mapping[str, Template], seen: Mapping[str, Any], extra: Mapping[str, Any]
    ) -> None:
        self._of = (templates, seen, extra)
        self._texts: dict[str, str] = {}

    def __getitem__(self, language: str) -> str:
        text = self._texts.get(language)
        if text is None:
            templates, seen, extra = self._of
            text = render_template(templates[language], extra, seen, language)
            self._texts[language] = text
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(self._of[0])

    def __len__(self) -> int:
        return len(self._of[0])

    def __repr__(self) -> str:
        return repr(dict(self))


# Reason, Assessment and RuleMemory are made at every judgement: plain assignments in an
# `__init__` of their own, which mypyc compiles to stores into the object (a generated dataclass
# `__init__` stays Python, and a frozen one calls `object.__setattr__` per field: most of the
# cost of making one). Not frozen for that reason; nothing changes them once made.
@dataclass(init=False)
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

    def __init__(
        self,
        rule_id: str,
        kind: RuleKind,
        level: Level,
        signal_kinds: tuple[SignalKind, ...],
        explanation: Mapping[str, str],
        figures: Mapping[str, Any],
        limit: float | None,
        signal_ids: tuple[uuid.UUID, ...],
    ) -> None:
        self.rule_id = rule_id
        self.kind = kind
        self.level = level
        self.signal_kinds = signal_kinds
        self.explanation = explanation
        self.figures = figures
        self.limit = limit
        self.signal_ids = signal_ids


@dataclass(init=False)
class Assessment:
    """A department's judgement: its level, score and reasons, and each rule's memory."""

    level: Level
    score: int
    reasons: tuple[Reason, ...]
    memory: dict[str, RuleMemory]
    ruleset_version: str

    def __init__(
        self,
        level: Level,
        score: int,
        reasons: tuple[Reason, ...],
        memory: dict[str, RuleMemory] | None = None,
        ruleset_version: str = "",
    ) -> None:
        self.level = level
        self.score = score
        self.reasons = reasons
        self.memory = {} if memory is None else memory
        self.ruleset_version = ruleset_version


@dataclass(frozen=True, slots=True)
class _Step:
    """One rule as the evaluation runs it: everything that does not change between calls."""

    compiled: CompiledRule
    id: str
    kind: RuleKind
    conditional: bool  # a condition that holds or not (threshold, sustained, event)
    level: Level
    signals: tuple[SignalKind, ...]
    hold_reports: int  # 0: no hold in reports
    hold_span: timedelta | None  # a hold in days
    fast_when: Condition | None  # None: only the CEL program can answer
    fast_limit: Condition | None
    measure: tuple[SignalKind, str] | None
    window: timedelta
    rise: float
    horizon: float
    min_reports: int
    days: int
    silence: timedelta  # `days` as a span
    min_kinds: int
    floor: int  # composite: the rank a reason needs to count
    templates: dict[str, Template]
    cites: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, group, rest of the path)


@dataclass(frozen=True, slots=True)
class _Plan:
    plain: tuple[tuple[Condition | None, _Step], ...]  # (its fast condition, the rule)
    composites: tuple[_Step, ...]
    version: str  # the ruleset's (`Ruleset.version` is a property, Python code)


def evaluate(
    state: DepartmentState,
    ruleset: Ruleset,
    now: datetime,
    *,
    trigger: SignalKind | None = None,
) -> Assessment:
    """Judge the department now; `trigger` is the kind of the signal that arrived (if any)."""
    reports = state.reports
    reported = tuple(reports)  # in the state's order: one plan per order met, all the same
    for series in reports.values():
        if not series:
            reported = tuple(kind for kind, series in reports.items() if series)
            break
    plan = _plan(ruleset, state.cluster, state.care_type, reported)
    seen = figures(state, now.date())
    run = _Run(state, seen, now, trigger)
    reasons: list[Reason] = []
    for condition, step in plan.plain:
        if condition is not None:  # most rules, most of the time: a condition that fails
            try:
                if condition.value(seen) is not True:
                    continue
                reason = run.fired(step)
            except Unsure:
                reason = run.judge(step)
        else:
            reason = run.judge(step)
        if reason is not None:
            reasons.append(reason)
    if not reasons:
        return Assessment(_OK, 0, (), run.memory, plan.version)
    if plan.composites:
        plain = tuple(reasons)  # composites count these, never each other
        ranks = [_rank(reason.level) for reason in plain]
        for step in plan.composites:
            reason = _composite(step, plain, ranks, seen)
            if reason is not None:
                reasons.append(reason)
    if len(reasons) > 1:
        _most_severe_first(reasons)
    level = reasons[0].level
    return Assessment(
        level=level,
        score=sum(WEIGHT[r.level] for r in reasons),
        reasons=tuple(reasons),
        memory=run.memory,
        ruleset_version=plan.version,
    )


def _rank(level: Level) -> int:
    """`ORDER[level]`, the members compared by identity first (a dict keyed by enum members is
    looked up through its generic path)."""
    if level is _WATCH:
        return 1
    if level is _THREATENED:
        return 2
    if level is _CRITICAL:
        return 3
    return ORDER[level]


def _most_severe_first(reasons: list[Reason]) -> None:
    """Sort in place by level (most severe first), then rule id: an insertion sort, as
    `sort(key=...)` would order them. A handful of reasons; compiled, this is a C loop, where
    `sort` called a key function through Python per reason."""
    for i in range(1, len(reasons)):
        reason = reasons[i]
        rank, rule_id = _rank(reason.level), reason.rule_id
        j = i - 1
        while j >= 0:
            other = reasons[j]
            other_rank = _rank(other.level)
            if other_rank > rank or (other_rank == rank and other.rule_id <= rule_id):
                break
            reasons[j + 1] = other
            j -= 1
        reasons[j + 1] = reason


def _plan(
    ruleset: Ruleset, cluster: Cluster, care_type: str, reported: tuple[SignalKind, ...]
) -> _Plan:
    """The rules that can judge such a department, in file order (worked out once per ruleset).

    A rule about signal kinds none of which has been reported cannot hold, so it is left out.
    """
    key = (cluster, care_type, reported)
    plan: _Plan | None = ruleset.plans.get(key)
    if plan is None:
        plain: list[tuple[Condition | None, _Step]] = []
        composites: list[_Step] = []
        for compiled in ruleset.for_department(cluster.value, care_type):
            rule = compiled.rule
            if rule.kind is RuleKind.COMPOSITE:
                composites.append(_step(ruleset, compiled))
            elif not rule.signals or any(kind in reported for kind in rule.signals):
                step = _step(ruleset, compiled)
                plain.append((step.fast_when if step.conditional else None, step))
        plan = ruleset.plans[key] = _Plan(tuple(plain), tuple(composites), ruleset.version)
    return plan


def _step(ruleset: Ruleset, compiled: CompiledRule) -> _Step:
    found: _Step | None = ruleset.plans.get(compiled.rule.id)
    if found is not None:
        return found
    rule = compiled.rule
    measure = None
    if rule.measure:
        kind_name, _, figure = rule.measure.partition(".")
        measure = (SignalKind(kind_name), figure)
    level = Level(rule.level)
    step = _Step(
        compiled=compiled,
        id=rule.id,
        kind=rule.kind,
        conditional=rule.kind in _CONDITIONAL,
        level=level,
        signals=rule.signals,
        hold_reports=(rule.hold.reports or 0) if rule.hold is not None else 0,
        hold_span=timedelta(days=rule.hold.days or 0)
        if rule.hold is not None and rule.hold.reports is None
        else None,
        fast_when=compiled.fast_condition,
        fast_limit=compiled.fast_limit,
        measure=measure,
        window=timedelta(days=rule.window_days or 0),
        rise=rule.rise or 0,
        horizon=rule.horizon_days or 0,
        min_reports=rule.min_reports,
        days=rule.days or 0,
        silence=timedelta(days=rule.days or 0),
        min_kinds=rule.min_kinds or 2,
        floor=ORDER[Level(rule.from_level or Level.WATCH)],
        templates={
            "nl": compile_template(rule.explain.nl),
            "en": compile_template(rule.explain.en),
        },
        cites=tuple((name, *_split(name)) for name in compiled.cites),
    )
    ruleset.plans[rule.id] = step
    return step


def _split(name: str) -> tuple[str, tuple[str, ...]]:
    group, *rest = name.split(".")
    return group, tuple(rest)


class _Run:
    """One evaluation: the figures, each rule's memory, and a CEL context made only if needed."""

    __slots__ = ("_context", "memory", "now", "seen", "state", "trigger")

    def __init__(
        self,
        state: DepartmentState,
        seen: dict[str, Any],
        now: datetime,
        trigger: SignalKind | None,
    ) -> None:
        self.state = state
        self.seen = seen
        self.now = now
        self.trigger = trigger
        self.memory: dict[str, RuleMemory] = {}
        self._context: cel.Context | None = None

    def context(self) -> cel.Context:
        if self._context is None:
            self._context = cel.Context(self.seen)
        return self._context

    def holds(self, step: _Step) -> bool:
        """A condition whose figures are missing (not reported) does not hold."""
        if step.fast_when is not None:
            try:
                return step.fast_when.value(self.seen) is True
            except Unsure:
                pass
        program = step.compiled.condition
        if program is None:
            return False
        try:
            return program.execute(self.context()) is True
        except _FAILED:
            return False

    def limit(self, step: _Step) -> float | None:
        value: Any
        if step.fast_limit is not None:
            try:
                value = step.fast_limit.value(self.seen)
                return value if type(value) is float else None
            except Unsure:
                pass
        program = step.compiled.limit
        if program is None:
            return None
        try:
            value = program.execute(self.context())
        except _FAILED:
            return None
        return float(value) if isinstance(value, _NUMBER) and not isinstance(value, bool) else None

    def fired(self, step: _Step) -> Reason | None:
        """The reason of a rule whose condition holds, once it has held long enough.

        Counts the reports in a row (or days) the condition held, and remembers it for next time.
        """
        before = self.state.memory.get(step.id)
        if before is None:
            # A run starts with the report that shows it, not with one of another kind judged
            # first: that would count the report of its own kind twice (docs/rules.md, `for`).
            own = self.trigger is None or self.trigger in step.signals
            current = RuleMemory(consecutive=1 if own else 0, since=self.now)
        elif self.trigger is not None and self.trigger in step.signals:
            current = RuleMemory(before.consecutive + 1, before.since)
        else:
            current = before  # a report of another kind neither counts nor breaks the run
        self.memory[step.id] = current
        if step.hold_reports:
            if current.consecutive < step.hold_reports:
                return None
        elif step.hold_span is not None and self.now - current.since < step.hold_span:
            return None
        return self._reason(step, {})

    def judge(self, step: _Step) -> Reason | None:
        kind = step.kind
        extra: dict[str, Any]
        if step.conditional:
            return self.fired(step) if self.holds(step) else None
        if kind is _TREND:
            found = self._trend(step)
            if found is None:
                return None
            extra = {"value": found[0], "change": f"{found[1] * 100:.0f} %"}
        elif kind is _FORECAST:
            limit = self.limit(step)
            if limit is None:
                return None
            times, values = self._last_values(step, limit)
            if len(values) < step.min_reports:
                return None
            days = days_until_reached_at(times, values, limit)
            if days is None or days > step.horizon:
                return None
            extra = {"value": values[-1], "days": round(days)}
            return self._reason(step, extra, limit)
        elif kind is _SILENCE:
            last = self.state.registered_at
            newest: datetime | None = None
            for series in self.state.reports.values():  # `max` of each kind's newest, inlined
                if series and (newest is None or series[-1].observed_at > newest):
                    newest = series[-1].observed_at
            if newest is not None:
                last = newest
            # `(now - last).days < days`, as a comparison of times: the usual answer (not
            # silent) without the subtraction of two zoned times and a `timedelta` made of it.
            if last > self.now - step.silence:
                return None
            silent = (self.now - last).days
            if silent < step.days:
                return None
            extra = {"days": silent}
        else:
            return None
        return self._reason(step, extra)

    def _reason(self, step: _Step, extra: dict[str, Any], limit: float | None = None) -> Reason:
        """The reason, citing the newest signal of each of the rule's kinds."""
        reports = self.state.reports
        signals = step.signals
        if len(signals) == 1:  # the usual rule: one kind
            series = reports.get(signals[0])
            ids: tuple[uuid.UUID, ...] = (series[-1].id,) if series else ()
        else:
            ids = tuple(series[-1].id for kind in signals if (series := reports.get(kind)))
        return _reason(step, self.seen, extra, signals, ids, limit)

    def _trend(self, step: _Step) -> tuple[float, float] | None:
        """The newest value and the relative change over the window (first to last report;
        `series.relative_change` worked out in place, without a `Point` per report)."""
        assert step.measure is not None
        kind, figure = step.measure
        reports = self.state.reports.get(kind, ())
        since = self.now - step.window
        first_at = -1
        first = last = 0.0
        for index, report in enumerate(reports):
            if report.observed_at >= since:
                value = report.data.get(figure)
                if type(value) is float:  # the usual case, taken as it is (no `float()` call)
                    first_at, first = index, value
                    break
                if _is_number(value):
                    first_at, first = index, float(value)
                    break
        if first_at < 0:
            return None
        for report in reversed(reports[first_at + 1 :]):
            if report.observed_at >= since:
                value = report.data.get(figure)
                if type(value) is float:
                    last = value
                    break
                if _is_number(value):
                    last = float(value)
                    break
        else:
            return None  # one report in the window is no trend
        if first <= 0:
            return None
        change = (last - first) / first
        if change < step.rise:
            return None
        return last, change

    def _last_values(self, step: _Step, limit: float) -> tuple[list[int], list[float]]:
        """The newest reports of the measure, at most max(min_reports, 6), oldest first; none
        when the newest is already at the limit (no forecast then: `days_until_reached`)."""
        assert step.measure is not None
        kind, figure = step.measure
        wanted = max(step.min_reports, 6)
        times: list[int] = []
        values: list[float] = []
        for report in reversed(self.state.reports.get(kind, ())):
            value = report.data.get(figure)
            number: float
            if type(value) is float:  # the usual case, taken as it is (no `float()` call)
                number = value
            elif _is_number(value):
                number = float(value)
            else:
                continue
            if not values and number >= limit:
                return [], []
            times.append(report.micros())
            values.append(number)
            if len(values) == wanted:
                break
        times.reverse()
        values.reverse()
        return times, values


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: an int or a float, not a bool (exact types first: `isinstance` with a
    tuple of types is the dearer test)."""
    kind = type(value)
    if kind is float or kind is int:
        return True
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _composite(
    step: _Step, reasons: tuple[Reason, ...], ranks: list[int], seen: dict[str, Any]
) -> Reason | None:
    """Independent reasons from different signal kinds, together, raise the level.

    Lists, not sets: a handful of kinds and signals, and a signal id in a set is hashed by
    `uuid.UUID.__hash__`, Python code."""
    floor = step.floor
    kinds: list[SignalKind] = []
    for i, reason in enumerate(reasons):
        if ranks[i] >= floor and reason.kind is not _SILENCE:
            for kind in reason.signal_kinds:
                if kind not in kinds:
                    kinds.append(kind)
    if len(kinds) < step.min_kinds:
        return None
    kinds.sort()
    extra = {"value": float(len(kinds)), "kinds": ", ".join(kinds)}
    ids: list[uuid.UUID] = []
    numbers: list[int] = []  # of the ids, to compare them as UUIDs compare
    for r in reasons:
        if any(kind in kinds for kind in r.signal_kinds):
            for signal_id in r.signal_ids:
                number = signal_id.int
                if number not in numbers:
                    numbers.append(number)
                    ids.append(signal_id)
    return _reason(step, seen, extra, tuple(kinds), tuple(ids))


def _reason(
    step: _Step,
    seen: dict[str, Any],
    extra: dict[str, Any],
    kinds: tuple[SignalKind, ...],
    ids: tuple[uuid.UUID, ...],
    limit: float | None = None,
) -> Reason:
    """The reason: its figures are the ones the rule cites, then `extra` (what the rule worked
    out); its explanation may also name the `limit` (a forecast's)."""
    figures: dict[str, Any] = {}
    for name, group, rest in step.cites:
        if len(rest) == 1:
            figures_of: dict[str, Any] = seen[group]  # a dict: `.get` compiles to a C lookup
            value = figures_of.get(rest[0])
        else:
            value = lookup(seen, name)
        if value is not None:
            figures[name] = value
    if extra:
        figures.update(extra)
    if limit is not None:
        extra["limit"] = limit
    return Reason(
        rule_id=step.id,
        kind=step.kind,
        level=step.level,
        signal_kinds=kinds,
        explanation=Explanation(step.templates, seen, extra),
        figures=figures,
        limit=limit,
        signal_ids=ids,
    )

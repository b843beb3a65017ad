# ruff: noqa: E501 - the ruleset in this file reads best with one condition per line
"""The pure evaluation, rule kind by rule kind, with the edge cases a real series has."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cel
import pytest

from services.core.domain import Cluster, Level, SignalKind
from services.core.reference.files import packaged_care_types
from services.rules.cache import StateCache
from services.rules.cases import department_state, load_cases
from services.rules.conditions import ERROR, Unsure, compile_condition
from services.rules.evaluate import ORDER, Assessment, Reason, _most_severe_first, evaluate
from services.rules.explain import compile_template, render, render_template
from services.rules.loading import DepartmentFacts, Loaded, remember
from services.rules.ruleset import RuleKind, Ruleset, load_ruleset
from services.rules.series import Point, days_until_limit
from services.rules.state import DepartmentState, Report, RuleMemory, figures

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

RULES = """\
version: "t1"
name: unit
rules:
  - id: staffing.sick_leave_high
    kind: threshold
    level: watch
    signals: [staffing]
    when: has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 8.0
    explain:
      nl: "Ziekteverzuim {staffing.sick_leave_pct:.1f} %"
      en: "Sick leave {staffing.sick_leave_pct:.1f} %"
    source: test
  - id: staffing.vacancies_sustained
    kind: sustained
    level: threatened
    signals: [staffing]
    when: has(staffing.vacancy_pct) && staffing.vacancy_pct >= 15.0
    for: {reports: 3}
    explain: {nl: "Vacatures {staffing.vacancy_pct} %", en: "Vacancies {staffing.vacancy_pct} %"}
    source: test
  - id: staffing.no_psychiatrist
    kind: threshold
    level: critical
    signals: [staffing]
    clusters: [acute, clinical, secure]
    when: department.needs_psychiatrist && has(staffing.psychiatrist_fte) && staffing.psychiatrist_fte == 0.0
    explain: {nl: "Geen psychiater", en: "No psychiatrist"}
    source: test
  - id: waitlist.behandel_over_norm
    kind: threshold
    level: threatened
    signals: [waitlist]
    when: has(waitlist.behandelwachttijd_weeks) && has(norm.behandel_weeks) && waitlist.behandelwachttijd_weeks > norm.behandel_weeks
    explain: {nl: "Behandelwachttijd {waitlist.behandelwachttijd_weeks} weken", en: "Treatment wait {waitlist.behandelwachttijd_weeks} weeks"}
    source: Treeknorm
  - id: waitlist.growth
    kind: trend
    level: watch
    signals: [waitlist]
    measure: waitlist.waiting_count
    window_days: 90
    rise: 0.25
    explain: {nl: "Wachtlijst groeit {change}", en: "Waiting list grows {change}"}
    source: test
  - id: waitlist.forecast
    kind: forecast
    level: watch
    signals: [waitlist]
    measure: waitlist.behandelwachttijd_weeks
    limit: norm.behandel_weeks
    horizon_days: 56
    explain: {nl: "Over {days} dagen boven {limit} weken", en: "Above {limit} weeks in {days} days"}
    source: Treeknorm
  - id: closure.near
    kind: event
    level: critical
    signals: [closure]
    when: has(closure.days_until) && closure.days_until >= 0.0 && closure.days_until <= 90.0 && closure.scope == "full"
    explain: {nl: "Sluiting over {closure.days_until} dagen", en: "Closure in {closure.days_until} days"}
    source: test
  - id: silence.three_weeks
    kind: silence
    level: watch
    days: 21
    explain: {nl: "{days} dagen geen signaal", en: "No signal for {days} days"}
    source: test
  - id: composite.two_kinds
    kind: composite
    level: threatened
    min_kinds: 2
    from_level: watch
    explain: {nl: "Meerdere signalen ({kinds})", en: "Several signals ({kinds})"}
    source: test
"""


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    path = Path(tmp_path_factory.mktemp("rules")) / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_ruleset(path)


def report(kind: SignalKind, days_ago: float, **data: Any) -> Report:
    return Report(uuid.uuid4(), kind, NOW - timedelta(days=days_ago), data)


def department(
    *reports: Report,
    cluster: Cluster = Cluster.OUTREACH,
    care_type: str = "outreach.fact",
    memory: Mapping[str, Any] | None = None,
    registered_days_ago: int = 400,
) -> DepartmentState:
    by_kind: dict[SignalKind, list[Report]] = {}
    for item in sorted(reports, key=lambda r: r.observed_at):
        by_kind.setdefault(item.kind, []).append(item)
    return DepartmentState(
        department_id=uuid.uuid4(),
        care_type=care_type,
        cluster=cluster,
        scope="regional",
        capacity=None,
        registered_at=NOW - timedelta(days=registered_days_ago),
        norms={"aanmeld_weeks": 4.0, "behandel_weeks": 10.0},
        reports={kind: tuple(items) for kind, items in by_kind.items()},
        memory=dict(memory or {}),
    )


def ids(assessment: Assessment) -> list[str]:
    return [reason.rule_id for reason in assessment.reasons]


def test_nothing_wrong_is_ok(ruleset: Ruleset) -> None:
    state = department(report(SignalKind.STAFFING, 1, fte_budgeted=20, sick_leave_pct=5.0))
    assessment = evaluate(state, ruleset, NOW, trigger=SignalKind.STAFFING)
    assert (assessment.level, assessment.reasons, assessment.score) == (Level.OK, (), 0)
    assert assessment.ruleset_version == "t1"


def test_threshold_with_figures_and_a_dutch_decimal_comma(ruleset: Ruleset) -> None:
    latest = report(SignalKind.STAFFING, 1, fte_budgeted=20, sick_leave_pct=9.25)
    assessment = evaluate(department(latest), ruleset, NOW, trigger=SignalKind.STAFFING)
    (reason,) = assessment.reasons
    assert (assessment.level, reason.rule_id) == (Level.WATCH, "staffing.sick_leave_high")
    assert reason.explanation == {"nl": "Ziekteverzuim 9,2 %", "en": "Sick leave 9.2 %"}
    assert reason.figures == {"staffing.sick_leave_pct": 9.25}
    assert reason.signal_ids == (latest.id,)


def test_a_missing_figure_does_not_fire_and_does_not_fail(ruleset: Ruleset) -> None:
    state = department(report(SignalKind.STAFFING, 1, fte_budgeted=20))
    assert evaluate(state, ruleset, NOW).level is Level.OK


def test_norm_crossed_exactly_is_not_over_the_norm(ruleset: Ruleset) -> None:
    at = department(report(SignalKind.WAITLIST, 1, behandelwachttijd_weeks=10))
    over = department(report(SignalKind.WAITLIST, 1, behandelwachttijd_weeks=10.5))
    assert "waitlist.behandel_over_norm" not in ids(evaluate(at, ruleset, NOW))
    assert ids(evaluate(over, ruleset, NOW)) == ["waitlist.behandel_over_norm"]


def test_sustained_needs_three_reports_in_a_row(ruleset: Ruleset) -> None:
    high = {"fte_budgeted": 20, "vacancies_fte": 4}  # 20 % vacancies
    memory: Mapping[str, Any] = {}
    levels = []
    for n in range(3):
        state = department(report(SignalKind.STAFFING, 3 - n, **high), memory=memory)
        assessment = evaluate(state, ruleset, NOW, trigger=SignalKind.STAFFING)
        memory = assessment.memory
        levels.append(assessment.level)
    assert levels == [Level.OK, Level.OK, Level.THREATENED]
    # A report below the threshold breaks the run: it starts again.
    low = department(
        report(SignalKind.STAFFING, 0, fte_budgeted=20, vacancies_fte=1), memory=memory
    )
    after = evaluate(low, ruleset, NOW, trigger=SignalKind.STAFFING)
    assert after.level is Level.OK and "staffing.vacancies_sustained" not in after.memory


def test_a_report_of_another_kind_does_not_count_towards_a_sustained_rule(ruleset: Ruleset) -> None:
    high = report(SignalKind.STAFFING, 5, fte_budgeted=20, vacancies_fte=4)
    memory: Mapping[str, Any] = {}
    for trigger in (SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.WAITLIST):
        state = department(high, report(SignalKind.WAITLIST, 1, waiting_count=3), memory=memory)
        memory = evaluate(state, ruleset, NOW, trigger=trigger).memory
    assert memory["staffing.vacancies_sustained"].consecutive == 1


def test_a_run_first_seen_at_a_report_of_another_kind_counts_its_own_reports_only(
    ruleset: Ruleset,
) -> None:
    """Two kinds reported on one day, the other kind judged first: the staffing report is not
    counted twice (once at the waitlist's judgement, once at its own)."""
    high = {"fte_budgeted": 20, "vacancies_fte": 4}
    memory: Mapping[str, Any] = {}
    levels = []
    triggers = [SignalKind.WAITLIST, SignalKind.STAFFING, SignalKind.STAFFING, SignalKind.STAFFING]
    for n, trigger in enumerate(triggers):
        staffing = report(SignalKind.STAFFING, 4 - max(n, 1), **high)
        state = department(staffing, report(SignalKind.WAITLIST, 3, waiting_count=3), memory=memory)
        assessment = evaluate(state, ruleset, NOW, trigger=trigger)
        memory = assessment.memory
        levels.append(assessment.level)
    assert memory["staffing.vacancies_sustained"].consecutive == 3
    assert levels == [Level.OK, Level.OK, Level.OK, Level.THREATENED]


def test_scope_by_cluster(ruleset: Ruleset) -> None:
    nobody = report(SignalKind.STAFFING, 1, fte_budgeted=20, psychiatrist_fte=0)
    hic = department(nobody, cluster=Cluster.ACUTE, care_type="acute.hic")
    assert evaluate(hic, ruleset, NOW).level is Level.CRITICAL
    vip = department(nobody, cluster=Cluster.OUTREACH, care_type="outreach.vip")
    assert evaluate(vip, ruleset, NOW).level is Level.OK


def test_trend_over_the_window_ignores_older_reports(ruleset: Ruleset) -> None:
    rising = department(
        report(SignalKind.WAITLIST, 200, waiting_count=10),  # outside the 90-day window
        report(SignalKind.WAITLIST, 80, waiting_count=40),
        report(SignalKind.WAITLIST, 10, waiting_count=52),
    )
    reason = evaluate(rising, ruleset, NOW).reasons[0]
    assert (
        reason.rule_id == "waitlist.growth" and reason.explanation["nl"] == "Wachtlijst groeit 30 %"
    )
    one_in_window = department(
        report(SignalKind.WAITLIST, 200, waiting_count=10),
        report(SignalKind.WAITLIST, 10, waiting_count=52),
    )
    assert evaluate(one_in_window, ruleset, NOW).level is Level.OK, "one report is no trend"


def test_forecast_fires_before_the_norm_is_crossed(ruleset: Ruleset) -> None:
    creeping = department(
        *(
            report(SignalKind.WAITLIST, 90 - 30 * i, behandelwachttijd_weeks=6.0 + i)
            for i in range(4)
        )
    )  # 6, 7, 8, 9 weeks, one more a month: 10 weeks in about 30 days
    (reason,) = evaluate(creeping, ruleset, NOW).reasons
    assert reason.rule_id == "waitlist.forecast"
    assert reason.limit == 10.0 and reason.figures["days"] == 30
    assert reason.explanation["nl"] == "Over 30 dagen boven 10 weken"


def test_forecast_edge_cases(ruleset: Ruleset) -> None:
    first_ever = department(report(SignalKind.WAITLIST, 0, behandelwachttijd_weeks=9.5))
    assert evaluate(first_ever, ruleset, NOW).level is Level.OK
    slow = department(
        *(
            report(SignalKind.WAITLIST, 90 - 30 * i, behandelwachttijd_weeks=6.0 + 0.1 * i)
            for i in range(4)
        )
    )
    assert evaluate(slow, ruleset, NOW).level is Level.OK, "crosses long after the horizon"
    with_gap = department(
        report(SignalKind.WAITLIST, 300, behandelwachttijd_weeks=2.0),
        report(SignalKind.WAITLIST, 20, behandelwachttijd_weeks=8.5),
        report(SignalKind.WAITLIST, 10, behandelwachttijd_weeks=9.0),
    )
    assert "waitlist.forecast" in ids(evaluate(with_gap, ruleset, NOW))
    falling = department(
        *(
            report(SignalKind.WAITLIST, 90 - 30 * i, behandelwachttijd_weeks=9.0 - i)
            for i in range(4)
        )
    )
    assert evaluate(falling, ruleset, NOW).level is Level.OK


def test_closure_near_but_not_in_the_past(ruleset: Ruleset) -> None:
    soon = department(report(SignalKind.CLOSURE, 1, effective_date="2026-12-15", scope="full"))
    (reason,) = evaluate(soon, ruleset, NOW).reasons
    assert reason.level is Level.CRITICAL and reason.explanation["en"] == "Closure in 44 days"
    past = department(report(SignalKind.CLOSURE, 1, effective_date="2026-10-01", scope="full"))
    assert evaluate(past, ruleset, NOW).level is Level.OK


def test_silence_counts_from_the_last_report_or_registration(ruleset: Ruleset) -> None:
    quiet = department(report(SignalKind.STAFFING, 30, fte_budgeted=20, sick_leave_pct=3))
    (reason,) = evaluate(quiet, ruleset, NOW).reasons
    assert reason.rule_id == "silence.three_weeks" and reason.figures["days"] == 30
    never = department(registered_days_ago=5)
    assert evaluate(never, ruleset, NOW).level is Level.OK, "just registered"
    assert evaluate(department(registered_days_ago=40), ruleset, NOW).level is Level.WATCH


def test_silence_begins_at_exactly_its_days_whatever_the_zone(ruleset: Ruleset) -> None:
    """21 days to the microsecond is silence, a microsecond less is not; a report's zone
    changes neither."""
    amsterdam = timezone(timedelta(hours=1))
    for gap, silent in ((timedelta(days=21), True), (timedelta(days=21, microseconds=-1), False)):
        for zone in (UTC, amsterdam):
            at = (NOW - gap).astimezone(zone)
            quiet = department(Report(uuid.uuid4(), SignalKind.STAFFING, at, {"fte_budgeted": 9}))
            found = [r.figures["days"] for r in evaluate(quiet, ruleset, NOW).reasons]
            assert found == ([21] if silent else []), (gap, zone)


def test_composite_raises_when_two_kinds_agree(ruleset: Ruleset) -> None:
    state = department(
        report(SignalKind.STAFFING, 2, fte_budgeted=20, sick_leave_pct=9.0),
        report(SignalKind.WAITLIST, 80, waiting_count=40),
        report(SignalKind.WAITLIST, 1, waiting_count=60),
    )
    assessment = evaluate(state, ruleset, NOW)
    assert assessment.level is Level.THREATENED
    assert ids(assessment)[0] == "composite.two_kinds"
    assert assessment.reasons[0].explanation["nl"] == "Meerdere signalen (staffing, waitlist)"
    assert assessment.score == 3 + 1 + 1


# --- The fast paths give the same answers as the plain ones ------------------------------------
# Conditions run as closures over the figures (services/rules/conditions.py) must answer as their
# CEL programs do; the evaluation must come out the same with them as with CEL alone.

DEFAULT = load_ruleset()
CASES = Path(__file__).with_name("default_cases.yaml")

# Expressions at the edges of what the closures do: CEL's error absorption by && and ||, types
# that do not mix, NaN, division by zero, precedence, negation.
AWKWARD = (
    "staffing.sick_leave_pct >= 8.0",
    "has(staffing.sick_leave_pct) || staffing.temp_staff_pct > 20.0",
    "staffing.missing > 1.0 || staffing.sick_leave_pct > 1.0",
    "staffing.missing > 1.0 && false",
    "!(staffing.sick_leave_pct > 8.0) && has(staffing.fte_budgeted)",
    "!staffing.sick_leave_pct",
    "staffing.sick_leave_pct && true",
    "closure.scope == 1.0 || closure.scope == 'full'",
    "closure.scope < 1.0",
    "closure.scope < 'g' && closure.scope != \"partial\"",
    "department.needs_psychiatrist == true && department.scope == 'regional'",
    "department.needs_psychiatrist > false",
    "-staffing.vacancy_pct < -10.0 == true",
    "staffing.vacancies_fte / staffing.fte_budgeted * 100.0 >= 10.0",
    "staffing.vacancies_fte / 0.0 > 1.0",
    "staffing.fte_budgeted - staffing.fte_filled + 0.5 > 2.0e0",
    "waitlist.waiting_over_norm_count >= 0.5 * waitlist.waiting_count",
    "waitlist.behandelwachttijd_weeks > norm.behandel_weeks || waitlist.x > norm.y",
    "capacity.occupancy_pct",
    "norm.behandel_weeks",
    "(staffing.sick_leave_pct + 1.0) * 2.0",
    "1.0 < 2.0 < 3.0",
    # `has()` guards checked by the comparison that reads the same figure, nested where the
    # value (false or an error) shows, on either side of a pair, after another comparison:
    "!(has(staffing.sick_leave_pct) && staffing.sick_leave_pct > 8.0)",
    "!(has(waitlist.behandelwachttijd_weeks) && has(norm.behandel_weeks)"
    " && waitlist.behandelwachttijd_weeks > norm.behandel_weeks)",
    "has(norm.behandel_weeks) && staffing.sick_leave_pct > 1.0"
    " && waitlist.behandelwachttijd_weeks > norm.behandel_weeks",
    "!(has(closure.scope) && closure.scope == 'full' && has(closure.days_until)"
    " && closure.days_until > 90.0)",
    "has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 10.0"
    " && staffing.sick_leave_pct < 25.0 || false",
    "has(staffing.x) && staffing.sick_leave_pct > 1.0 && !has(staffing.fte_budgeted)",
)
# Expressions the closures leave to CEL: integers, functions, macros, deeper paths, and more.
OUTSIDE = (
    "staffing.sick_leave_pct >= 8",
    "size(staffing) > 0",
    "staffing.exists(k, k == 'x')",
    "has(staffing.a.b)",
    "staffing.a.b > 1.0",
    "'full' in closure",
    "staffing['sick_leave_pct'] > 8.0",
    "has(staffing.sick_leave_pct) ? staffing.sick_leave_pct > 8.0 : false",
    "staffing.sick_leave_pct >= double(8)",
    "closure.scope == null",
    "r'full' == closure.scope",
    "staffing.sick_leave_pct >= .5",
)
_GROUPS = {
    "staffing": (
        "sick_leave_pct",
        "temp_staff_pct",
        "vacancy_pct",
        "vacancies_fte",
        "fte_budgeted",
    ),
    "waitlist": ("waiting_count", "waiting_over_norm_count", "behandelwachttijd_weeks", "x"),
    "capacity": ("occupancy_pct", "closed_pct", "out_of_area_placements"),
    "closure": ("scope", "days_until", "capacity_lost"),
    "contract": ("status", "days_until_effective"),
    "admission_stop": ("active", "days_active"),
    "norm": ("behandel_weeks", "aanmeld_weeks", "y"),
    "department": ("needs_psychiatrist", "scope", "care_type", "capacity"),
}
_VALUES = (
    0.0,
    -0.0,
    8.0,
    7.999,
    10.0,
    15.0,
    25.0,
    100.0,
    1e308,
    float("inf"),
    float("nan"),
    -3.5,
    "full",
    "partial",
    "regional",
    "at_risk",
    "",
    True,
    False,
    8,
    0,
)


def random_figures(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Figures as a condition sees them, and some it never gets (ints), each maybe missing."""
    return {
        group: {name: rng.choice(_VALUES) for name in names if rng.random() < 0.7}
        for group, names in _GROUPS.items()
    }


def cel_answer(program: cel.Program, seen: dict[str, Any]) -> Any:
    try:
        return program.execute(cel.Context(seen))
    except (KeyError, RuntimeError, ValueError, TypeError):
        return CEL_ERROR


CEL_ERROR = object()


def same(fast: Any, slow: Any) -> bool:
    """The closure's value against the program's: errors alike, NaN alike, bools as bools."""
    if fast is ERROR or slow is CEL_ERROR:
        return fast is ERROR and slow is CEL_ERROR
    if isinstance(fast, float) and isinstance(slow, float) and fast != fast:
        return slow != slow
    return type(fast) is type(slow) and fast == slow


def programs_to_check() -> list[cel.Program]:
    found = [
        program
        for compiled in DEFAULT.rules
        for program in (compiled.condition, compiled.limit)
        if program is not None
    ]
    return found + [cel.compile(source) for source in AWKWARD]


def test_closures_answer_as_the_cel_programs_do() -> None:
    rng = random.Random(20261101)  # noqa: S311 - repeatable test data
    checked = unsure = 0
    for program in programs_to_check():
        closure = compile_condition(program)
        assert closure is not None, program.source
        for _ in range(300):
            seen = random_figures(rng)
            try:
                fast = closure(seen)
            except Unsure:
                unsure += 1  # evaluate() asks the CEL program then
                continue
            assert same(fast, cel_answer(program, seen)), (program.source, seen)
            checked += 1
    assert checked > 5000 and unsure > 0, "both paths should have been taken"


def test_expressions_beyond_the_closures_are_left_to_cel() -> None:
    for source in OUTSIDE:
        assert compile_condition(cel.compile(source)) is None, source
    assert all(
        compiled.fast_condition is not None for compiled in DEFAULT.rules if compiled.condition
    )


def evaluation_facts(assessment: Assessment) -> tuple[Any, ...]:
    """Everything an assessment says, with the explanations rendered."""
    return (
        assessment.level,
        assessment.score,
        assessment.ruleset_version,
        dict(assessment.memory),
        [
            (
                r.rule_id,
                r.kind,
                r.level,
                r.signal_kinds,
                dict(r.explanation),
                dict(r.figures),
                r.limit,
                r.signal_ids,
            )
            for r in assessment.reasons
        ],
    )


def test_closures_and_cel_alone_judge_the_expert_cases_alike() -> None:
    """Every step of every case in default_cases.yaml, with and without the closures."""
    slow = DEFAULT.cel_only()
    cases, _ = load_cases(CASES)
    steps = 0
    for case in cases.cases:
        reports: list[Report] = []
        memory: dict[str, RuleMemory] = {}
        for index, signal in enumerate(sorted(case.signals, key=lambda s: str(s.observed_at))):
            at = (
                datetime.combine(signal.observed_at, datetime.min.time(), UTC)
                if not isinstance(signal.observed_at, datetime)
                else signal.observed_at
            )
            reports.append(Report(uuid.UUID(int=index), signal.kind, at, signal.data))
            state = department_state(case, reports, memory)
            fast = evaluate(state, DEFAULT, at, trigger=signal.kind)
            assert evaluation_facts(fast) == evaluation_facts(
                evaluate(state, slow, at, trigger=signal.kind)
            ), case.name
            memory = dict(fast.memory)
            steps += 1
    assert steps >= 22


def random_department(rng: random.Random) -> DepartmentState:
    """A department of any care type with a random history of every kind of report."""
    row = rng.choice(packaged_care_types())
    reports: dict[SignalKind, tuple[Report, ...]] = {}
    for kind in rng.sample(list(SignalKind), rng.randint(0, 6)):
        count = rng.randint(1, 14)
        reports[kind] = tuple(
            report(
                kind, rng.choice([30, 29, 7]) * (count - n) + rng.random(), **random_data(kind, rng)
            )
            for n in range(count)
        )
    return DepartmentState(
        department_id=uuid.uuid4(),
        care_type=row.code,
        cluster=Cluster(row.cluster),
        scope=rng.choice(["regional", "supra_regional"]),
        capacity=rng.choice([None, 10, 24]),
        registered_at=NOW - timedelta(days=50),
        norms={"aanmeld_weeks": 4.0, "behandel_weeks": 10.0} if row.waiting_norms_apply else None,
        reports=reports,
        memory={
            rule: RuleMemory(rng.randint(1, 4), NOW - timedelta(days=rng.randint(0, 60)))
            for rule in rng.sample([c.rule.id for c in DEFAULT.rules], rng.randint(0, 4))
        },
    )


def random_data(kind: SignalKind, rng: random.Random) -> dict[str, Any]:
    def some(*options: Any) -> Any:
        return rng.choice(options)

    day = (NOW + timedelta(days=rng.randint(-40, 200))).date().isoformat()
    found: dict[str, Any] = {
        SignalKind.STAFFING: {
            "fte_budgeted": some(30.0, 20, 0.0),
            "vacancies_fte": some(0, 3.0, 6.0, rng.uniform(0, 8)),
            "sick_leave_pct": some(8, 7.99, rng.uniform(0, 15), float("nan")),
            "temp_staff_pct": rng.uniform(0, 40),
            "psychiatrist_fte": some(0, 0.0, 2.5, True),
            "unfilled_shifts_pct": some(5, 10.0, rng.uniform(0, 15)),
        },
        SignalKind.WAITLIST: {
            "waiting_count": some(0, rng.randint(1, 100), "12"),
            "aanmeldwachttijd_weeks": some(4, 4.5, rng.uniform(0, 9)),
            "behandelwachttijd_weeks": some(10, rng.uniform(0, 15), float("inf")),
            "waiting_over_norm_count": rng.randint(0, 60),
        },
        SignalKind.CAPACITY: {
            "beds_total": some(0, 10, 24),
            "beds_occupied": rng.randint(0, 24),
            "beds_closed": some(0, 10, 24, rng.randint(0, 5)),
            "out_of_area_placements": rng.randint(0, 3),
        },
        SignalKind.ADMISSION_STOP: {"active": rng.random() < 0.7, "since": some(None, day)},
        SignalKind.CLOSURE: {"effective_date": day, "scope": some("full", "partial")},
        SignalKind.CONTRACT: {
            "status": some("at_risk", "not_renewed", "contracted"),
            "effective_date": day,
        },
    }[kind]
    return {k: v for k, v in found.items() if v is not None and rng.random() < 0.85}


def test_closures_and_cel_alone_judge_random_departments_alike() -> None:
    rng = random.Random(7)  # noqa: S311 - repeatable test data
    slow = DEFAULT.cel_only()
    for _ in range(400):
        state = random_department(rng)
        trigger = rng.choice([None, *state.reports])
        now = NOW + timedelta(days=rng.choice([0, 10, 60]))
        fast = evaluate(state, DEFAULT, now, trigger=trigger)
        assert evaluation_facts(fast) == evaluation_facts(
            evaluate(state, slow, now, trigger=trigger)
        )


def test_explanations_are_rendered_when_read_as_render_does() -> None:
    values = {
        "staffing": {"sick_leave_pct": 9.25, "vacancies_fte": 3.0},
        "closure": {"days_until": 44.0},
        "department": {"needs_psychiatrist": True},
    }
    extra = {"value": 4.0, "change": "31 %", "days": 12, "kinds": "staffing, waitlist"}
    for compiled in DEFAULT.rules:
        for language in ("nl", "en"):
            text = getattr(compiled.rule.explain, language)
            expected = render(text, {**values, **extra}, language)
            assert render_template(compile_template(text), extra, values, language) == expected


def test_the_forecast_fits_the_same_line_as_five_sums() -> None:
    """`days_until_limit`'s two loops give the same figures as the textbook formula."""
    rng = random.Random(3)  # noqa: S311 - repeatable test data
    start = NOW - timedelta(days=200)
    for _ in range(2000):
        zones = [timezone(timedelta(hours=hours)) for hours in (0, 1, 2, -5)]
        points = [  # in several zones: the days between two reports do not depend on theirs
            Point(
                (start + timedelta(days=30 * n + rng.random())).astimezone(rng.choice(zones)),
                rng.choice([rng.uniform(0, 20), 9.0]),
            )
            for n in range(rng.randint(0, 7))
        ]
        limit = rng.choice([10.0, rng.uniform(0, 25)])
        assert days_until_limit(points, limit) == five_sums(points, limit)


def five_sums(points: list[Point], limit: float) -> float | None:
    if len(points) < 2 or points[-1].value >= limit:
        return None
    xs = [(p.at - points[0].at).total_seconds() / 86400 for p in points]
    ys = [p.value for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    if slope <= 0:
        return None
    return max(0.0, (limit - (mean_y + slope * (xs[-1] - mean_x))) / slope)


def test_a_state_with_newer_reports_or_memory_keeps_everything_else() -> None:
    """`with_reports` and `with_memory` stand in for `dataclasses.replace`: every other field,
    however many there are, must come through unchanged."""
    state = department(report(SignalKind.STAFFING, 30, vacancy_rate=0.2), cluster=Cluster.ACUTE)
    state.capacity = 24
    newer: dict[SignalKind, tuple[Report, ...]] = {
        SignalKind.CAPACITY: (report(SignalKind.CAPACITY, 1, beds_occupied=23),)
    }
    memory = {"staffing.vacancies": RuleMemory(2, NOW)}
    assert state.with_reports(newer) == replace(state, reports=newer)
    assert state.with_memory(memory) == replace(state, memory=memory)
    assert state.with_memory(memory).with_reports(newer) == replace(
        state, memory=memory, reports=newer
    )


def test_reasons_are_ordered_most_severe_first_then_by_rule_id() -> None:
    """`_most_severe_first` orders as `sort(key=(-level, rule id))` would, ties kept in turn."""
    rng = random.Random(5)  # noqa: S311 - repeatable test data
    for _ in range(500):
        reasons = [
            Reason(
                rule_id=rng.choice(["a.one", "b.two", "c.three", "d.four"]),
                kind=RuleKind.THRESHOLD,
                level=rng.choice(list(Level)),
                signal_kinds=(),
                explanation={},
                figures={"n": n},  # tells equal ones apart
                limit=None,
                signal_ids=(),
            )
            for n in range(rng.randint(0, 9))
        ]
        expected = sorted(reasons, key=lambda r: (-ORDER[r.level], r.rule_id))
        _most_severe_first(reasons)
        assert [(r.level, r.rule_id, r.figures["n"]) for r in reasons] == [
            (r.level, r.rule_id, r.figures["n"]) for r in expected
        ]


def test_a_report_keeps_its_figures_and_a_remembered_department_only_the_newest() -> None:
    """A report's figures are worked out at its first judgement and kept (the worker judges
    a kind's newest again at every signal of another kind); what an older report kept is let go
    when the department is remembered, so a year of reports does not keep a year of figures."""
    older = report(SignalKind.STAFFING, 60, fte_budgeted=20, vacancies_fte=3.0, note="x")
    newer = report(SignalKind.STAFFING, 30, fte_budgeted=20.0, vacancies_fte=4.0)
    state = department(older, newer, report(SignalKind.WAITLIST, 30, waiting_count=12))
    seen = figures(state, NOW.date())
    assert seen["staffing"] is newer.measured()  # kept, not worked out again
    assert seen["staffing"] == {"fte_budgeted": 20.0, "vacancies_fte": 4.0, "vacancy_pct": 20.0}
    assert seen["waitlist"] == {"waiting_count": 12.0}
    assert type(seen["waitlist"]["waiting_count"]) is float
    figures_of_older = older.measured()  # as when it was the newest
    assert figures_of_older == {"fte_budgeted": 20.0, "vacancies_fte": 3.0, "vacancy_pct": 15.0}
    assert list(figures_of_older) == ["fte_budgeted", "vacancies_fte", "vacancy_pct"]

    facts = DepartmentFacts(
        *(state.department_id, "F1", "", "Utrecht", 1, state.care_type, state.cluster),
        *("regional", None, True),
    )
    cache = StateCache()
    remember(cache, {state.department_id: Loaded(facts, state, None, NOW - timedelta(days=400))})
    assert older.measured() is not figures_of_older  # let go, and worked out anew if asked
    assert older.measured() == figures_of_older
    assert newer.measured() is seen["staffing"]  # the newest keeps its own

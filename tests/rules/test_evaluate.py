# ruff: noqa: E501 - the ruleset in this file reads best with one condition per line
"""The pure evaluation, rule kind by rule kind, with the edge cases a real series has."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.core.domain import Cluster, Level, SignalKind
from services.rules.evaluate import Assessment, evaluate
from services.rules.ruleset import Ruleset, load_ruleset
from services.rules.state import DepartmentState, Report

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
        memory=memory or {},
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

"""The ladder's pure decisions and the Dutch working-day calendar, with plain values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.core.domain import AlertKind, AlertStatus, EscalationStep, Level, Scope
from services.core.events.payloads import EscalationReason
from services.notify.calendar import add_working_days, is_working_day, working_days_between
from services.notify.ladder import Escalate, LadderState, Remind, due, due_at, place
from services.notify.policy import AlertShape, PolicyInvalid, load_policy

AMS = ZoneInfo("Europe/Amsterdam")
POLICY = load_policy()
FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=AMS)  # a Friday


def _at(day: int, month: int = 12, year: int = 2026, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=AMS)


# --- the calendar ---------------------------------------------------------------------------------


def test_weekends_and_national_holidays_are_not_working_days() -> None:
    assert is_working_day(_at(30, 11).date())  # Monday
    assert not is_working_day(_at(28, 11).date())  # Saturday
    assert not is_working_day(_at(25).date())  # Christmas
    assert not is_working_day(_at(27, 4, 2027).date())  # King's Day
    assert not is_working_day(_at(6, 5, 2027).date())  # Ascension Day


def test_three_working_days_from_friday_is_wednesday_same_time() -> None:
    assert add_working_days(FRIDAY, 3, AMS) == _at(2)


def test_started_on_a_weekend_the_count_begins_on_monday() -> None:
    saturday = _at(28, 11)
    assert add_working_days(saturday, 3, AMS) == _at(2)  # Monday, Tuesday, Wednesday
    assert add_working_days(saturday, 0, AMS) == _at(30, 11)


def test_christmas_and_new_year_are_skipped() -> None:
    # Wednesday 23 December + 3: Thursday 24, then Christmas, a weekend, Monday 28, Tuesday 29.
    assert add_working_days(_at(23), 3, AMS) == _at(29)
    assert working_days_between(_at(23), _at(29), AMS) == 3
    assert add_working_days(_at(31), 1, AMS) == _at(4, 1, 2027)  # 1 January is a holiday


def test_a_deadline_keeps_local_time_across_the_change_to_winter_time() -> None:
    before = datetime(2026, 10, 23, 9, 0, tzinfo=AMS)  # Friday, summer time
    after = add_working_days(before, 1, AMS)
    assert after.astimezone(AMS).hour == 9 and after.utcoffset() == timedelta(hours=1)


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(FRIDAY, -1, AMS)


# --- the policy file -----------------------------------------------------------------------------


def _shape(
    level: Level,
    *,
    kind: AlertKind = AlertKind.DEPARTMENT,
    no_alternative: bool = False,
    scope: Scope = Scope.REGIONAL,
) -> AlertShape:
    return AlertShape(kind=kind, level=level, no_alternative=no_alternative, scope=scope)


@pytest.mark.parametrize(
    ("shape", "step"),
    [
        (_shape(Level.WATCH), EscalationStep.PROVIDER),
        (_shape(Level.THREATENED), EscalationStep.REGIONAL_TABLE),
        (_shape(Level.CRITICAL), EscalationStep.NATIONAL_TABLE),
        (_shape(Level.THREATENED, no_alternative=True), EscalationStep.NATIONAL_TABLE),
        (_shape(Level.WATCH, scope=Scope.SUPRA_REGIONAL), EscalationStep.NATIONAL_TABLE),
        (_shape(Level.CRITICAL, kind=AlertKind.COVERAGE), EscalationStep.NATIONAL_TABLE),
    ],
)
def test_the_default_policy_puts_each_alert_at_the_step_the_issue_names(
    shape: AlertShape, step: EscalationStep
) -> None:
    assert POLICY.start_step(shape) is step


def test_a_broken_policy_is_refused_with_line_numbers(tmp_path: Path) -> None:
    text = (Path(POLICY.path).read_text(encoding="utf-8")).replace(
        "acknowledge_within_working_days: 3", "acknowledge_within_working_days: -3"
    )
    broken = tmp_path / "policy.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(broken)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "-3" in row)
    assert any(p.startswith(f"line {line}:") for p in caught.value.problems), caught.value


def test_a_ladder_that_stops_telling_someone_is_refused(tmp_path: Path) -> None:
    text = Path(POLICY.path).read_text(encoding="utf-8")
    narrowed = text.replace(
        "tell: [provider, coordinating_insurer, regional_table, national_table]",
        "tell: [national_table]",
    )
    path = tmp_path / "policy.yaml"
    path.write_text(narrowed, encoding="utf-8")
    with pytest.raises(PolicyInvalid, match="stops telling"):
        load_policy(path)


# --- the ladder ----------------------------------------------------------------------------------


def _state(
    level: Level = Level.WATCH,
    *,
    status: AlertStatus = AlertStatus.OPEN,
    step: EscalationStep = EscalationStep.PROVIDER,
    step_due_at: datetime | None = None,
    acknowledged_at: datetime | None = None,
    reminded_at: datetime | None = None,
    silenced: bool = False,
) -> LadderState:
    return LadderState(
        shape=_shape(level),
        status=status,
        step=step,
        step_due_at=step_due_at,
        acknowledged_at=acknowledged_at,
        reminded_at=reminded_at,
        silenced=silenced,
    )


def test_a_new_threatened_alert_goes_to_the_regional_table_at_once() -> None:
    placement = place(POLICY, _state(Level.THREATENED), None)
    assert placement.escalate == Escalate(
        EscalationStep.REGIONAL_TABLE,
        EscalationReason.LEVEL,
        "The level became threatened: the regional table is told.",
    )


def test_a_rise_in_level_asks_for_a_new_acknowledgement_and_restarts_the_timer() -> None:
    state = _state(
        Level.THREATENED, status=AlertStatus.ACKNOWLEDGED, step=EscalationStep.REGIONAL_TABLE
    )
    placement = place(POLICY, state, Level.WATCH)
    assert placement.escalate is None and placement.reopen and placement.restart_timer
    # A fall in level changes nothing on the ladder.
    fell = place(POLICY, _state(Level.WATCH, step=EscalationStep.REGIONAL_TABLE), Level.THREATENED)
    assert fell.escalate is None and not fell.reopen and not fell.restart_timer


def test_a_silenced_alert_stays_put_unless_it_turns_critical() -> None:
    assert place(POLICY, _state(Level.THREATENED, silenced=True), Level.WATCH).escalate is None
    critical = place(POLICY, _state(Level.CRITICAL, silenced=True), Level.THREATENED)
    assert critical.escalate is not None
    assert critical.escalate.to is EscalationStep.NATIONAL_TABLE


def test_the_timer_moves_an_unacknowledged_alert_one_step_up() -> None:
    deadline = due_at(POLICY, EscalationStep.PROVIDER, FRIDAY, AMS)
    assert deadline == _at(4)  # five working days after Friday 27 November
    state = _state(step_due_at=deadline)
    assert due(POLICY, state, deadline - timedelta(minutes=1), AMS) is None
    moved = due(POLICY, state, deadline, AMS)
    assert isinstance(moved, Escalate) and moved.to is EscalationStep.REGIONAL_TABLE
    assert moved.reason is EscalationReason.TIMER
    assert due(POLICY, _state(step_due_at=deadline, silenced=True), deadline, AMS) is None


def test_the_top_of_the_ladder_has_no_timer() -> None:
    assert due_at(POLICY, EscalationStep.NATIONAL_TABLE, FRIDAY, AMS) is None


def test_acknowledged_and_forgotten_is_announced_again_then_moved_up() -> None:
    acknowledged = _at(1)
    state = _state(
        status=AlertStatus.ACKNOWLEDGED,
        step=EscalationStep.REGIONAL_TABLE,
        acknowledged_at=acknowledged,
    )
    remind_at = add_working_days(acknowledged, 20, AMS)
    assert due(POLICY, state, remind_at - timedelta(seconds=1), AMS) is None
    assert due(POLICY, state, remind_at, AMS) == Remind("acknowledged_open")
    reminded = _state(
        status=AlertStatus.ACKNOWLEDGED,
        step=EscalationStep.REGIONAL_TABLE,
        acknowledged_at=acknowledged,
        reminded_at=remind_at,
    )
    escalate_at = add_working_days(remind_at, 20, AMS)
    assert due(POLICY, reminded, escalate_at - timedelta(seconds=1), AMS) is None
    moved = due(POLICY, reminded, escalate_at, AMS)
    assert isinstance(moved, Escalate) and moved.to is EscalationStep.NATIONAL_TABLE


def test_resolved_alerts_are_left_alone() -> None:
    state = _state(status=AlertStatus.RESOLVED, step_due_at=FRIDAY)
    assert due(POLICY, state, FRIDAY + timedelta(days=100), AMS) is None
    assert datetime.now(UTC) > FRIDAY  # the fixed dates above are in the past: no clock needed


def test_escalation_check_reports_the_ladder_or_the_problems_with_their_lines(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["escalation", "check", "--json"])
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert [s["step"] for s in report["ladder"]] == ["provider", "regional_table", "national_table"]
    assert report["ladder"][1]["acknowledge_within_working_days"] == 3
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: '1'\nladder: 3\n", encoding="utf-8")
    refused = runner.invoke(app, ["escalation", "check", str(bad), "--json"])
    assert refused.exit_code == 2
    problems = json.loads(refused.stdout)["problems"]
    assert "line 2: ladder: Input should be a valid dictionary" in problems

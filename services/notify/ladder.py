"""The escalation ladder as pure decisions: where an alert belongs, and what is due when.

The worker and the timer sweep around it read the alert, ask these functions, and write what
they answer (the step, the timer, an `escalated` or `reminded` event) in one transaction. Kept
free of I/O so that every rule of the ladder is tested with plain values and a fixed clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.core.domain import AlertKind, AlertStatus, EscalationStep, Level
from services.core.events.payloads import EscalationReason
from services.notify.calendar import add_working_days
from services.notify.policy import LADDER, AlertShape, Policy, rank

_LEVEL_RANK = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}


@dataclass(frozen=True)
class LadderState:
    """An alert as the ladder sees it."""

    shape: AlertShape
    status: AlertStatus
    step: EscalationStep
    step_due_at: datetime | None
    acknowledged_at: datetime | None
    reminded_at: datetime | None
    silenced: bool


@dataclass(frozen=True)
class Escalate:
    """Move the alert up to `to` (the timer restarts there; an acknowledgement lapses)."""

    to: EscalationStep
    reason: EscalationReason
    explanation: str


@dataclass(frozen=True)
class Remind:
    """Announce the alert again to the step it is at."""

    reason: str  # "acknowledged_open" or "silence_ended"


@dataclass(frozen=True)
class Placement:
    """What a change of level or reasons does to an alert's place on the ladder."""

    escalate: Escalate | None
    reopen: bool  # a rise in level asks for a new acknowledgement
    restart_timer: bool


def next_step(step: EscalationStep) -> EscalationStep | None:
    index = rank(step) + 1
    return LADDER[index] if index < len(LADDER) else None


def due_at(
    policy: Policy, step: EscalationStep, since: datetime, zone: ZoneInfo
) -> datetime | None:
    """When an unacknowledged alert at `step` moves up; None at the top of the ladder."""
    days = policy.step(step).acknowledge_within_working_days
    if days is None or next_step(step) is None:
        return None
    return add_working_days(since, days, zone)


def place(policy: Policy, state: LadderState, previous_level: Level | None) -> Placement:
    """After the engine opened or changed an alert: put it at the step it belongs at.

    A silenced alert stays where it is unless it turned critical: silencing quiets a planned,
    announced change, not an acute one.
    """
    rose = previous_level is None or _LEVEL_RANK[state.shape.level] > _LEVEL_RANK[previous_level]
    if state.silenced and state.shape.level is not Level.CRITICAL:
        return Placement(escalate=None, reopen=False, restart_timer=False)
    target = policy.start_step(state.shape)
    escalate = None
    if rank(target) > rank(state.step):
        escalate = Escalate(target, *_why(state.shape, target))
    reopen = rose and previous_level is not None and state.status is AlertStatus.ACKNOWLEDGED
    return Placement(escalate=escalate, reopen=reopen, restart_timer=rose)


def _why(shape: AlertShape, target: EscalationStep) -> tuple[EscalationReason, str]:
    where = target.value.replace("_", " ")
    if shape.kind is AlertKind.COVERAGE:
        return (
            EscalationReason.COVERAGE,
            f"The region has no unthreatened care of this type left: the {where} is told.",
        )
    if shape.no_alternative:
        return (
            EscalationReason.LEVEL,
            f"No equivalent alternative in reach: the {where} is told.",
        )
    return EscalationReason.LEVEL, f"The level became {shape.level.value}: the {where} is told."


def due(
    policy: Policy, state: LadderState, now: datetime, zone: ZoneInfo
) -> Escalate | Remind | None:
    """What the timers ask of this alert now, if anything.

    Open and not acknowledged in time at its step: one step up. Acknowledged but still open after
    `remind_after` working days: announced again; after `escalate_after` more: one step up (at
    the top of the ladder: announced again). A silenced alert's timers wait for the silence.
    """
    if state.status is AlertStatus.RESOLVED or state.silenced:
        return None
    upper = next_step(state.step)
    if state.status is AlertStatus.OPEN:
        if state.step_due_at is not None and now >= state.step_due_at and upper is not None:
            days = policy.step(state.step).acknowledge_within_working_days
            return Escalate(
                upper,
                EscalationReason.TIMER,
                f"Not acknowledged within {days} working days at the"
                f" {state.step.value.replace('_', ' ')}: the {upper.value.replace('_', ' ')}"
                " is told.",
            )
        return None
    if state.acknowledged_at is None:
        return None
    rules = policy.file.acknowledged
    if state.reminded_at is None:
        if now >= add_working_days(state.acknowledged_at, rules.remind_after_working_days, zone):
            return Remind("acknowledged_open")
        return None
    if now < add_working_days(state.reminded_at, rules.escalate_after_working_days, zone):
        return None
    if upper is None:
        return Remind("acknowledged_open")
    total = rules.remind_after_working_days + rules.escalate_after_working_days
    return Escalate(
        upper,
        EscalationReason.TIMER,
        f"Acknowledged but still open after {total} working days: the"
        f" {upper.value.replace('_', ' ')} is told.",
    )

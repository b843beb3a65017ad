"""What the ladder and the people at the tables do to an alert, each with its timeline entry and
its event, written in the caller's transaction (the row is locked by the caller).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
from services.core.db.models import AlertEvent, Department
from services.core.db.models import Silence as SilenceRow
from services.core.domain import AlertEventType, AlertStatus, EscalationStep
from services.core.events.outbox import NewEvent
from services.core.events.payloads import (
    Actor,
    AlertAcknowledged,
    AlertCommented,
    AlertEscalated,
    AlertReminded,
    AlertResolved,
    AlertSilenced,
    EscalationReason,
    ReminderReason,
    ResolutionReason,
    Service,
    new_event,
)
from services.core.events.payloads import Silence as SilencePart
from services.notify.ladder import due_at
from services.notify.parties import AlertContext
from services.notify.policy import Policy
from services.rules.alerts import timeline_entry


def actor(caller: Caller, user_name: str | None = None) -> Actor:
    return Actor(
        organisation_id=caller.organisation_id,
        organisation=caller.organisation_name,
        role=caller.role,
        user=user_name,
    )


def escalate(
    session: AsyncSession,
    context: AlertContext,
    to: EscalationStep,
    reason: EscalationReason,
    explanation: str,
    now: datetime,
    *,
    policy: Policy,
    zone: ZoneInfo,
) -> NewEvent:
    """One or more steps up: the new step's timer starts, an acknowledgement lapses."""
    entry, event = escalation(context, to, reason, explanation, now, policy=policy, zone=zone)
    session.add(entry)
    return event


def escalation(
    context: AlertContext,
    to: EscalationStep,
    reason: EscalationReason,
    explanation: str,
    now: datetime,
    *,
    policy: Policy,
    zone: ZoneInfo,
) -> tuple[AlertEvent, NewEvent]:
    """`escalate` on the alert object alone: the timeline entry is the caller's to write (the
    notifier's batches write all of theirs in one statement)."""
    alert = context.alert
    from_step = alert.escalation
    alert.escalation = to
    alert.escalated_at = now
    if alert.status is AlertStatus.ACKNOWLEDGED:
        alert.status = AlertStatus.OPEN  # the wider circle has to take it on anew
    alert.reminded_at = None
    alert.step_due_at = due_at(policy, to, now, zone)
    entry = timeline_entry(
        alert,
        AlertEventType.ESCALATED,
        now,
        from_step=from_step.value,
        to_step=to.value,
        reason=reason.value,
        explanation=explanation,
    )
    payload = AlertEscalated(
        alert=context.part(),
        from_step=from_step,
        to_step=to,
        reason=reason,
        explanation=explanation,
    )
    return entry, new_event(payload, source=Service.NOTIFY)


def remind(
    session: AsyncSession,
    context: AlertContext,
    reason: ReminderReason,
    explanation: str,
    now: datetime,
) -> NewEvent:
    """Announce the alert again to its step."""
    alert = context.alert
    if reason is ReminderReason.ACKNOWLEDGED_OPEN:
        alert.reminded_at = now
    session.add(
        timeline_entry(
            alert, AlertEventType.REANNOUNCED, now, reason=reason.value, explanation=explanation
        ),
    )
    payload = AlertReminded(alert=context.part(), reason=reason, explanation=explanation)
    return new_event(payload, source=Service.NOTIFY)


def acknowledge(
    session: AsyncSession,
    context: AlertContext,
    by: Caller,
    user_name: str | None,
    note: str | None,
    now: datetime,
) -> NewEvent:
    """Someone at the alert's step takes it on: the step's timer stops."""
    alert = context.alert
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by_id = by.organisation_id
    alert.step_due_at = None
    alert.reminded_at = None
    entry = timeline_entry(alert, AlertEventType.ACKNOWLEDGED, now)
    entry.actor_organisation_id = by.organisation_id
    entry.actor_user_id = by.user_id
    entry.note = note
    session.add(entry)
    payload = AlertAcknowledged(
        alert=context.part(), acknowledged_by=actor(by, user_name), note=note
    )
    return new_event(payload, source=Service.NOTIFY)


def comment(
    session: AsyncSession,
    context: AlertContext,
    by: Caller,
    user_name: str | None,
    note: str,
    now: datetime,
) -> NewEvent:
    entry = timeline_entry(context.alert, AlertEventType.COMMENTED, now)
    entry.actor_organisation_id = by.organisation_id
    entry.actor_user_id = by.user_id
    entry.note = note
    session.add(entry)
    payload = AlertCommented(alert=context.part(), commented_by=actor(by, user_name), note=note)
    return new_event(payload, source=Service.NOTIFY)


def resolve(
    session: AsyncSession,
    context: AlertContext,
    by: Caller,
    user_name: str | None,
    reason: ResolutionReason,
    note: str | None,
    now: datetime,
) -> NewEvent:
    """Closed by hand: escalates no further; everyone who was told hears of it."""
    alert = context.alert
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolution = reason.value
    alert.step_due_at = None
    entry = timeline_entry(alert, AlertEventType.RESOLVED, now, reason=reason.value)
    entry.actor_organisation_id = by.organisation_id
    entry.actor_user_id = by.user_id
    entry.note = note
    session.add(entry)
    payload = AlertResolved(
        alert=context.part(), reason=reason, resolved_by=actor(by, user_name), note=note
    )
    return new_event(payload, source=Service.NOTIFY)


def silenced(
    session: AsyncSession,
    silence: SilenceRow,
    department: Department,
    context: AlertContext | None,
    by: Caller,
    user_name: str | None,
    now: datetime,
) -> NewEvent:
    """A silence set or lifted: on the open alert's timeline (if any), and as an event."""
    if context is not None:
        kind = AlertEventType.UNSILENCED if silence.lifted_at else AlertEventType.SILENCED
        entry = timeline_entry(
            context.alert,
            kind,
            now,
            silence_id=str(silence.id),
            starts_at=silence.starts_at.isoformat(),
            ends_at=silence.ends_at.isoformat(),
        )
        entry.actor_organisation_id = by.organisation_id
        entry.actor_user_id = by.user_id
        entry.note = silence.reason
        session.add(entry)
    payload = AlertSilenced(
        silence=SilencePart(
            id=silence.id,
            department_id=department.id,
            department=department.code,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            reason=silence.reason,
            lifted_at=silence.lifted_at,
        ),
        alert=context.part() if context is not None else None,
        silenced_by=actor(by, user_name),
    )
    return new_event(payload, source=Service.NOTIFY)

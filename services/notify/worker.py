"""The notifier's consumer group: alert events in; the ladder, deliveries and e-mail out.

Every alert event on the alerts topic passes here once (the backbone's exactly-once apply):
- an alert the engine opened or changed is put at the step of the ladder it belongs at
  (`ladder.place`), which may escalate it at once (`alert.escalated`, back on the same topic);
- the event is announced to the parties told at the alert's step: a delivery per matching
  webhook subscription of each of their organisations, and an e-mail to the people of the
  audiences the policy e-mails. A silenced department's alerts are not announced, except when
  critical and when resolved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.domain import AlertStatus, EscalationStep, Level
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType, Topic
from services.notify.actions import escalate
from services.notify.deliveries.enqueue import enqueue_email, enqueue_webhooks
from services.notify.ladder import LadderState, due_at, place
from services.notify.messages import alert_mail
from services.notify.parties import (
    AlertContext,
    is_silenced,
    load_context,
    organisations_of,
    people_of,
)
from services.notify.policy import Policy, rank

log = logging.getLogger(__name__)

GROUP = "notify"
ANNOUNCED = frozenset(
    {
        EventType.ALERT_OPENED,
        EventType.ALERT_UPDATED,
        EventType.ALERT_ESCALATED,
        EventType.ALERT_ACKNOWLEDGED,
        EventType.ALERT_RESOLVED,
        EventType.ALERT_COMMENTED,
        EventType.ALERT_REMINDED,
        EventType.ALERT_SILENCED,
    }
)
# People get e-mail when there is something to do; webhooks get everything they subscribed to.
EMAILED = frozenset(
    {
        EventType.ALERT_OPENED,
        EventType.ALERT_ESCALATED,
        EventType.ALERT_REMINDED,
        EventType.ALERT_RESOLVED,
    }
)
# Even for a silenced department: the end of a risk, and the silence itself.
ALWAYS = frozenset({EventType.ALERT_RESOLVED, EventType.ALERT_SILENCED})
_RANK = {Level.OK: 0, Level.WATCH: 1, Level.THREATENED: 2, Level.CRITICAL: 3}


class Notifier:
    """The handler of the consumer group, with its policy, zone, links and clock."""

    def __init__(
        self,
        policy: Policy | Callable[[], Policy],
        *,
        zone: ZoneInfo,
        public_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._policy = policy if callable(policy) else (lambda: policy)
        self.zone = zone
        self.public_url = public_url
        self.clock = clock

    def subscription(self) -> Subscription:
        return Subscription(GROUP, (Topic.ALERTS.value,), self.handle)

    async def handle(self, session: AsyncSession, event: Event) -> None:
        try:
            event_type = EventType(event.type)
        except ValueError:
            return  # a type from a newer producer: not ours to announce
        if event_type not in ANNOUNCED:
            return
        alert_data = event.data.get("alert")
        if not alert_data:
            return  # a silence of a department without an open alert: recorded, nothing to tell
        context = await load_context(session, uuid.UUID(str(alert_data["id"])), lock=True)
        if context is None:
            log.warning("event %s about unknown alert %s", event.id, alert_data["id"])
            return
        policy, now = self._policy(), self.clock()
        silenced = await is_silenced(session, context.alert, now)
        follow_up: list[NewEvent] = []
        if event_type in (EventType.ALERT_OPENED, EventType.ALERT_UPDATED):
            previous = event.data.get("previous_level")
            follow_up += self._place(
                session,
                policy,
                context,
                Level(previous) if previous else None,
                now,
                silenced,
                since=(
                    context.alert.opened_at if event_type is EventType.ALERT_OPENED else event.time
                ),
            )
        level = Level(alert_data["level"])
        if silenced and event_type not in ALWAYS and level is not Level.CRITICAL:
            log.info(
                "alert %s is silenced: %s recorded, not announced", context.alert.id, event.type
            )
        else:
            step = EscalationStep(
                event.data["to_step"]
                if event_type is EventType.ALERT_ESCALATED
                else alert_data["escalation"]
            )
            if event_type in (EventType.ALERT_OPENED, EventType.ALERT_UPDATED):
                # Told where it was just placed: a table hears of an alert that opens at its step.
                step = max(step, context.alert.escalation, key=rank)
            # People get one e-mail per change: when this change escalates the alert, the
            # escalation's e-mail says it all; otherwise openings and rises in level are mailed.
            rose = event_type is EventType.ALERT_UPDATED and (
                _RANK[level] > _RANK[Level(event.data["previous_level"])]
            )
            email = (event_type in EMAILED or rose) and not follow_up
            await self._announce(
                session, policy, context, event, event_type, step, now, email=email
            )
        if follow_up:
            await record_events(session, follow_up)

    def _place(
        self,
        session: AsyncSession,
        policy: Policy,
        context: AlertContext,
        previous: Level | None,
        now: datetime,
        silenced: bool,
        *,
        since: datetime,
    ) -> list[NewEvent]:
        """Put an opened or changed alert at its step; start or restart its timer.

        The timer runs from the moment of the change (`since`, the event's time), not from when
        this consumer got to it: a backlog must not give a table extra days.
        """
        alert = context.alert
        if alert.status is AlertStatus.RESOLVED:
            return []
        state = LadderState(
            shape=context.shape,
            status=alert.status,
            step=alert.escalation,
            step_due_at=alert.step_due_at,
            acknowledged_at=alert.acknowledged_at,
            reminded_at=alert.reminded_at,
            silenced=silenced,
        )
        placement = place(policy, state, previous)
        if placement.reopen:
            alert.status = AlertStatus.OPEN  # acknowledged at a lower level: take it on anew
            alert.reminded_at = None
        if placement.escalate is not None:
            move = placement.escalate
            return [
                escalate(
                    session,
                    context,
                    move.to,
                    move.reason,
                    move.explanation,
                    now,
                    policy=policy,
                    zone=self.zone,
                )
            ]
        if alert.status is AlertStatus.OPEN and (
            placement.restart_timer or alert.step_due_at is None
        ):
            alert.step_due_at = due_at(policy, alert.escalation, since, self.zone)
        return []

    async def _announce(
        self,
        session: AsyncSession,
        policy: Policy,
        context: AlertContext,
        event: Event,
        event_type: EventType,
        step: EscalationStep,
        now: datetime,
        *,
        email: bool,
    ) -> None:
        """Webhooks to every organisation told at the step; e-mail to the people the policy says."""
        audiences = policy.told_at(step)
        alert_id = context.alert.id
        for organisation in await organisations_of(session, context, audiences):
            await enqueue_webhooks(
                session, organisation_id=organisation.id, event=event, alert_id=alert_id
            )
        if not email:
            return
        mailed = tuple(a for a in audiences if a in policy.file.email_to)
        organisations = await organisations_of(session, context, mailed)
        why = event.data.get("explanation")
        mail = alert_mail(
            event_type,
            context,
            public_url=self.public_url,
            zone=self.zone,
            now=now,
            why=str(why) if why else None,
        )
        for person in await people_of(session, [o.id for o in organisations]):
            await enqueue_email(
                session,
                organisation_id=person.organisation_id,
                to=person.email,
                subject=mail.subject,
                text=mail.text,
                html=None,
                event_id=event.id,
                event_type=event.type,
                alert_id=alert_id,
            )

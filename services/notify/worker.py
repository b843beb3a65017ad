"""The notifier's consumer group: alert events in; the ladder, deliveries and e-mail out.

Every alert event on the alerts topic passes here once (the backbone's exactly-once apply):
- an alert the engine opened or changed is put at the step of the ladder it belongs at
  (`ladder.place`), which may escalate it at once (`alert.escalated`, back on the same topic);
- the event is announced to the parties told at the alert's step: a delivery per matching
  webhook subscription of each of their organisations, and an e-mail to the people of the
  audiences the policy e-mails. A silenced department's alerts are not announced, except when
  critical and when resolved.

The consumer hands over whole batches (`handle_batch`): what the events need is read once for
the batch and their effects are written once, a handful of statements per batch rather than
some twenty per event; the effect is that of the events handled one by one, in order
(tests/notify/test_batch.py), and one event alone is a batch of one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from services.core.db.models import Alert, AlertEvent
from services.core.domain import AlertStatus, EscalationStep, Level
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType, Topic
from services.notify.actions import escalation
from services.notify.deliveries.enqueue import (
    email_row,
    endpoints_of,
    insert_deliveries,
    short_type,
    webhook_body,
    webhook_rows,
)
from services.notify.ladder import LadderState, due_at, place
from services.notify.messages import alert_mail
from services.notify.parties import (
    AlertContext,
    Parties,
    load_contexts,
    load_parties,
    load_people,
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


# What the notifier may change on an alert; a batch writes these back for the alerts it changed.
_LADDER_FIELDS = ("status", "escalation", "escalated_at", "reminded_at", "step_due_at")
_UPDATE_ALERTS = text(
    """
    UPDATE alerts AS a
    SET status = v.status, escalation = v.escalation, escalated_at = v.escalated_at,
        reminded_at = v.reminded_at, step_due_at = v.step_due_at, updated_at = now()
    FROM unnest(:ids, :statuses, :escalations, :escalated_at, :reminded_at, :step_due_at)
         AS v (id, status, escalation, escalated_at, reminded_at, step_due_at)
    WHERE a.id = v.id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid())),
    bindparam("statuses", type_=ARRAY(String())),
    bindparam("escalations", type_=ARRAY(String())),
    bindparam("escalated_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("reminded_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("step_due_at", type_=ARRAY(DateTime(timezone=True))),
)
_INSERT_TIMELINE = text(
    """
    INSERT INTO alert_events (alert_id, type, at, level, escalation, details)
    SELECT e.alert_id, e.type, e.at, e.level, e.escalation, e.details::jsonb
    FROM unnest(:alerts, :types, :at, :levels, :escalations, :details)
         WITH ORDINALITY AS e (alert_id, type, at, level, escalation, details, n)
    ORDER BY e.n
    """
).bindparams(
    bindparam("alerts", type_=ARRAY(Uuid())),
    bindparam("types", type_=ARRAY(String())),
    bindparam("at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("levels", type_=ARRAY(String())),
    bindparam("escalations", type_=ARRAY(String())),
    bindparam("details", type_=ARRAY(String())),
)


@dataclass
class _Batch:
    """What the events of one batch read (at its start) and what they do (written at its end)."""

    now: datetime
    contexts: dict[uuid.UUID, tuple[AlertContext, bool]]  # alert id → context, silenced
    parties: Parties
    endpoints: dict[uuid.UUID, list[tuple[uuid.UUID, frozenset[str]]]]  # organisation → ...
    people: list[tuple[uuid.UUID, str]]  # (organisation, e-mail), by e-mail
    before: dict[uuid.UUID, tuple[Any, ...]] = field(default_factory=dict)  # ladder fields
    timeline: list[AlertEvent] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[NewEvent] = field(default_factory=list)


def _ladder_fields(alert: Alert) -> tuple[Any, ...]:
    return tuple(getattr(alert, name) for name in _LADDER_FIELDS)


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
        return Subscription(
            GROUP, (Topic.ALERTS.value,), self.handle, batch_handler=self.handle_batch
        )

    async def handle(self, session: AsyncSession, event: Event) -> None:
        """One event: a batch of one (the consumer falls back to this to find a failing event)."""
        await self.handle_batch(session, [event])

    async def handle_batch(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """The events in order, with the effect of handling each on its own, in a handful of
        statements: the alerts with their surroundings and silences (locked), the parties of
        their regions, their endpoints and people are read once; the ladder decides per event
        on those (an alert that two events concern carries the first one's changes into the
        second); then the alerts' changes, their timeline entries, the deliveries and the
        follow-up events are written with one statement each."""
        todo: list[tuple[Event, EventType, dict[str, Any]]] = []
        for event in events:
            try:
                event_type = EventType(event.type)
            except ValueError:
                continue  # a type from a newer producer: not ours to announce
            if event_type not in ANNOUNCED:
                continue
            alert_data = event.data.get("alert")
            if not alert_data:
                continue  # a silence of a department without an open alert: nothing to tell
            todo.append((event, event_type, alert_data))
        if not todo:
            return
        policy, now = self._policy(), self.clock()
        batch = await self._read(session, policy, now, [uuid.UUID(str(d["id"])) for *_, d in todo])
        for event, event_type, alert_data in todo:
            found = batch.contexts.get(uuid.UUID(str(alert_data["id"])))
            if found is None:
                log.warning("event %s about unknown alert %s", event.id, alert_data["id"])
                continue
            context, silenced = found
            self._apply(batch, policy, context, silenced, event, event_type, alert_data)
        await self._write(session, batch)

    async def _read(
        self, session: AsyncSession, policy: Policy, now: datetime, alert_ids: list[uuid.UUID]
    ) -> _Batch:
        contexts = await load_contexts(session, set(alert_ids), now)
        alerts = [context for context, _ in contexts.values()]
        parties = await load_parties(session, alerts) if alerts else Parties({}, {}, [])
        organisations = parties.all_of(alerts) if alerts else set()
        mailed = policy.file.email_to
        people = await load_people(
            session,
            {o for context in alerts for o in parties.organisations_of(context, mailed)},
        )
        return _Batch(
            now=now,
            contexts=contexts,
            parties=parties,
            endpoints=await endpoints_of(session, organisations),
            people=people,
            before={context.alert.id: _ladder_fields(context.alert) for context in alerts},
        )

    def _apply(
        self,
        batch: _Batch,
        policy: Policy,
        context: AlertContext,
        silenced: bool,
        event: Event,
        event_type: EventType,
        alert_data: dict[str, Any],
    ) -> None:
        """One event, on what the batch read: the ladder, then the announcement."""
        now = batch.now
        follow_up: list[NewEvent] = []
        if event_type in (EventType.ALERT_OPENED, EventType.ALERT_UPDATED):
            previous = event.data.get("previous_level")
            follow_up += self._place(
                batch,
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
            self._announce(batch, policy, context, event, event_type, step, email=email)
        batch.follow_ups += follow_up

    def _place(
        self,
        batch: _Batch,
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
            entry, escalated = escalation(
                context,
                move.to,
                move.reason,
                move.explanation,
                now,
                policy=policy,
                zone=self.zone,
            )
            batch.timeline.append(entry)
            return [escalated]
        if alert.status is AlertStatus.OPEN and (
            placement.restart_timer or alert.step_due_at is None
        ):
            alert.step_due_at = due_at(policy, alert.escalation, since, self.zone)
        return []

    def _announce(
        self,
        batch: _Batch,
        policy: Policy,
        context: AlertContext,
        event: Event,
        event_type: EventType,
        step: EscalationStep,
        *,
        email: bool,
    ) -> None:
        """Webhooks to every organisation told at the step; e-mail to the people the policy says."""
        audiences = policy.told_at(step)
        alert_id = context.alert.id
        wanted = short_type(event.type)
        body: dict[str, Any] | None = None
        for organisation_id in batch.parties.organisations_of(context, audiences):
            endpoints = [
                endpoint
                for endpoint, event_types in batch.endpoints.get(organisation_id, ())
                if wanted in event_types
            ]
            if endpoints and body is None:
                body = webhook_body(wanted, event.time, event.data)
            batch.deliveries += webhook_rows(
                organisation_id=organisation_id,
                subscription_ids=endpoints,
                event=event,
                alert_id=alert_id,
                body=body,
            )
        if not email:
            return
        mailed = tuple(a for a in audiences if a in policy.file.email_to)
        organisations = set(batch.parties.organisations_of(context, mailed))
        people = [(o, address) for o, address in batch.people if o in organisations]
        if not people:
            return
        why = event.data.get("explanation")
        mail = alert_mail(
            event_type,
            context,
            public_url=self.public_url,
            zone=self.zone,
            now=batch.now,
            why=str(why) if why else None,
        )
        for organisation_id, address in people:
            batch.deliveries.append(
                email_row(
                    organisation_id=organisation_id,
                    to=address,
                    subject=mail.subject,
                    text=mail.text,
                    html=None,
                    event_id=event.id,
                    event_type=event.type,
                    alert_id=alert_id,
                )
            )

    async def _write(self, session: AsyncSession, batch: _Batch) -> None:
        changed = [
            context.alert
            for context, _ in batch.contexts.values()
            if _ladder_fields(context.alert) != batch.before[context.alert.id]
        ]
        if changed:
            await session.execute(
                _UPDATE_ALERTS,
                {
                    "ids": [alert.id for alert in changed],
                    "statuses": [alert.status.value for alert in changed],
                    "escalations": [alert.escalation.value for alert in changed],
                    "escalated_at": [alert.escalated_at for alert in changed],
                    "reminded_at": [alert.reminded_at for alert in changed],
                    "step_due_at": [alert.step_due_at for alert in changed],
                },
            )
        if batch.timeline:
            entries = batch.timeline
            await session.execute(
                _INSERT_TIMELINE,
                {
                    "alerts": [entry.alert_id for entry in entries],
                    "types": [entry.type.value for entry in entries],
                    "at": [entry.at for entry in entries],
                    "levels": [entry.level.value for entry in entries],
                    "escalations": [entry.escalation.value for entry in entries],
                    "details": [json.dumps(entry.details) for entry in entries],
                },
            )
        await insert_deliveries(session, batch.deliveries)
        if batch.follow_ups:
            await record_events(session, batch.follow_ups)

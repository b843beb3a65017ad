"""The notifier's batch handler: a batch of alert events has the effect of the same events handled
one by one, in order (the ladder, the timeline, the deliveries in their order, the follow-up
events), and it takes a handful of statements however many events the batch has."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import resolve_organisation
from services.core.db.models import (
    Alert,
    AlertEvent,
    Delivery,
    OutboxEvent,
    Region,
    Silence,
    User,
    WebhookSubscription,
)
from services.core.domain import AlertKind, AlertStatus, EscalationStep, Level, Role
from services.core.events.consumer import Applier, Handler, Subscription
from services.core.events.envelope import Event
from services.core.events.types import EventType, Topic
from services.notify.deliveries.manage import SUBSCRIBABLE
from services.notify.policy import load_policy
from services.notify.worker import GROUP, Notifier
from tests.ingest.conftest import PROVIDER_A, build_world
from tests.notify.world import AMS

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday
OPENED = NOW - timedelta(hours=2)


@dataclass(frozen=True)
class Spec:
    """An alert as the rules engine left it, before the notifier sees its events."""

    name: str
    level: Level
    care_type: str | None = "outreach.fact"  # None: a coverage alert of the region
    status: AlertStatus = AlertStatus.OPEN
    silenced: bool = False


SPECS = (
    Spec("watch", Level.WATCH),
    Spec("rising", Level.CRITICAL),  # opened threatened, then critical, both in one batch
    Spec("quiet", Level.WATCH, silenced=True),
    Spec("quiet-critical", Level.CRITICAL, silenced=True),
    Spec("acknowledged", Level.THREATENED, status=AlertStatus.ACKNOWLEDGED),
    Spec("timer", Level.WATCH),
    Spec("coverage", Level.THREATENED, care_type=None),
    Spec("supra", Level.WATCH, care_type="secure.kib"),
)
# (alert, event type, data besides the alert; "level" overrides the alert's level in the event)
SCRIPT: tuple[tuple[str | None, EventType, dict[str, Any]], ...] = (
    ("watch", EventType.ALERT_OPENED, {}),
    ("rising", EventType.ALERT_OPENED, {"level": "threatened"}),
    ("quiet", EventType.ALERT_OPENED, {}),
    ("rising", EventType.ALERT_UPDATED, {"previous_level": "threatened"}),
    ("quiet-critical", EventType.ALERT_UPDATED, {"previous_level": "threatened"}),
    ("acknowledged", EventType.ALERT_UPDATED, {"previous_level": "watch"}),
    (
        "timer",
        EventType.ALERT_ESCALATED,
        {
            "from_step": "provider",
            "to_step": "regional_table",
            "reason": "timer",
            "explanation": "Not acknowledged within 5 working days.",
        },
    ),
    ("coverage", EventType.ALERT_OPENED, {}),
    ("supra", EventType.ALERT_OPENED, {}),
    ("watch", EventType.ALERT_COMMENTED, {"note": "Gesprek gepland."}),
    ("unknown", EventType.ALERT_OPENED, {}),
    ("quiet", EventType.ALERT_RESOLVED, {"reason": "manual"}),
    ("watch", EventType.ALERT_REMINDED, {"reason": "acknowledged_open", "explanation": "Nog"}),
    ("watch", EventType.COVERAGE_CHANGED, {}),
    (None, EventType.ALERT_SILENCED, {}),  # a department without an open alert
    ("watch", EventType.ALERT_UPDATED, {"previous_level": "watch"}),  # reasons only
)


@dataclass
class Played:
    """One run of the script on alerts of its own; ids to names for comparing runs."""

    alerts: dict[str, uuid.UUID]
    events: list[Event]
    names: dict[str, str] = field(default_factory=dict)  # id → name, for normalising


async def _parties(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Endpoints and people for the ladder's audiences in IJssel-Vecht."""
    async with sessions() as session, session.begin():
        await build_world(session)
        orgs = {
            ref: (await resolve_organisation(session, ref)).id
            for ref in (PROVIDER_A, "9901", "ijssel-vecht", "national_table")
        }
        endpoints = [
            {
                "organisation_id": org,
                "url": f"https://hooks.example.nl/{ref}",
                "event_types": list(SUBSCRIBABLE),
                "secret_encrypted": "unused",
            }
            for ref, org in orgs.items()
        ]
        endpoints.append(
            {
                "organisation_id": orgs[PROVIDER_A],
                "url": "https://epd.example.nl/opened-only",
                "event_types": ["alert.opened"],
                "secret_encrypted": "unused",
            }
        )
        await session.execute(insert(cast(Table, WebhookSubscription.__table__)), endpoints)
        people = [
            ("ijssel-vecht", "b.tafel@example.nl", Role.REGIONAL_TABLE, True),
            ("ijssel-vecht", "a.tafel@example.nl", Role.REGIONAL_TABLE, True),
            ("national_table", "landelijk@example.nl", Role.NATIONAL_TABLE, True),
            ("national_table", "vertrokken@example.nl", Role.NATIONAL_TABLE, False),
            ("9901", "inkoop@example.nl", Role.INSURER, True),
        ]
        await session.execute(
            insert(cast(Table, User.__table__)),
            [
                {
                    "organisation_id": orgs[ref],
                    "email": email,
                    "password_hash": "x",
                    "role": role,
                    "active": active,
                }
                for ref, email, role, active in people
            ],
        )


async def _play(sessions: async_sessionmaker[AsyncSession], label: str) -> Played:
    """The script's alerts (each with a department of its own) and events, for one run."""
    played = Played(alerts={}, events=[])
    async with sessions() as session, session.begin():
        region = await session.scalar(select(Region).where(Region.code == "ijssel-vecht"))
        assert region is not None
        provider = await resolve_organisation(session, PROVIDER_A)
        for spec in SPECS:
            department_id = None
            if spec.care_type is not None:
                department = await add_department(
                    session,
                    DepartmentSpec(
                        PROVIDER_A,
                        f"{label}-{spec.name}".upper(),
                        f"Afdeling {spec.name}",
                        spec.care_type,
                        "ijssel-vecht",
                        None,
                        10,
                    ),
                )
                department_id = department.id
                played.names[str(department_id)] = f"department:{spec.name}"
                played.names[department.code] = f"code:{spec.name}"
                if spec.silenced:
                    session.add(
                        Silence(
                            department_id=department_id,
                            organisation_id=provider.id,
                            reason="fusie",
                            starts_at=NOW - timedelta(days=1),
                            ends_at=NOW + timedelta(days=30),
                        )
                    )
            alert = Alert(
                id=uuid.uuid4(),
                kind=AlertKind.DEPARTMENT if department_id else AlertKind.COVERAGE,
                department_id=department_id,
                region_id=region.id,
                care_type_code=spec.care_type or "acute.crisis",
                level=spec.level,
                status=spec.status,
                escalation=EscalationStep.PROVIDER,
                reasons=[
                    {
                        "rule_id": "staffing.fte_filled",
                        "level": spec.level.value,
                        "kind": "staffing",
                        "explanation": "15.2 of 19.0 budgeted FTE are filled.",
                        "explanation_nl": "15,2 van 19,0 fte bezet.",
                        "figures": {"fte_filled_pct": 80.0},
                        "thresholds": {"fte_filled_pct": 85.0},
                        "norm": None,
                        "signal_ids": [],
                    }
                ],
                opened_at=OPENED,
                acknowledged_at=OPENED if spec.status is AlertStatus.ACKNOWLEDGED else None,
                ruleset_version="test",
            )
            session.add(alert)
            played.alerts[spec.name] = alert.id
            played.names[str(alert.id)] = f"alert:{spec.name}"
    played.alerts["unknown"] = uuid.uuid4()
    played.names[str(played.alerts["unknown"])] = "alert:unknown"
    levels = {spec.name: spec.level for spec in SPECS}
    for index, (name, event_type, extra) in enumerate(SCRIPT):
        data = {k: v for k, v in extra.items() if k != "level"}
        if name is not None:
            data["alert"] = {
                "id": str(played.alerts[name]),
                "level": extra.get("level", levels.get(name, Level.WATCH).value),
                "escalation": "provider",
                "status": "open",
            }
        else:
            data["alert"] = None
        event_id = uuid.uuid4()
        played.names[str(event_id)] = f"event:{index}"
        key = str(played.alerts.get(name or "", ""))
        played.events.append(
            Event(
                id=event_id,
                type=event_type.value,
                source="/vroegsignaal/rules",
                subject=key,
                time=OPENED + timedelta(minutes=index),
                partition_key=key,
                data=data,
                topic=Topic.ALERTS.value,
                document={},
            )
        )
    return played


def _normal(value: Any, played: Played) -> Any:
    """A value with the run's own ids replaced by names, to compare runs."""
    dumped = json.dumps(value, default=str, sort_keys=True)
    for raw, name in played.names.items():
        dumped = dumped.replace(raw, name)
    return json.loads(dumped)


async def _effects(
    sessions: async_sessionmaker[AsyncSession], played: Played, since: int
) -> dict[str, Any]:
    ids = list(played.alerts.values())
    async with sessions() as session:
        alerts = {
            str(a.id): (a.level, a.status, a.escalation, a.escalated_at, a.step_due_at)
            for a in await session.scalars(select(Alert).where(Alert.id.in_(ids)))
        }
        timeline = [
            (str(e.alert_id), e.type, e.at, e.level, e.escalation, e.details)
            for e in await session.scalars(
                select(AlertEvent).where(AlertEvent.alert_id.in_(ids)).order_by(AlertEvent.id)
            )
        ]
        deliveries = [
            (
                d.channel,
                str(d.organisation_id),
                str(d.subscription_id),
                d.email,
                str(d.alert_id),
                str(d.event_id),
                d.event_type,
                d.payload,
                d.ordering_key,
                d.status,
            )
            for d in await session.scalars(
                select(Delivery).where(Delivery.alert_id.in_(ids)).order_by(Delivery.seq)
            )
        ]
        follow_ups = [
            (o.type, o.partition_key, {k: v for k, v in o.event.items() if k not in ("id", "time")})
            for o in await session.scalars(
                select(OutboxEvent).where(OutboxEvent.id > since).order_by(OutboxEvent.id)
            )
        ]
    found: dict[str, Any] = _normal(
        {"alerts": alerts, "timeline": timeline, "deliveries": deliveries, "out": follow_ups},
        played,
    )
    return found


async def _last_outbox(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc())) or 0
        )


async def _apply(
    sessions: async_sessionmaker[AsyncSession], subscription: Subscription, events: list[Event]
) -> None:
    result = await Applier(sessions, subscription).apply(events)
    assert result.applied == len(events) and result.dead_lettered == 0


def _notifier() -> Notifier:
    return Notifier(
        load_policy(), zone=AMS, public_url="https://vroegsignaal.test", clock=lambda: NOW
    )


async def play_both(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, reference: Handler
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The script as one batch (the batch handler) and event by event (`reference`), each on
    alerts of its own; their normalised effects and the statements the batch took."""
    await _parties(sessions)
    notifier = _notifier()
    batch = await _play(sessions, "b")
    since = await _last_outbox(sessions)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    async def counted(session: AsyncSession, events: Sequence[Event]) -> None:
        sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            await notifier.handle_batch(session, events)
        finally:
            sa_event.remove(engine.sync_engine, "before_cursor_execute", count)

    shipped = notifier.subscription()
    assert shipped.batch_handler == notifier.handle_batch
    await _apply(
        sessions,
        Subscription(GROUP, shipped.topics, notifier.handle, batch_handler=counted),
        batch.events,
    )
    batched = await _effects(sessions, batch, since)
    async with sessions() as session, session.begin():  # one open coverage alert per cell
        await session.execute(
            update(Alert)
            .where(Alert.id == batch.alerts["coverage"])
            .values(status=AlertStatus.RESOLVED, resolved_at=NOW)
        )
    single = await _play(sessions, "s")
    since = await _last_outbox(sessions)
    await _apply(sessions, Subscription(GROUP, (Topic.ALERTS.value,), reference), single.events)
    return batched, await _effects(sessions, single, since), statements


async def test_a_batch_has_the_effect_of_its_events_one_by_one(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    notifier = _notifier()
    batched, one_by_one, statements = await play_both(sessions, engine, notifier.handle)
    # The script does something: escalations, e-mails, webhooks, silences kept quiet.
    kinds = [d[0] for d in batched["deliveries"]]
    assert kinds.count("email") >= 4 and kinds.count("webhook") >= 20
    assert [o[0] for o in batched["out"]].count(EventType.ALERT_ESCALATED.value) >= 4
    assert not any(d[4] == "alert:quiet" and d[6] == "alert.opened" for d in batched["deliveries"])
    assert any(d[4] == "alert:quiet" and d[6] == "alert.resolved" for d in batched["deliveries"])
    assert batched["alerts"]["alert:acknowledged"][1] == "open"  # a rise asks for a new ack
    for part in ("alerts", "timeline", "deliveries", "out"):
        assert batched[part] == one_by_one[part], part
    # A handful of statements for the whole batch: four reads (the alerts with their
    # surroundings, the parties, the people, the endpoints), the alerts, the timeline, the
    # deliveries and their wake-up, the follow-up events (a lock and an insert); and the
    # consumer's savepoint, which SQLAlchemy opens with the first of them.
    assert statements <= 11, statements

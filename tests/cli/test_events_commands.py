"""`vroegsignaal events …`: an operator sees the backbone's state and recovers dead letters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import ConsumerOffset, DeadLetter, OutboxEvent, ProcessedEvent
from services.core.events.consumer import park
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType, partition_of
from tests.cli.conftest import Cli
from tests.cli.test_admin_commands import assert_refused


def _event(department: str, n: int) -> NewEvent:
    return NewEvent(
        type=EventType.SIGNAL_RECEIVED,
        source="test",
        subject=f"departments/{department}",
        partition_key=department,
        data={"n": n},
    )


async def _park(sessions: async_sessionmaker[AsyncSession], group: str) -> NewEvent:
    event = _event("dep-dead", 1)
    async with sessions() as session, session.begin():
        await record_events(session, [event])
        session.add(ProcessedEvent(consumer_group=group, event_id=event.id))
        parked = Event.from_cloudevent("vroegsignaal.signals.v1", event.cloudevent())
        await park(session, group, parked, "ValueError('bad figure')", 5)
    return event


async def test_dead_letters_are_listed_and_replayed_for_their_group_only(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = await _park(sessions, "rules")

    letters = cli.json("events", "dead-letters")
    assert [(d["group"], d["event_id"], d["attempts"]) for d in letters] == [
        ("rules", str(event.id), 5)
    ]
    assert "bad figure" in letters[0]["error"]
    assert "bad figure" in cli("events", "dead-letters").stdout

    assert_refused(cli("events", "replay"), "--id", "--group", "--all")
    assert cli.json("events", "replay", "--group", "notify") == {"replayed": 0}
    assert cli.json("events", "replay", "--id", str(letters[0]["id"])) == {"replayed": 1}

    async with sessions() as session:
        copies = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.event_id == event.id)
        )
        forgotten = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.event_id == event.id)
        )
        replayed_at = await session.scalar(select(DeadLetter.replayed_at))
    assert copies == 2, "the event is in the log again"
    assert forgotten == 0, "the group that parked it will apply it"
    assert replayed_at is not None
    assert cli.json("events", "dead-letters") == []
    assert cli.json("events", "replay", "--all") == {"replayed": 0}


async def test_status_shows_groups_lag_and_the_outbox(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    events = [_event("dep-a", n) for n in range(5)]
    async with sessions() as session, session.begin():
        await record_events(session, events)
        first_id = await session.scalar(select(func.min(OutboxEvent.id)))
        session.add(
            ConsumerOffset(
                consumer_group="rules",
                topic="vroegsignaal.signals.v1",
                partition=partition_of("dep-a"),
                offset=(first_id or 0) + 1,  # two applied, three to go
            )
        )

    status = cli.json("events", "status")

    assert status["events"] == 5
    assert status["unpublished"] == 5
    assert status["dead_letters"] == 0
    assert [(g["group"], g["lag"], g["members"]) for g in status["groups"]] == [("rules", 3, 0)]
    assert "rules" in cli("events", "status").stdout


async def test_prune_keeps_what_a_group_has_not_passed(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    old, pending = _event("dep-a", 0), _event("dep-a", 1)
    async with sessions() as session, session.begin():
        await record_events(session, [old, pending])
        ids = (await session.execute(select(OutboxEvent.id).order_by(OutboxEvent.id))).scalars()
        first, _ = list(ids)
        session.add(
            ConsumerOffset(
                consumer_group="rules",
                topic="vroegsignaal.signals.v1",
                partition=partition_of("dep-a"),
                offset=first,
            )
        )
        session.add(ProcessedEvent(consumer_group="rules", event_id=uuid.uuid4()))
    async with sessions() as session, session.begin():
        long_ago = datetime.now(UTC) - timedelta(days=40)
        await session.execute(update(OutboxEvent).values(created_at=long_ago))
        await session.execute(update(ProcessedEvent).values(processed_at=long_ago))

    assert cli.json("events", "prune", "--older-than", "30") == {"events": 1, "processed": 1}
    async with sessions() as session:
        left = (await session.execute(select(OutboxEvent.event_id))).scalars().all()
    assert left == [pending.id], "the event the group has not applied yet stays"
    refused = cli("events", "prune", "--older-than", "0")
    assert refused.exit_code == 2
    assert "older-than" in refused.stderr

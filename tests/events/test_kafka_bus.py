"""The Kafka bus in particular, against a real Kafka-protocol broker (Tansu).

Two workers share a group's partitions; one stops (or is killed) mid-stream and the other takes
over; the relay is one process at a time and loses nothing when it crashes before marking.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

from aiokafka import AIOKafkaConsumer
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import OutboxEvent
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.kafka_bus import KafkaBus, KafkaRelay
from services.core.events.outbox import NewEvent
from services.core.events.types import Topic
from tests.events.conftest import (
    Effects,
    kafka_settings,
    publish,
    recording_handler,
    signal_event,
    start_worker,
)
from tests.events.test_backbone import assert_in_order

DEPARTMENTS = [f"dep-{i:02d}" for i in range(24)]


async def _stream(
    sessions: async_sessionmaker[AsyncSession], rounds: range, *, pause: float = 0.03
) -> list[NewEvent]:
    """Round after round of one event per department, like a steady flow of signals."""
    published: list[NewEvent] = []
    for round_ in rounds:
        batch = [signal_event(d, round_) for d in DEPARTMENTS]
        published.extend(batch)
        await publish(sessions, batch)
        await asyncio.sleep(pause)
    return published


def _bus(bootstrap: str, url: str, sessions: async_sessionmaker[AsyncSession]) -> KafkaBus:
    return KafkaBus(kafka_settings(bootstrap), url, sessions)


async def test_two_workers_share_partitions_and_one_takes_over_when_the_other_stops(
    kafka_bootstrap: str,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    effects: Effects,
) -> None:
    bus = _bus(kafka_bootstrap, database_url, sessions)
    await bus.start()
    relay = bus.relay()
    group = f"share-{uuid.uuid4().hex[:6]}"

    async def slow(session: AsyncSession, event: Event) -> None:
        await asyncio.sleep(0.002)  # batches are in hand when the rebalance comes
        await handler_a(session, event)

    handler_a = recording_handler("a")
    a = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), slow))
    b = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), recording_handler("b")))
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(a.run())]
    try:
        first = await _stream(sessions, range(10))
        tasks.append(asyncio.create_task(b.run()))  # joins mid-stream: partitions revoked
        second = await _stream(sessions, range(10, 30))
        a.stop()  # leaves mid-stream: b takes every partition
        await tasks[1]
        third = await _stream(sessions, range(30, 40))
        published = [*first, *second, *third]
        rows = await effects.wait_for([e.id for e in published], within=60, settle=1.0)
    finally:
        relay.stop()
        a.stop()
        b.stop()
        await asyncio.gather(*tasks)

    assert len(rows) == len(published) == 40 * len(DEPARTMENTS)
    assert len({row.event_id for row in rows}) == len(published), "no double effect"
    assert_in_order(rows)
    assert {row.member for row in rows} == {"a", "b"}
    assert {row.member for row in rows if row.event_id in {e.id for e in third}} == {"b"}


async def test_a_killed_worker_is_replaced_without_loss_or_double_effect(
    kafka_bootstrap: str,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    effects: Effects,
    workers: list[subprocess.Popen[str]],
) -> None:
    bus = _bus(kafka_bootstrap, database_url, sessions)
    await bus.start()
    relay = bus.relay()
    relay_task = asyncio.create_task(relay.run())
    group = f"kill-{uuid.uuid4().hex[:6]}"
    try:
        doomed = start_worker(workers, database_url, group, "k1", kafka_bootstrap)
        start_worker(workers, database_url, group, "k2", kafka_bootstrap)
        published = await _stream(sessions, range(10))
        doomed.send_signal(signal.SIGKILL)  # no leave, no commit: its session must expire
        published += await _stream(sessions, range(10, 30))
        rows = await effects.wait_for([e.id for e in published], within=90, settle=1.0)
    finally:
        relay.stop()
        await relay_task

    assert len(rows) == len(published) == 30 * len(DEPARTMENTS)
    assert len({row.event_id for row in rows}) == len(published)
    assert_in_order(rows)
    assert "k2" in {row.member for row in rows}


async def test_one_relay_publishes_at_a_time_and_a_crash_before_marking_loses_nothing(
    kafka_bootstrap: str,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    effects: Effects,
) -> None:
    bus = _bus(kafka_bootstrap, database_url, sessions)
    await bus.start()
    relays = [KafkaRelay(bus.settings, database_url, sessions) for _ in range(2)]
    group = f"relay-{uuid.uuid4().hex[:6]}"
    consumer = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), recording_handler("c")))
    tasks = [asyncio.create_task(r.run()) for r in relays]
    tasks.append(asyncio.create_task(consumer.run()))
    try:
        events = [signal_event(f"dep-{n % 5}", n) for n in range(50)]
        await publish(sessions, events)
        await effects.wait_for([e.id for e in events])
        assert sorted(r.published for r in relays) == [0, 50], "one leader, the other waits"

        # The relay crashed after Kafka acknowledged but before it marked the rows published:
        async with sessions() as session, session.begin():
            await session.execute(update(OutboxEvent).values(published_at=None))
        await asyncio.sleep(1.5)
        assert sum(r.published for r in relays) >= 100, "published again"
        rows = await effects.wait_for([e.id for e in events], settle=0.5)
    finally:
        for relay in relays:
            relay.stop()
        consumer.stop()
        await asyncio.gather(*tasks)

    assert sorted(row.n for row in rows) == list(range(50)), "redelivered, applied once"


async def test_a_message_on_kafka_is_a_structured_cloudevent_keyed_by_department(
    kafka_bootstrap: str, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bus = _bus(kafka_bootstrap, database_url, sessions)
    await bus.start()
    relay = bus.relay()
    relay_task = asyncio.create_task(relay.run())
    event = signal_event(f"dep-wire-{uuid.uuid4().hex[:6]}", 7)
    reader = AIOKafkaConsumer(
        Topic.SIGNALS.value,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"wire-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=2_000,
        heartbeat_interval_ms=200,
    )
    await reader.start()
    try:
        await publish(sessions, [event])
        record = None
        deadline = asyncio.get_running_loop().time() + 30
        while record is None and asyncio.get_running_loop().time() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                record = next((r for r in records if str(event.id).encode() in r.value), record)
    finally:
        await reader.stop()
        relay.stop()
        await relay_task

    assert record is not None, "the relay published the event"
    assert record.key == event.partition_key.encode()
    assert dict(record.headers)["content-type"].startswith(b"application/cloudevents+json")
    parsed = JSONFormat().read(CloudEvent, record.value)
    assert parsed.get_id() == str(event.id)
    assert parsed.get_type() == "nl.vroegsignaal.signal.received"
    assert parsed.get_source() == "/vroegsignaal/test"
    assert parsed.get_extension("partitionkey") == event.partition_key
    assert parsed.get_data() == {"n": 7}

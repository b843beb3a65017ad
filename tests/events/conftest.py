"""The event backbone under test: a bus, an effects table, and events to publish.

The handler of the test consumers writes one row per event into `test_effects` (a table of the
tests only), in the consumer's transaction, so the tests can count effects exactly and check their
order per department, as a user of the bus would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.config import BusBackend, Settings
from services.core.events.bus import Bus, Consumer
from services.core.events.consumer import Committed, Handler, Subscription
from services.core.events.envelope import Event
from services.core.events.kafka_bus import KafkaBus, KafkaConsumer
from services.core.events.outbox import NewEvent, record_events
from services.core.events.postgres_bus import PostgresBus, Timing
from services.core.events.types import EventType, Topic

ROOT = Path(__file__).resolve().parents[2]

FAST = Timing(
    poll_interval=0.2, heartbeat_interval=0.2, session_timeout=2.0, lag_interval=0.5, batch_size=50
)

_EFFECTS = """
CREATE TABLE IF NOT EXISTS test_effects (
    seq bigserial PRIMARY KEY,
    member text NOT NULL,
    event_id uuid NOT NULL,
    department text NOT NULL,
    n integer NOT NULL
)
"""


def signal_event(department: str, n: int) -> NewEvent:
    """The n-th event of a department (a `signal.received` with a test payload)."""
    return NewEvent(
        type=EventType.SIGNAL_RECEIVED,
        source="test",
        subject=f"departments/{department}",
        partition_key=department,
        data={"n": n},
    )


async def publish(sessions: async_sessionmaker[AsyncSession], events: list[NewEvent]) -> None:
    """Record events in one committed transaction, as a service does."""
    async with sessions() as session, session.begin():
        await record_events(session, events)


def recording_handler(member: str, *, fails: Callable[[Event], bool] | None = None) -> Handler:
    """Writes one effect row per event; `fails` makes chosen events raise (a poison event)."""

    async def handle(session: AsyncSession, event: Event) -> None:
        if fails is not None and fails(event):
            raise ValueError(f"cannot handle event n={event.data.get('n')}")
        await session.execute(
            text(
                "INSERT INTO test_effects (member, event_id, department, n)"
                " VALUES (:member, :event_id, :department, :n)"
            ),
            {
                "member": member,
                "event_id": event.id,
                "department": event.partition_key,
                "n": int(event.data["n"]),
            },
        )

    return handle


@dataclass
class Effects:
    """What the consumers did, read back from the database."""

    engine: AsyncEngine

    async def rows(self, ids: Iterable[uuid.UUID] | None = None) -> list[Any]:
        async with self.engine.connect() as connection:
            rows = list(
                await connection.execute(
                    text("SELECT member, event_id, department, n FROM test_effects ORDER BY seq")
                )
            )
        if ids is None:
            return rows
        wanted = set(ids)
        return [row for row in rows if row.event_id in wanted]

    async def wait_for(
        self, ids: Iterable[uuid.UUID], *, within: float = 30.0, settle: float = 0.0
    ) -> list[Any]:
        """Wait until every id has an effect (then `settle` more seconds for any duplicate)."""
        wanted = set(ids)
        deadline = asyncio.get_running_loop().time() + within
        while True:
            rows = await self.rows(wanted)
            if {row.event_id for row in rows} >= wanted:
                break
            if asyncio.get_running_loop().time() > deadline:
                missing = len(wanted - {row.event_id for row in rows})
                raise AssertionError(f"{missing} of {len(wanted)} events had no effect in time")
            await asyncio.sleep(0.05)
        if settle:
            await asyncio.sleep(settle)
            rows = await self.rows(wanted)
        return rows


@pytest.fixture
async def effects(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Effects]:
    async with engine.begin() as connection:
        await connection.execute(text(_EFFECTS))
    yield Effects(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE test_effects"))


@dataclass
class Backbone:
    """A bus with its relay running, and the consumers a test starts on it."""

    bus: Bus
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)

    def start(
        self,
        group: str,
        handler: Handler,
        *,
        on_committed: Committed | None = None,
        max_attempts: int = 5,
    ) -> tuple[Consumer, asyncio.Task[None]]:
        subscription = Subscription(group, (Topic.SIGNALS.value,), handler, max_attempts)
        consumer = self.bus.consumer(subscription, on_committed=on_committed)
        task = asyncio.create_task(consumer.run())
        self.consumers.append(consumer)
        self.tasks.append(task)
        return consumer, task

    async def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def all_assigned(self, within: float = 30.0) -> None:
        """Wait until every running consumer holds partitions (the group has settled)."""
        deadline = asyncio.get_running_loop().time() + within

        def holds(consumer: Consumer) -> bool:
            if isinstance(consumer, KafkaConsumer):
                return consumer.consumer is not None and bool(consumer.consumer.assignment())
            return bool(getattr(consumer, "partitions", None))

        while not all(holds(c) for c in self.consumers):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the consumer group did not settle in time")
            await asyncio.sleep(0.05)

    async def rewind(self, group: str, sessions: async_sessionmaker[AsyncSession]) -> None:
        """As if the group's offsets were lost: it reads every partition from the start."""
        if isinstance(self.bus, KafkaBus):
            await rewind_kafka_group(self.bus.settings, group)
            return
        async with sessions() as session, session.begin():
            await session.execute(
                text('UPDATE consumer_offsets SET "offset" = 0 WHERE consumer_group = :g'),
                {"g": group},
            )


def kafka_settings(bootstrap: str) -> Settings:
    """Tuned for Tansu, which holds a join for half the session timeout: short timeouts."""
    return Settings(
        bus=BusBackend.KAFKA,
        kafka_bootstrap_servers=bootstrap,
        kafka_partitions=8,
        kafka_enable_idempotence=False,  # Tansu has no idempotent producer
        kafka_session_timeout_ms=2_000,
        kafka_heartbeat_interval_ms=200,
        kafka_fetch_max_wait_ms=50,
    )


async def rewind_kafka_group(settings: Settings, group: str) -> None:
    """Commit offset 0 on every partition of the signals topic for a group with no members."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )
    consumer.subscribe([Topic.SIGNALS.value])
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await consumer.commit(dict.fromkeys(consumer.assignment(), 0))
    finally:
        await consumer.stop()


@pytest.fixture(params=["postgres", "kafka"])
async def backbone(
    request: pytest.FixtureRequest,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Backbone]:
    """The same tests run on each backend."""
    bus: Bus
    if request.param == "kafka":
        settings = kafka_settings(request.getfixturevalue("kafka_bootstrap"))
        bus = KafkaBus(settings, database_url, sessions)
    else:
        bus = PostgresBus(database_url, sessions, timing=FAST)
    await bus.start()
    backbone = Backbone(bus)
    relay = bus.relay()
    relay_task = asyncio.create_task(relay.run()) if relay is not None else None
    yield backbone
    await backbone.stop()
    if relay is not None and relay_task is not None:
        relay.stop()
        await relay_task
    await bus.close()


@pytest.fixture
def workers(database_url: str) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def start_worker(
    workers: list[subprocess.Popen[str]],
    url: str,
    group: str,
    label: str,
    bootstrap: str | None = None,
) -> subprocess.Popen[str]:
    """A consumer in a process of its own (tests/events/worker.py), ready when this returns."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    arguments = [url, group, label] + ([bootstrap] if bootstrap else [])
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.events.worker", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    workers.append(process)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process

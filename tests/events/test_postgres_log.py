"""The PostgreSQL bus in particular: its log order, its partition leases, several OS processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import ConsumerMember, ConsumerOffset
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.postgres_bus import PostgresBus, assigned
from services.core.events.types import LOG_PARTITIONS, Topic, partition_of
from tests.events.conftest import (
    FAST,
    Effects,
    publish,
    recording_handler,
    signal_event,
    start_worker,
)
from tests.events.test_backbone import assert_in_order


def _same_partition(department: str) -> str:
    """Another department that falls in the same log partition."""
    target = partition_of(department)
    return next(
        f"{department}-{i}" for i in range(1000) if partition_of(f"{department}-{i}") == target
    )


async def test_a_late_commit_is_neither_lost_nor_overtaken_in_its_partition(
    database_url: str, sessions: async_sessionmaker[AsyncSession], effects: Effects
) -> None:
    bus = PostgresBus(database_url, sessions, timing=FAST)
    group = f"late-{uuid.uuid4().hex[:6]}"
    consumer = bus.consumer(Subscription(group, (Topic.SIGNALS.value,), recording_handler("a")))
    task = asyncio.create_task(consumer.run())
    first = signal_event("dep-late", 0)
    neighbour = signal_event(_same_partition("dep-late"), 1)
    elsewhere = next(
        signal_event(f"dep-other-{i}", 2)
        for i in range(100)
        if partition_of(f"dep-other-{i}") != partition_of("dep-late")
    )
    try:
        async with sessions() as slow:
            await slow.begin()
            await record_events(slow, [first])  # holds its partition until it commits
            neighbour_task = asyncio.create_task(publish(sessions, [neighbour]))
            await publish(sessions, [elsewhere])  # another partition is not held up
            await effects.wait_for([elsewhere.id])
            await asyncio.sleep(0.3)
            assert not neighbour_task.done(), "same partition waits for the earlier writer"
            await slow.commit()
        await neighbour_task
        rows = await effects.wait_for([first.id, neighbour.id, elsewhere.id], settle=0.3)
    finally:
        consumer.stop()
        await task
    assert [row.n for row in rows] == [2, 0, 1], "in the partition: commit order"


async def test_a_stopped_member_hands_its_partitions_over(
    database_url: str, sessions: async_sessionmaker[AsyncSession], effects: Effects
) -> None:
    bus = PostgresBus(database_url, sessions, timing=FAST)
    group = f"handover-{uuid.uuid4().hex[:6]}"
    subscription_a = Subscription(group, (Topic.SIGNALS.value,), recording_handler("a"))
    subscription_b = Subscription(group, (Topic.SIGNALS.value,), recording_handler("b"))
    a, b = bus.consumer(subscription_a), bus.consumer(subscription_b)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        # The first to beat takes everything; the second's arrival splits the partitions.
        await _until(lambda: len(a.partitions) == len(b.partitions) == LOG_PARTITIONS // 2)
        assert a.partitions.isdisjoint(b.partitions)
        a.stop()
        await tasks[0]
        await _until(lambda: len(b.partitions) == LOG_PARTITIONS)
        events = [signal_event(f"dep-{n}", n) for n in range(40)]
        await publish(sessions, events)
        rows = await effects.wait_for([e.id for e in events])
        assert {row.member for row in rows} == {"b"}
        async with sessions() as session:
            members = (await session.execute(select(ConsumerMember.member_id))).scalars().all()
            owners = set(
                (await session.execute(select(ConsumerOffset.lease_owner))).scalars().all()
            )
        assert members == [b.member], "the stopped member left the group"
        assert owners == {b.member}
    finally:
        a.stop()
        b.stop()
        await asyncio.gather(*tasks)


def test_partitions_are_shared_evenly_and_completely() -> None:
    members = ["m1", "m2", "m3"]
    shares = [assigned(["t"], members, m) for m in members]
    assert set().union(*shares) == {("t", p) for p in range(LOG_PARTITIONS)}
    assert sum(len(s) for s in shares) == LOG_PARTITIONS
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
    assert assigned(["t"], members, "stranger") == set()


async def _until(condition: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_several_processes_of_one_group_apply_every_event_exactly_once_in_order(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    effects: Effects,
    workers: list[subprocess.Popen[str]],
) -> None:
    group = f"procs-{uuid.uuid4().hex[:6]}"
    first, second, _third = (
        start_worker(workers, database_url, group, label) for label in ("p1", "p2", "p3")
    )
    departments = [f"dep-{i:02d}" for i in range(30)]
    published: list[NewEvent] = []
    for round_ in range(50):
        batch = [signal_event(d, round_) for d in departments]
        published.extend(batch)
        await publish(sessions, batch)
        if round_ == 15:
            first.send_signal(signal.SIGKILL)  # a crash: its lease must expire first
        if round_ == 30:
            second.send_signal(signal.SIGTERM)  # a graceful stop: it leaves the group
        await asyncio.sleep(0.02)

    rows = await effects.wait_for([e.id for e in published], within=60, settle=1.0)

    assert len(rows) == len(published) == 1500
    assert len({row.event_id for row in rows}) == 1500, "no event applied twice"
    assert_in_order(rows)
    assert {row.member for row in rows} >= {"p2", "p3"}
    assert second.wait(10) == 0, "SIGTERM: the member finished its batch and exited cleanly"
    async with sessions() as session:
        applied = await session.scalar(
            text("SELECT count(*) FROM processed_events WHERE consumer_group = :g"), {"g": group}
        )
    assert applied == 1500


async def test_consumer_lag_is_a_prometheus_gauge_that_falls_to_zero(
    database_url: str, sessions: async_sessionmaker[AsyncSession], effects: Effects
) -> None:
    group = f"lag-{uuid.uuid4().hex[:6]}"
    topic = Topic.SIGNALS.value
    handler = recording_handler("a")

    async def slow(session: AsyncSession, event: Event) -> None:
        await asyncio.sleep(0.005)
        await handler(session, event)

    events = [signal_event(f"dep-{n % 4}", n) for n in range(300)]
    await publish(sessions, events)
    consumer = PostgresBus(database_url, sessions, timing=FAST).consumer(
        Subscription(group, (topic,), slow)
    )
    task = asyncio.create_task(consumer.run())
    seen: list[float] = []

    def lag() -> float | None:
        return REGISTRY.get_sample_value(
            "vroegsignaal_consumer_lag", {"group": group, "topic": topic}
        )

    try:
        while len(await effects.rows([e.id for e in events])) < len(events):
            seen.append(lag() or 0)
            await asyncio.sleep(0.1)
        await _until(lambda: lag() == 0)
    finally:
        consumer.stop()
        await task
    assert max(seen) > 0, "the backlog showed while it was worked off"

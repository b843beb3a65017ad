"""A real Kafka broker restart under the running topology: the broker gets SIGKILL, signals keep
coming in, and a new broker process starts on the same port with the same storage.

The broker keeps its topics, committed offsets and groups in S3 (moto's S3 server stands in for
it; see `restartable_broker` in tests/support/tansu.py), so what comes back is the same cluster,
as after a crash of a real one. ingest, rules and notify run as processes
(tests/reliability/test_faults.py), and nobody tells them the broker is back: the relay's
producer and the rules and notify consumer groups have to find it by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, Signal
from services.core.events.types import Topic
from tests.reliability.test_faults import (
    TEAMS,
    _backlog,
    _count,
    _unpublished,
    kafka_stage,
)
from tests.support.needs import need
from tests.support.tansu import RestartableBroker, restartable_broker, s3_available

PARTITIONS = 16  # `kafka_partitions` by default: what the services created at start-up
DOWN_S = 8.0
"""How long the broker stays down: longer than the services' session timeout (6 s, see `_env`),
so a broker that remembers the groups finds their members expired when it comes back."""


@pytest.fixture
def broker() -> Iterator[RestartableBroker]:
    need(s3_available(), "Kafka")
    with restartable_broker() as running:
        yield running


async def _ready(base: str) -> int:
    async with httpx.AsyncClient(timeout=20) as client:
        return (await client.get(f"{base}/readyz")).status_code


async def _partitions(bootstrap: str) -> dict[str, int]:
    """The partitions of each of our topics the broker knows (0: not there)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.value for topic in Topic])
    finally:
        await admin.close()
    return {
        str(topic["topic"]): len(topic["partitions"]) if topic["error_code"] == 0 else 0
        for topic in described
    }


async def _eventually_zero(base: str, within: float) -> float:
    """ingest's `vroegsignaal_outbox_backlog` once it reads 0, or its last value at `within`."""
    deadline = time.monotonic() + within
    value = await _backlog(base)
    while value != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)  # the relay sets it at each poll of the outbox (1 s)
        value = await _backlog(base)
    return value


async def test_a_killed_and_restarted_kafka_broker_loses_nothing_and_the_services_reconnect(
    broker: RestartableBroker,
    database_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    half = TEAMS // 2
    async with kafka_stage(broker.bootstrap, database_url, tmp_path, sessions) as stage:
        receiver, running, ingest = stage.receiver, stage.running, stage.ingest
        await stage.post(range(half))
        await receiver.wait_for(half, within=60)
        assert await _partitions(broker.bootstrap) == {t.value: PARTITIONS for t in Topic}

        broker.kill()  # SIGKILL: no goodbye to the clients, nothing flushed
        down_since = time.monotonic()
        for start in range(half, TEAMS, 3):  # the API keeps taking signals into the outbox
            await stage.post(range(start, start + 3))
        await asyncio.sleep(2)
        backlog = await _unpublished(sessions)
        assert backlog >= TEAMS - half, f"unpublished events while Kafka is down: {backlog}"
        assert await _backlog(ingest) > 0
        assert await _ready(running["notify"].base) == 503, "notify ready without its bus"
        assert await _ready(ingest) == 200, "the signal API must stay ready without Kafka"
        await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - down_since)))
        assert receiver.calls == len(receiver.accepted) == half, "a webhook moved"

        # A new broker process: same port, same storage. Nobody tells the services.
        await asyncio.to_thread(broker.start)
        # The same cluster: our topics with the partitions the services made, not topics
        # created anew (Tansu would make an unknown topic with 4 partitions).
        assert await _partitions(broker.bootstrap) == {t.value: PARTITIONS for t in Topic}

        await receiver.wait_for(TEAMS, within=60)
        await asyncio.sleep(2)  # a duplicate would arrive now
        assert await _unpublished(sessions) == 0
        assert await _eventually_zero(ingest, within=10) == 0
        for name in ("ingest", "rules", "notify"):
            assert await _ready(running[name].base) == 200, f"{name} not ready again"
    alerts = Counter(call.payload["data"]["alert"]["department"] for call in receiver.accepted)
    assert set(alerts) == {f"FACT-{n:03d}" for n in range(TEAMS)}, "an alert is missing"
    assert max(alerts.values()) == 1, alerts.most_common(3)
    assert len(receiver.accepted) == len(set(receiver.ids)) == TEAMS, "a webhook-id twice"
    assert receiver.refused_signatures == []
    assert await _count(sessions, Signal) == TEAMS
    assert await _count(sessions, Alert) == TEAMS

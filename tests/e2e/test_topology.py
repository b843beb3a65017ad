"""The production topology on one machine: separate OS processes — `vroegsignaal ingest`, two
`vroegsignaal rules`, `vroegsignaal notify` — on a PostgreSQL server and (for the Kafka bus) a
real Kafka-protocol broker, with a webhook receiver. Signals for many departments go in through
the API; every alert must reach the receiver exactly once, also when a rules worker is killed
mid-stream; SIGTERM to any process under load loses nothing and ends it within its grace.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, Signal
from tests.ingest.conftest import World, add_fact_teams, build_world
from tests.support.live_server import free_port
from tests.support.receivers import WebhookReceiver
from tests.support.tansu import tansu_broker

VROEGSIGNAAL = str(Path(sys.executable).with_name("vroegsignaal"))
DEPARTMENTS = 48  # FACT teams of provider A in IJssel-Vecht, coordinated by Zilveren Kruis
GRACE = 15.0


@dataclass
class Proc:
    """One `vroegsignaal` service process, its port and its log."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        flag = "--metrics-port" if self.args[0] == "rules" else "--port"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [VROEGSIGNAAL, *self.args, "--host", "127.0.0.1", flag, str(self.port)],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return self

    async def ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    pytest.fail(f"{self.name} exited early:\n{self.tail()}")
                try:
                    if (await client.get(f"{self.base}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        pytest.fail(f"{self.name} did not become ready:\n{self.tail()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, GRACE + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"{self.name} ignored SIGTERM:\n{self.tail()}")
        return int(self.process.returncode), time.monotonic() - started

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(params=["postgres", "kafka"])
def bus(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def own_broker(kafka_bootstrap: str) -> Iterator[str]:
    """A broker of this test's own: its services' topics and groups must not meet the other
    tests' on the shared broker (`kafka_bootstrap` only makes sure one can run here)."""
    with tansu_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def env(
    bus: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("VROEGSIGNAAL_")}
    values.update(
        {
            "VROEGSIGNAAL_DATABASE_URL": database_url,
            "VROEGSIGNAAL_DATA_DIR": str(tmp_path / "data"),
            "VROEGSIGNAAL_BUS": bus,
            "VROEGSIGNAAL_SECRET_KEY": Fernet.generate_key().decode(),
            "VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE": "true",
            "VROEGSIGNAAL_SHUTDOWN_GRACE_SECONDS": str(GRACE),
            "VROEGSIGNAAL_LOG_FORMAT": "json",
            "VROEGSIGNAAL_RATE_LIMIT_PER_SECOND": "10000",
            "VROEGSIGNAAL_RATE_LIMIT_BURST": "10000",
        }
    )
    if bus == "kafka":
        values.update(
            {
                "VROEGSIGNAAL_KAFKA_BOOTSTRAP_SERVERS": request.getfixturevalue("own_broker"),
                "VROEGSIGNAAL_KAFKA_ENABLE_IDEMPOTENCE": "false",  # Tansu lacks it
                "VROEGSIGNAAL_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "VROEGSIGNAAL_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                "VROEGSIGNAAL_KAFKA_FETCH_MAX_WAIT_MS": "100",
            }
        )
    return values


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        await add_fact_teams(session, world, DEPARTMENTS)
    return world


@pytest.fixture
async def processes(env: dict[str, str], tmp_path: Path) -> AsyncIterator[dict[str, Proc]]:
    procs = {
        name: Proc(name, args, env, tmp_path / f"{name}.log")
        for name, args in (
            ("ingest", ["ingest"]),
            ("rules-1", ["rules"]),
            ("rules-2", ["rules"]),
            ("notify", ["notify"]),
        )
    }
    for proc in procs.values():
        proc.start()
    try:
        for proc in procs.values():
            await proc.ready()
        yield procs
    finally:
        for proc in procs.values():
            if proc.process is not None and proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait(timeout=10)


def _staffing(code: str, vacancies: float, days_ago: float) -> dict[str, Any]:
    return {
        "department": code,
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "data": {"fte_budgeted": 20.0, "vacancies_fte": vacancies},
    }


async def _post_rounds(
    client: httpx.AsyncClient, base: str, key: str, rounds: range, on_round: Any = None
) -> tuple[int, int]:
    """Each round: one staffing signal per department (12 % vacancies: watch); (sent, accepted)."""
    sent = accepted = 0
    for round_ in rounds:
        if on_round is not None:
            await on_round(round_)
        batch = [_staffing(f"FACT-{n:03d}", 2.4, 10 - round_ * 0.5) for n in range(DEPARTMENTS)]
        for start in range(0, DEPARTMENTS, 12):
            chunk = batch[start : start + 12]
            sent += len(chunk)
            try:
                response = await client.post(
                    f"{base}/v1/signals",
                    json={"signals": chunk},
                    headers={"Authorization": f"Bearer {key}"},
                )
            except httpx.TransportError:
                continue  # no answer: not acknowledged, so not counted
            if response.status_code == 202:
                accepted += len(chunk)
    return sent, accepted


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_every_alert_reaches_its_receiver_exactly_once_through_kills_and_stops(
    processes: dict[str, Proc],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ingest, notify = processes["ingest"], processes["notify"]
    async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=10) as client:
        made = await client.post(
            f"{notify.base}/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["alert.opened"], "description": "test"},
            headers=world.auth("insurer_zk"),
        )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]

        async def kill_a_rules_worker(round_: int) -> None:
            if round_ == 2:
                processes["rules-1"].kill()  # mid-stream: its partitions move to rules-2

        sent, accepted = await _post_rounds(
            client, ingest.base, world.keys["provider_a"], range(5), kill_a_rules_worker
        )
        assert accepted == sent == 5 * DEPARTMENTS
        alerts = await receiver.wait_for(DEPARTMENTS, within=120)
        await asyncio.sleep(2)  # anything duplicated would arrive now
        assert len(receiver.accepted) == DEPARTMENTS
        opened = {r.payload["data"]["alert"]["department"] for r in alerts}
        assert opened == {f"FACT-{n:03d}" for n in range(DEPARTMENTS)}
        assert len(set(receiver.ids)) == DEPARTMENTS and receiver.refused_signatures == []

        # SIGTERM under load: the remaining rules worker, then ingest, then notify; each exits
        # 0 within its grace, and every acknowledged signal is stored and judged.
        stops: dict[str, tuple[int, float]] = {}

        async def stop_under_load(round_: int) -> None:
            if round_ == 6:
                stops["rules-2"] = await processes["rules-2"].terminate()
            if round_ == 7:
                stops["notify"] = await notify.terminate()
            if round_ == 8:
                stops["ingest"] = await ingest.terminate()

        more_sent, more_accepted = await _post_rounds(
            client, ingest.base, world.keys["provider_a"], range(5, 10), stop_under_load
        )
        for name, (code, seconds) in stops.items():
            assert code == 0, f"{name} exited {code}:\n{processes[name].tail()}"
            assert seconds < GRACE, f"{name} took {seconds:.1f} s to stop"
        assert more_accepted < more_sent  # ingest was stopped part-way

    stored = await _count(sessions, Signal)
    assert stored == accepted + more_accepted, (
        "an acknowledged signal was lost, or one stored twice"
    )
    assert await _count(sessions, Alert) == DEPARTMENTS

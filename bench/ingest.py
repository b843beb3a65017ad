"""Ingest benchmark: the real service over HTTP, against a raw COPY of the same rows.

    .venv/bin/python -m bench.ingest [--database-url URL | --embedded] [--json PATH] [--quick]

One run, one database. The script creates a database of its own on the server
(`--database-url`, default the local server at 127.0.0.1:5432; or an embedded server with
`--embedded`), migrates it, seeds the reference data and a world of one provider with 50
departments in three regions and one API key (rate limit raised out of the way), and drops the
database at the end.

The service runs as in production, in a process of its own: `create_app` with the ingest routers
under uvicorn, one worker, `log_level=warning` (this same script with `--serve`; uvicorn picks
uvloop and httptools when they are installed, and the table says which ran). The load generator
is this process: `httpx.AsyncClient` over HTTP/1.1 keep-alive, one client per connection and as
many connections as requests in flight (see `Load` for why not one pooled client). Request bodies
are valid signals of mixed kinds (staffing, waitlist, capacity, admission stop, closure, contract;
one in five with a note), each with its own id and a distinct `observed_at`, made and serialised
before the phase starts. Every phase starts after a CHECKPOINT, so none inherits another's dirty
pages. The phases:

1. `GET /healthz`, closed loop: what this client and the HTTP stack do with no database work.
2. Single signals, closed loop: `--single` requests of one signal each, `--single-concurrency`
   (32) in flight.
3. Batches, closed loop: `--batches` requests of 100 signals each, `--batch-concurrency` (8) in
   flight.
4. Latency, open loop: one-signal requests sent on a fixed schedule of `--rate` (500) per second
   for `--latency-seconds` (15), after 2 s at the same rate that are not counted. Latency runs from
   the scheduled send time, so a request that waits behind a slow one (in the client, a socket or
   the server) counts against the service: no coordinated omission. A server that cannot keep up
   with the schedule shows as a growing queue, and the table says so.
5. The baseline: as many rows as phase 3 stored, in the shape the API stores them (id,
   department_id, kind, observed_at, received_at, data jsonb, note, source, submitted_by_id,
   body_hash; data and body_hash made by the ingest code itself), put into the same `signals`
   table with asyncpg `copy_records_to_table`: in batches of 100 on one connection, in batches of
   100 on `--batch-concurrency` connections, and as one COPY, each `--raw-repeats` (3) times
   (the median run counts: one takes well under a second). The records are built before the
   clock starts, so this is the database's own rate. The ratios divide by the 100-row batches on
   `--batch-concurrency` connections: the same unit of work (100 rows, one commit) at the same
   concurrency as phase 3. The baseline writes no outbox row; the API writes a `signal.received`
   event per stored signal in the same transaction.

Each phase reports its rate, latency percentiles, the server's CPU per request (per signal for
batches), and the cores used by the client (this process), the server process, PostgreSQL (the
`postgres` processes) and the rest of the machine: client, server and PostgreSQL share the
machine's cores. The figures are rates and ratios for people to read, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import psutil
from sqlalchemy import select

from services.core.db import scratch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROVIDER_AGB = "73990101"
PROVIDER_NAME = "GGZ Benchmark"
REGIONS = ("ijssel-vecht", "twente", "midden-ijssel")
BATCH_SIZE = 100
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SIGNAL_COLUMNS = (
    "id",
    "department_id",
    "kind",
    "observed_at",
    "received_at",
    "data",
    "note",
    "source",
    "submitted_by_id",
    "body_hash",
)
PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "pydantic", "httpx")
AIMS = {
    "batch_signals_per_s": 10_000.0,
    "batch_fraction_of_raw": 0.30,
    "single_requests_per_s": 2_000.0,
    "latency_p99_ms": 50.0,
}


def say(message: str) -> None:
    """Progress, on stderr so that stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


# --- the database and the world ----------------------------------------------------------------


def connect_args(url: str) -> dict[str, Any]:
    """asyncpg arguments for the benchmark's own database."""
    return scratch.connect_args(url)


@contextlib.contextmanager
def server_url(args: argparse.Namespace) -> Iterator[str]:
    """The PostgreSQL server to use: the given one, or an embedded one in a temporary directory."""
    if not args.embedded:
        yield args.database_url
        return
    from services.core.embedded import embedded_postgres

    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-bench-") as tmp,
        embedded_postgres(Path(tmp)) as url,
    ):
        yield url


def own_database(server: str) -> contextlib.AbstractAsyncContextManager[str]:
    """A fresh database on the server, migrated to head; dropped on the way out."""
    return scratch.scratch_database(server, prefix="vroegsignaal_bench")


@dataclass(frozen=True)
class World:
    """What the load needs: the key, the provider and its departments (code → id)."""

    api_key: str
    provider_id: uuid.UUID
    departments: dict[str, uuid.UUID]


async def build_world(url: str, departments: int) -> World:
    """Reference data, one provider with its departments across a few regions, one API key."""
    from services.core.admin.credentials import create_api_key, role_for
    from services.core.admin.departments import DepartmentSpec, add_department
    from services.core.admin.organisations import OrganisationSpec, add_organisation
    from services.core.db.engine import make_engine, make_sessions
    from services.core.db.models import CareType
    from services.core.domain import OrgKind
    from services.core.reference import seed_reference_data

    engine = make_engine(url, pool_size=2)
    try:
        async with make_sessions(engine)() as session, session.begin():
            await seed_reference_data(session)
            provider = await add_organisation(
                session, OrganisationSpec(OrgKind.PROVIDER, PROVIDER_NAME, agb=PROVIDER_AGB)
            )
            care_types = list(await session.scalars(select(CareType).order_by(CareType.code)))
            made: dict[str, uuid.UUID] = {}
            for index in range(departments):
                care_type = care_types[index % len(care_types)]
                code = f"{care_type.code.split('.')[-1].upper().replace('_', '-')}-{index:03d}"
                spec = DepartmentSpec(
                    provider_agb=PROVIDER_AGB,
                    code=code,
                    name=f"Afdeling {care_type.name_nl} {index}",
                    care_type=care_type.code,
                    region=REGIONS[index % len(REGIONS)],
                    capacity=12 + index % 30 if care_type.has_beds else None,
                )
                made[code] = (await add_department(session, spec)).id
            _, clear = await create_api_key(
                session, organisation=provider, role=role_for(provider, None), name="bench"
            )
            return World(api_key=clear, provider_id=provider.id, departments=made)
    finally:
        await engine.dispose()


# --- signals -----------------------------------------------------------------------------------


class SignalFactory:
    """Valid signals of mixed kinds with plausible values, each with a distinct observed_at."""

    KINDS = ("staffing", "waitlist", "capacity", "admission_stop", "closure", "contract")
    WEIGHTS = (30, 25, 25, 8, 4, 8)
    NOTES = (
        "twee verpleegkundigen langdurig ziek",
        "vacatures psychiater al een half jaar open",
        "inzet flexpool loopt op",
        "bedden dicht wegens verbouwing",
        "wachtlijst groeit sinds de zomer",
    )
    REASONS = ("personeelstekort", "verbouwing", "contract loopt af", "fusie van teams")
    CONTRACT_STATUSES = ("contracted", "at_risk", "not_renewed", "budget_ceiling_reached")

    def __init__(self, departments: Sequence[str], *, seed: int, start: datetime) -> None:
        self.departments = list(departments)
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.start = start
        self.count = 0

    def _observed_at(self) -> datetime:
        self.count += 1
        return self.start + timedelta(milliseconds=self.count)

    def make(self) -> dict[str, Any]:
        """One signal as a provider's system would send it."""
        rng = self.rng
        kind = rng.choices(self.KINDS, self.WEIGHTS)[0]
        observed = self._observed_at().astimezone(AMSTERDAM)
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "department": rng.choice(self.departments),
            "kind": kind,
            "observed_at": observed.isoformat(),
            "data": self._data(kind, observed.date()),
        }
        if rng.random() < 0.2:
            body["note"] = rng.choice(self.NOTES)
        return body

    def _data(self, kind: str, day: date) -> dict[str, Any]:
        rng = self.rng
        if kind == "staffing":
            budget = round(rng.uniform(8, 60), 1)
            return {
                "fte_budgeted": budget,
                "fte_filled": round(budget * rng.uniform(0.6, 1.05), 1),
                "vacancies_fte": round(budget * rng.uniform(0, 0.3), 1),
                "sick_leave_pct": round(rng.uniform(2, 18), 1),
                "temp_staff_pct": round(rng.uniform(0, 35), 1),
            }
        if kind == "waitlist":
            waiting = rng.randint(0, 400)
            return {
                "waiting_count": waiting,
                "aanmeldwachttijd_weeks": round(rng.uniform(0.5, 16), 1),
                "behandelwachttijd_weeks": round(rng.uniform(1, 30), 1),
                "waiting_over_norm_count": rng.randint(0, waiting),
            }
        if kind == "capacity":
            beds = rng.randint(8, 40)
            return {
                "beds_total": beds,
                "beds_occupied": rng.randint(0, beds),
                "beds_closed": rng.randint(0, beds // 4),
                "out_of_area_placements": rng.randint(0, 6),
            }
        if kind == "admission_stop":
            since = day - timedelta(days=rng.randint(0, 14))
            return {
                "active": rng.random() < 0.7,
                "since": since.isoformat(),
                "expected_until": (since + timedelta(days=rng.randint(7, 90))).isoformat(),
                "reason": rng.choice(self.REASONS),
            }
        if kind == "closure":
            return {
                "effective_date": (day + timedelta(days=rng.randint(30, 180))).isoformat(),
                "scope": rng.choice(("full", "partial")),
                "capacity_lost": rng.randint(1, 20),
                "reason": rng.choice(self.REASONS),
            }
        return {
            "status": rng.choice(
                ("contracted", "at_risk", "not_renewed", "budget_ceiling_reached")
            ),
            "effective_date": (day + timedelta(days=rng.randint(0, 120))).isoformat(),
        }

    def singles(self, count: int) -> list[bytes]:
        """Request bodies of one signal each."""
        return [json.dumps(self.make()).encode() for _ in range(count)]

    def batches(self, count: int, size: int = BATCH_SIZE) -> list[bytes]:
        """Request bodies of `size` signals each."""
        return [
            json.dumps({"signals": [self.make() for _ in range(size)]}).encode()
            for _ in range(count)
        ]


def check_bodies(bodies: Sequence[bytes]) -> int:
    """Validate bodies with the ingest code itself (a bad generator would measure 422s)."""
    from services.ingest.validation import parse_signals

    received = datetime.now(UTC)
    return sum(len(parse_signals(json.loads(body), now=received)[0]) for body in bodies)


def raw_records(bodies: Sequence[bytes], world: World) -> list[tuple[Any, ...]]:
    """The rows the API would store for these bodies, with fresh ids, ready for COPY."""
    from services.ingest.validation import body_hash, parse_signals

    received = datetime.now(UTC)
    records = []
    for body in bodies:
        for item in parse_signals(json.loads(body), now=received)[0]:
            records.append(
                (
                    uuid.uuid4(),
                    world.departments[item.department],
                    item.kind.value,
                    item.observed_at,
                    received,
                    json.dumps(item.data),
                    item.note,
                    "api",
                    world.provider_id,
                    body_hash(item),
                )
            )
    return records


# --- measuring ---------------------------------------------------------------------------------


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each party (PostgreSQL per process), and by the machine."""

    client: float
    server: float
    postgres: dict[int, float]
    machine: float

    @staticmethod
    def take(server: psutil.Process | None) -> CpuSample:
        postgres = {}
        for process in psutil.process_iter(["name"]):
            if process.info["name"] == "postgres":
                with contextlib.suppress(psutil.Error):
                    postgres[process.pid] = _cpu_seconds(process)
        total = psutil.cpu_times()
        idle = total.idle + getattr(total, "iowait", 0.0)
        return CpuSample(
            client=_cpu_seconds(psutil.Process()),
            server=_cpu_seconds(server) if server is not None else 0.0,
            postgres=postgres,
            machine=float(sum(total) - idle),
        )

    def cores_since(self, start: CpuSample, seconds: float) -> dict[str, float]:
        """Average cores used by each party between two samples (a PostgreSQL process that
        ended in between is missed: open connections before the phase, close them after)."""
        client = (self.client - start.client) / seconds
        server = (self.server - start.server) / seconds
        postgres = (
            sum(used - start.postgres.get(pid, 0.0) for pid, used in self.postgres.items())
            / seconds
        )
        machine = (self.machine - start.machine) / seconds
        return {
            "client": round(client, 2),
            "server": round(server, 2),
            "postgres": round(postgres, 2),
            "other": round(max(0.0, machine - client - server - postgres), 2),
        }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Phase:
    """One measured phase: how much work, how long, how it felt, what it cost."""

    name: str
    unit: str  # what `rate` counts: requests, signals or rows per second
    requests: int = 0
    signals: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    cpu_cores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        done = self.requests if self.unit == "req/s" else self.signals
        return done / self.seconds if self.seconds else 0.0

    def latency(self, fraction: float) -> float:
        return percentile(sorted(self.latencies_ms), fraction)

    def summary(self) -> dict[str, Any]:
        """The figures of the phase, for the JSON file."""
        found: dict[str, Any] = {
            "unit": self.unit,
            "rate": round(self.rate, 1),
            "requests": self.requests,
            "signals": self.signals,
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
            "cpu_cores": self.cpu_cores,
        }
        if self.requests:
            found["requests_per_s"] = round(self.requests / self.seconds, 1)
        if self.signals:
            found["signals_per_s"] = round(self.signals / self.seconds, 1)
        if self.latencies_ms:
            found["latency_ms"] = {
                "p50": round(self.latency(0.50), 2),
                "p90": round(self.latency(0.90), 2),
                "p99": round(self.latency(0.99), 2),
                "max": round(max(self.latencies_ms), 2),
            }
        server_cpu = self.cpu_cores.get("server", 0.0) * self.seconds
        if self.unit == "rows/s":  # the baseline: the server only idles
            server_cpu = 0.0
        if server_cpu and self.requests:
            found["server_cpu_ms_per_request"] = round(server_cpu / self.requests * 1000, 3)
        if server_cpu and self.signals:
            found["server_cpu_ms_per_signal"] = round(server_cpu / self.signals * 1000, 3)
        if self.first_error:
            found["first_error"] = self.first_error
        found.update(self.extra)
        return found

    @property
    def saturated(self) -> bool:
        """An open loop whose server could not keep up with the schedule."""
        target = self.extra.get("target_rate")
        return target is not None and self.rate < 0.95 * target

    def line(self) -> str:
        """One progress line."""
        text = f"  → {self.rate:,.0f} {self.unit} in {self.seconds:.1f} s"
        if self.latencies_ms:
            text += f", p50 {self.latency(0.5):.1f} ms, p99 {self.latency(0.99):.1f} ms"
        cpu = self.cpu_cores
        if cpu:
            text += (
                f"; CPU cores client {cpu['client']:.2f}, server {cpu['server']:.2f},"
                f" postgres {cpu['postgres']:.2f}, other {cpu['other']:.2f}"
            )
        if self.errors:
            text += f"; {self.errors} ERRORS (first: {self.first_error})"
        if self.saturated:
            text += "\n    (the server fell behind the schedule: the latency is mostly queueing)"
        return text


class Meter:
    """Times a phase and samples CPU around it; CHECKPOINT first so phases start alike."""

    def __init__(self, url: str, server: psutil.Process | None) -> None:
        self.url = url
        self.server = server

    async def checkpoint(self) -> None:
        connection = await asyncpg.connect(**connect_args(self.url))
        try:
            await connection.execute("CHECKPOINT")
        except asyncpg.PostgresError as exc:  # not a superuser: phases just share dirty pages
            say(f"  (no CHECKPOINT: {exc})")
        finally:
            await connection.close()

    @contextlib.asynccontextmanager
    async def measure(self, phase: Phase) -> AsyncIterator[None]:
        await self.checkpoint()
        start_cpu = CpuSample.take(self.server)
        started = time.perf_counter()
        yield
        phase.seconds = time.perf_counter() - started
        phase.cpu_cores = CpuSample.take(self.server).cores_since(start_cpu, phase.seconds)


class Load:
    """The HTTP client side: closed-loop and open-loop senders.

    Each connection is its own `httpx.AsyncClient` holding one HTTP/1.1 keep-alive connection,
    lent out from a LIFO of idle ones, up to `connections`. One client with a pool of N
    connections would do the same work, but httpcore scans its whole pool (a poll() per idle
    connection) for every request: at 32 connections that doubled the client's CPU per request
    on the 2-core reference machine, and at 256 it could not keep 500 requests/s.
    """

    def __init__(self, base_url: str, api_key: str, connections: int) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.connections = connections
        self.made: list[httpx.AsyncClient] = []
        self.idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()

    async def close(self) -> None:
        for client in self.made:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.idle.empty() and len(self.made) < self.connections:
            client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self.headers,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=httpx.Timeout(60.0),
            )
            self.made.append(client)
        else:
            client = await self.idle.get()
        try:
            yield client
        finally:
            self.idle.put_nowait(client)

    async def _post(self, body: bytes, phase: Phase, signals: int) -> None:
        try:
            async with self.connection() as client:
                response = await client.post("/v1/signals", content=body)
        except httpx.HTTPError as exc:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{type(exc).__name__}: {exc}"
            return
        if response.status_code != 202:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{response.status_code} {response.text}"
            return
        phase.requests += 1
        phase.signals += signals

    async def _get_health(self, phase: Phase) -> None:
        async with self.connection() as client:
            response = await client.get("/healthz")
        if response.status_code != 200:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{response.status_code} {response.text}"
            return
        phase.requests += 1

    async def closed_loop(
        self, jobs: Sequence[Callable[[], Awaitable[None]]], concurrency: int, phase: Phase
    ) -> None:
        """`concurrency` workers, each sending its next job as soon as its last one answered."""
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:  # one shared iterator: each job is taken once
                started = time.perf_counter()
                await job()
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())

    def posts(
        self, bodies: Sequence[bytes], signals: int, phase: Phase
    ) -> list[Callable[[], Awaitable[None]]]:
        return [_bind(self._post, body, phase, signals) for body in bodies]

    def health_checks(self, count: int, phase: Phase) -> list[Callable[[], Awaitable[None]]]:
        return [_bind(self._get_health, phase) for _ in range(count)]

    async def open_loop(self, bodies: Sequence[bytes], rate: float, phase: Phase) -> None:
        """Send body i at start + i/rate whatever the answers do; latency from that moment."""
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        late: list[float] = []

        async def send(body: bytes, due: float) -> None:
            late.append(loop.time() - due)
            await self._post(body, phase, 1)
            phase.latencies_ms.append((loop.time() - due) * 1000)

        async with asyncio.TaskGroup() as group:
            for index, body in enumerate(bodies):
                due = start + index / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(send(body, due))
        phase.extra["send_lag_ms_p99"] = round(percentile(sorted(late), 0.99) * 1000, 2)
        phase.extra["target_rate"] = rate
        phase.extra["connections_opened"] = len(self.made)


def _bind(function: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], Awaitable[None]]:
    def job() -> Awaitable[None]:
        return function(*args)

    return job


@contextlib.asynccontextmanager
async def copy_connections(url: str, count: int) -> AsyncIterator[list[Any]]:
    """asyncpg connections opened before a phase and closed after its CPU was sampled."""
    pool = [await asyncpg.connect(**connect_args(url)) for _ in range(count)]
    try:
        yield pool
    finally:
        for connection in pool:
            await connection.close()


async def copy_batches(pool: Sequence[Any], records: Sequence[tuple[Any, ...]], size: int) -> None:
    """COPY the records in chunks of `size`, each its own transaction, over the connections."""
    pending = iter([records[i : i + size] for i in range(0, len(records), size)])

    async def worker(connection: Any) -> None:
        for chunk in pending:
            await connection.copy_records_to_table("signals", records=chunk, columns=SIGNAL_COLUMNS)

    async with asyncio.TaskGroup() as group:
        for connection in pool:
            group.create_task(worker(connection))


# --- the server process ------------------------------------------------------------------------


def serve(url: str, port: int) -> None:
    """`--serve`: the ingest service as production runs it, one uvicorn worker."""
    import uvicorn

    from services import ingest
    from services.core.config import Settings
    from services.core.http.app import create_app

    settings = Settings(rate_limit_per_second=1e9, rate_limit_burst=10**9)
    app = create_app(settings, url, routers=ingest.routers())
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        workers=1,
        # Idle connections between phases (CHECKPOINT, COPY) must not be closed under the
        # client's feet: a request sent as the server closes would count as an error.
        timeout_keep_alive=300,
    )
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT is how the benchmark stops it
        uvicorn.Server(config).run()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def running_server(url: str) -> AsyncIterator[tuple[str, psutil.Process]]:
    """Start `--serve` in its own process; yield its address once it is ready; stop it."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ingest", "--serve", url, "--port", str(port), cwd=REPO
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as probe:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the server exited with status {process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the server was not ready within 60 s")
                await asyncio.sleep(0.2)
        yield base, psutil.Process(process.pid)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- the run -----------------------------------------------------------------------------------


def machine_facts(postgres_version: str, postgres_settings: dict[str, str]) -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "asyncpg",
        "pydantic",
        "httpx",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": postgres_version,
        "postgresql_settings": postgres_settings,
        "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "packages": versions,
        "note": "client, server and PostgreSQL run on the same machine and share its cores",
    }


async def postgres_facts(url: str) -> tuple[str, dict[str, str]]:
    connection = await asyncpg.connect(**connect_args(url))
    try:
        version = str(await connection.fetchval("SHOW server_version"))
        rows = await connection.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name",
            ["synchronous_commit", "fsync", "shared_buffers", "wal_level", "max_wal_size"],
        )
        found = {row["name"]: str(row["value"]) for row in rows}
        return version, found
    finally:
        await connection.close()


async def stored(url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(**connect_args(url))
    try:
        signals = await connection.fetchval("SELECT count(*) FROM signals")
        events = await connection.fetchval("SELECT count(*) FROM outbox_events")
        return int(signals), int(events)
    finally:
        await connection.close()


async def run(args: argparse.Namespace, server: str) -> dict[str, Any]:
    say("• Creating, migrating and seeding a database of our own…")
    async with own_database(server) as url:
        started = time.perf_counter()
        world = await build_world(url, args.departments)
        say(
            f"  → {len(world.departments)} departments of one provider"
            f" ({time.perf_counter() - started:.1f} s)"
        )
        version, settings = await postgres_facts(url)
        facts = machine_facts(version, settings)
        say(
            f"• Machine: {facts['cores']} cores ({facts['cpu_model']}), PostgreSQL {version},"
            f" Python {facts['python']}, uvicorn {facts['uvicorn_loop']}/{facts['uvicorn_http']}"
        )

        say("• Making the request bodies (valid, mixed kinds, distinct observed_at)…")
        factory = SignalFactory(
            sorted(world.departments),
            seed=args.seed,
            start=datetime.now(UTC) - timedelta(days=3),
        )
        warm_singles = factory.singles(args.warmup)
        warm_batches = factory.batches(max(4, args.warmup // 50))
        singles = factory.singles(args.single)
        batches = factory.batches(args.batches)
        open_warm = factory.singles(int(args.rate * 2))
        open_bodies = factory.singles(int(args.rate * args.latency_seconds))
        baseline_bodies = factory.batches(args.batches)
        valid = check_bodies([*singles[:200], *batches[:5], *baseline_bodies[:5]])
        records = raw_records(baseline_bodies, world)
        say(f"  → checked {valid} signals with the ingest validation; {len(records)} raw rows")

        phases: dict[str, Phase] = {}
        say("• Starting the service: uvicorn, one worker, log_level=warning…")
        async with running_server(url) as (base, process):
            meter = Meter(url, process)
            connections = max(args.single_concurrency, args.batch_concurrency)
            load = Load(base, world.api_key, connections=connections)
            try:
                say(f"• Warm-up: {len(warm_singles)} single and {len(warm_batches)} batch posts")
                scratch = Phase("warm-up", "req/s")
                await load.closed_loop(
                    load.posts(warm_singles, 1, scratch), args.single_concurrency, scratch
                )
                await load.closed_loop(
                    load.posts(warm_batches, BATCH_SIZE, scratch), args.batch_concurrency, scratch
                )
                if scratch.errors:
                    raise RuntimeError(f"warm-up failed: {scratch.first_error}")

                phase = phases["healthz"] = Phase(
                    f"GET /healthz, c={args.single_concurrency}", "req/s"
                )
                say(f"• {phase.name}: {args.single} requests (HTTP only, no database)…")
                async with meter.measure(phase):
                    await load.closed_loop(
                        load.health_checks(args.single, phase), args.single_concurrency, phase
                    )
                say(phase.line())

                phase = phases["single"] = Phase(
                    f"POST 1 signal, c={args.single_concurrency}", "req/s"
                )
                say(f"• {phase.name}: {len(singles)} requests…")
                async with meter.measure(phase):
                    await load.closed_loop(
                        load.posts(singles, 1, phase), args.single_concurrency, phase
                    )
                say(phase.line())

                phase = phases["batch"] = Phase(
                    f"POST {BATCH_SIZE} signals, c={args.batch_concurrency}", "signals/s"
                )
                say(f"• {phase.name}: {len(batches)} requests…")
                async with meter.measure(phase):
                    await load.closed_loop(
                        load.posts(batches, BATCH_SIZE, phase), args.batch_concurrency, phase
                    )
                say(phase.line())
            finally:
                await load.close()

            # The open loop gets a pool as large as its backlog may grow: a queue in the
            # client would hide the server's latency behind a fixed number of connections.
            load = Load(base, world.api_key, connections=args.open_connections)
            try:
                phase = phases["latency"] = Phase(
                    f"POST 1 signal, open loop {args.rate:g}/s", "req/s"
                )
                say(f"• {phase.name}: 2 s warm-up, then {args.latency_seconds:g} s measured…")
                await load.open_loop(open_warm, args.rate, Phase("warm-up", "req/s"))
                async with meter.measure(phase):
                    await load.open_loop(open_bodies, args.rate, phase)
                say(phase.line())
            finally:
                await load.close()

            rows = len(records)
            for key, name, size, connections in (
                ("raw_100", f"raw COPY {BATCH_SIZE}-row batches, 1 conn", BATCH_SIZE, 1),
                (
                    "raw_100_concurrent",
                    f"raw COPY {BATCH_SIZE}-row batches, {args.batch_concurrency} conns",
                    BATCH_SIZE,
                    args.batch_concurrency,
                ),
                ("raw_one", "raw COPY one batch, 1 conn", rows, 1),
            ):
                say(f"• {name}: {rows} rows into signals, {args.raw_repeats} times…")
                runs = []
                for _ in range(args.raw_repeats):
                    fresh = [(uuid.uuid4(), *record[1:]) for record in records]
                    attempt = Phase(name, "rows/s", signals=rows, requests=-(-rows // size))
                    async with copy_connections(url, connections) as pool, meter.measure(attempt):
                        await copy_batches(pool, fresh, size)
                    say(attempt.line())
                    runs.append(attempt)
                # A COPY of 30,000 rows takes well under a second: report the median run.
                phase = phases[key] = sorted(runs, key=lambda run: run.rate)[len(runs) // 2]
                phase.extra["rows_per_s_of_each_run"] = [round(run.rate, 1) for run in runs]

        signals, events = await stored(url)
        api_stored = sum(phases[key].signals for key in ("single", "batch", "latency"))
        say(f"• Stored: {signals} signals, {events} outbox events; dropping the database")
    return report(args, facts, phases, api_stored, signals, events)


def report(
    args: argparse.Namespace,
    facts: dict[str, Any],
    phases: dict[str, Phase],
    api_stored: int,
    signals: int,
    events: int,
) -> dict[str, Any]:
    raw = phases["raw_100_concurrent"].rate
    single = phases["single"].rate
    batch = phases["batch"].rate
    p99 = phases["latency"].latency(0.99)
    measured = {
        "batch_signals_per_s": batch,
        "batch_fraction_of_raw": batch / raw,
        "single_requests_per_s": single,
        "latency_p99_ms": p99,
    }
    met = {
        "batch_signals_per_s": batch >= AIMS["batch_signals_per_s"],
        "batch_fraction_of_raw": batch / raw >= AIMS["batch_fraction_of_raw"],
        "single_requests_per_s": single >= AIMS["single_requests_per_s"],
        "latency_p99_ms": p99 < AIMS["latency_p99_ms"],
    }
    return {
        "benchmark": "ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "config": {
            "departments": args.departments,
            "single_requests": args.single,
            "single_concurrency": args.single_concurrency,
            "batches": args.batches,
            "batch_size": BATCH_SIZE,
            "batch_concurrency": args.batch_concurrency,
            "open_loop_rate": args.rate,
            "open_loop_seconds": args.latency_seconds,
            "open_loop_connections": args.open_connections,
            "raw_repeats": args.raw_repeats,
            "uvicorn_workers": 1,
        },
        "phases": {key: phase.summary() for key, phase in phases.items()},
        "ratios_to_raw": {
            "denominator": "raw_100_concurrent",
            "raw_rows_per_s": round(raw, 1),
            "single_signals": round(phases["single"].rate / raw, 4),
            "batch_signals": round(batch / raw, 4),
            "batch_signals_vs_raw_100_one_connection": round(batch / phases["raw_100"].rate, 4),
            "batch_signals_vs_raw_one_copy": round(batch / phases["raw_one"].rate, 4),
        },
        "aims": {
            key: {"aim": AIMS[key], "measured": round(measured[key], 4), "met": met[key]}
            for key in AIMS
        },
        "stored": {"signals": signals, "outbox_events": events, "by_api_measured": api_stored},
    }


def table(result: dict[str, Any]) -> str:
    """The figures for people."""
    machine = result["machine"]
    phases = result["phases"]
    raw = result["ratios_to_raw"]["raw_rows_per_s"]
    lines = [
        f"Ingest benchmark, {result['when']}: one uvicorn worker"
        f" ({machine['uvicorn_loop']}/{machine['uvicorn_http']}), PostgreSQL"
        f" {machine['postgresql']}, Python {machine['python']}",
        f"{machine['cores']} cores ({machine['cpu_model']}) shared by the load client,"
        " the server and PostgreSQL",
        "",
        f"{'phase':<32} {'rate':>8} {'unit':<10} {'vs raw':>6} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'srv ms':>7}  CPU cores client/server/pg/other",
    ]
    for phase_key, values in phases.items():
        latency = values.get("latency_ms", {})
        ratio = ""
        signals_rate = values.get("signals_per_s", 0.0)
        ratio = f"{signals_rate / raw:.1%}" if signals_rate else ""
        by_signal = values["unit"] == "signals/s"
        per_unit = values.get(f"server_cpu_ms_per_{'signal' if by_signal else 'request'}")
        cpu = values["cpu_cores"]
        name = PHASE_NAMES.get(phase_key, phase_key)
        lines.append(
            f"{name:<32} {values['rate']:>8,.0f} {values['unit']:<10} {ratio:>6}"
            f" {latency.get('p50', float('nan')):>8.1f} {latency.get('p99', float('nan')):>8.1f}"
            f" {'' if per_unit is None else f'{per_unit:.3f}':>7}"
            f"  {cpu['client']:.2f}/{cpu['server']:.2f}/{cpu['postgres']:.2f}/{cpu['other']:.2f}"
            + (f"  {values['errors']} errors" if values["errors"] else "")
        )
    lines += [
        "",
        "vs raw: signals/s as a fraction of the raw COPY of 100-row batches at the batch"
        " concurrency",
        "(the API also writes an outbox event per signal, the baseline does not).",
        "srv ms: CPU of the server process per request (per signal for the batch phase).",
    ]
    if phases["latency"].get("rate", 0.0) < 0.95 * phases["latency"]["target_rate"]:
        lines.append(
            "The open loop fell behind its schedule: the server cannot sustain that rate,"
            " so its latency is mostly queueing."
        )
    lines += ["", f"{'aim':<36} {'target':>12} {'measured':>12}"]
    labels = {
        "batch_signals_per_s": ("batch signals/s", ">= {:,.0f}", "{:,.0f}"),
        "batch_fraction_of_raw": ("batch / raw insert rate", ">= {:.0%}", "{:.0%}"),
        "single_requests_per_s": ("single-signal requests/s", ">= {:,.0f}", "{:,.0f}"),
        "latency_p99_ms": ("p99 at the open-loop rate (ms)", "< {:.0f}", "{:.1f}"),
    }
    for key, aim in result["aims"].items():
        label, target, shown = labels[key]
        verdict = "met" if aim["met"] else "MISSED"
        lines.append(
            f"{label:<36} {target.format(aim['aim']):>12} {shown.format(aim['measured']):>12}"
            f"  {verdict}"
        )
    return "\n".join(lines)


PHASE_NAMES = {
    "healthz": "GET /healthz (no DB)",
    "single": "POST 1 signal (closed loop)",
    "batch": "POST 100 signals (closed loop)",
    "latency": "POST 1 signal (open loop)",
    "raw_100": "raw COPY 100 rows, 1 conn",
    "raw_100_concurrent": "raw COPY 100 rows, concurrent",
    "raw_one": "raw COPY one batch",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="Ingest throughput and latency of the real service against a raw COPY.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="server to create the benchmark database on (default: %(default)s)",
    )
    where.add_argument(
        "--embedded", action="store_true", help="start an embedded PostgreSQL server instead"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--departments", type=int, default=50)
    parser.add_argument("--single", type=int, default=10_000, help="single-signal requests")
    parser.add_argument("--single-concurrency", type=int, default=32)
    parser.add_argument("--batches", type=int, default=300, help="batch requests (100 each)")
    parser.add_argument("--batch-concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests per second")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--open-connections", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=500, help="single-signal warm-up requests")
    parser.add_argument("--raw-repeats", type=int, default=3, help="runs of each COPY baseline")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--quick", action="store_true", help="a short run to check the script (figures rough)"
    )
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.single, args.batches, args.latency_seconds, args.warmup = 1000, 30, 3.0, 100
        args.raw_repeats = 1
    return args


def skip_sniffio_lookups() -> None:
    """Make httpcore's per-request `import sniffio` fail at once when sniffio is not installed.

    httpcore asks sniffio which async library runs, importing it inside a function on every lock
    it sets up; anyio 4.16 no longer depends on sniffio, so here the import fails, and a failed
    import is not cached: each one scans sys.path again (about 0.2 ms of client CPU per request
    on the reference machine). None in sys.modules fails the import at once, with the same
    outcome (httpcore assumes asyncio).
    """
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return
    skip_sniffio_lookups()
    with server_url(args) as server:
        result = asyncio.run(run(args, server))
    print(table(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        say(f"• Figures written to {args.json}")


if __name__ == "__main__":
    main()

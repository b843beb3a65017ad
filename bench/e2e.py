"""End to end: from `POST /v1/signals` to a signed webhook, against Prometheus Alertmanager.

    .venv/bin/python -m bench.e2e [--database-url URL] [--json PATH] [--quick]
        [--rate 200] [--seconds 20] [--backlog 6000] [--slow-backlog 2000]
        [--max-in-flight N] [--no-alertmanager] [--profile DIR]

The whole chain on PostgreSQL as `vroegsignaal up` runs it: this script starts the real command
(`.venv/bin/vroegsignaal up`, one process: ingest, the rules worker, the notifier, the escalation
timers, the delivery worker, the digest schedule, the dashboard) on a database of its own, with
`VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE=true` (the receiver listens on 127.0.0.1), a Fernet key, and
every other setting at its default (`--max-in-flight` sets `VROEGSIGNAAL_WEBHOOK_MAX_IN_FLIGHT`).
Nothing is stubbed: each signal is stored with its outbox event, relayed on the PostgreSQL bus,
judged by the packaged ruleset, its alert opened or changed (and its outbox event), placed on
the packaged escalation ladder by the notifier, which queues a delivery, and the delivery worker
claims, signs and sends it. The receiver (`bench/e2e_receiver.py`, a process of its own) verifies
every call with the reference `standardwebhooks` library and the endpoint's secret, and notes
when it arrived.

**World.** Reference data; `--providers` (20) providers and a department for every signal the
run will send to the service (about 7,000: each signal opens an alert of its own), spread over
the providers, the IZA regions and the twelve regional care types (about 14 per region and care
type); one API key per provider; one webhook endpoint per provider (`/hook/<agb>` on the
receiver) for `alert.opened`, `alert.updated`, `alert.escalated` and `alert.resolved`.

**Signals.** One staffing report per department, 25 % of the hours worked by temporary staff
(rule `staffing.temp_staff_high`, level watch): it opens the department's alert at the
provider's step of the ladder, so every signal makes exactly one alert event and one webhook
(`alert.opened` to the provider's endpoint). (Reports that flip an alert's reasons back and
forth would test `alert.updated` too, but reports of one department within seconds of each
other are not what the rules engine judges as a series.) Each signal carries its own `id`; the
webhook carries it back as `data.signal_id`, which is how the receiver's arrival is matched to
the post.

**Alertmanager**, the peer users would otherwise pick, runs in the same run on the same machine:
the Debian package's `prometheus-alertmanager` on 127.0.0.1 with clustering off, one route with
`group_by: ['...']` (every alert a group of its own), `group_wait: 0s`, and a webhook receiver
on a second receiver process (which records each alert's `signal` label; Alertmanager does not
sign). It is fed the same stream: one alert per signal (labels `alertname`, `department`,
`provider`, `signal`; the reason as an annotation) on `POST /api/v2/alerts`. It keeps alerts in
memory, has no rules to run and writes nothing durable before it notifies.

**Phases**, each for both systems (Vroegsignaal first), each after a `CHECKPOINT`:

1. **Latency at a steady rate.** Open loop: one signal (one alert) per request at `--rate`
   (200) per second for `--warmup` (3) + `--seconds` (20) s, on a schedule that does not wait
   for answers (up to 64 connections, one `httpx.AsyncClient` each). Latency runs from a
   signal's scheduled send time to the moment the receiver has read its verified webhook: a
   request that waits behind another counts (no coordinated omission). p50, p90, p99, max; the
   warm-up is not counted. The percentiles count every signal, however late its webhook (the
   script waits up to 10 minutes for the last); one that came more than 30 s after the last
   send is also counted as "missing", a sign that the system did not keep up with the rate.
2. **Alerts per second end to end, fast receiver.** A backlog of `--backlog` (6,000) signals,
   posted as fast as the API takes them, in requests of 100 (one per department of a provider,
   three rounds over the departments); the clock runs from the first post to the last verified
   webhook. For Vroegsignaal the database also says when each stage finished (the last signal
   stored, the last alert event by the rules worker, the last delivery queued by the notifier,
   the last attempt recorded), so the table shows where the time goes.
3. **A slow receiver** (every answer after 200 ms): the same with `--slow-backlog` (2,000)
   signals. With the default limit of 4 calls in flight per endpoint and 20 endpoints, the
   delivery worker's own limit of 64 calls binds: at most 320 deliveries/s.

The CPU of each party (this process as the load generator, the service, the PostgreSQL backends
of the benchmark's database, Alertmanager, the receivers) is sampled around each phase. The
machine is shared: the load average at the start of every phase is reported. `--profile DIR`
records the service with py-spy during phase 2 (raw collapsed stacks), which costs it CPU:
profile in a run of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from cryptography.fernet import Fernet

from bench.e2e_receiver import RunningReceiver, free_port, running_receiver
from bench.measure import database_of
from services.core.db.scratch import connect_args, scratch_database

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EVENT_TYPES = ["alert.opened", "alert.updated", "alert.escalated", "alert.resolved"]
AIMS = {"latency_p99_ms": 50.0, "alerts_per_s": 1_100.0}
AIM_RATE = 200.0  # signals/s at which the latency aim holds
MAX_CONNECTIONS = 64
GRACE_SECONDS = 30.0
DRAIN_SECONDS = 600.0
AM_BINARY = "prometheus-alertmanager"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- the world ---------------------------------------------------------------------------------


@dataclass
class Provider:
    agb: str
    key: str
    secret: str
    departments: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/hook/{self.agb}"


@dataclass
class World:
    providers: list[Provider]
    fernet_key: str

    @property
    def secrets(self) -> dict[str, str]:
        return {p.path: p.secret for p in self.providers}


async def build_world(
    url: str, receiver: RunningReceiver, providers: int, departments: int
) -> World:
    """Reference data, providers with keys and endpoints, departments (imported as a CSV)."""
    from sqlalchemy import select

    from services.core.admin.credentials import create_api_key, role_for
    from services.core.admin.departments import DEPARTMENT_CSV_COLUMNS, import_departments
    from services.core.admin.organisations import OrganisationSpec, add_organisation
    from services.core.db.engine import make_engine, make_sessions
    from services.core.db.models import CareType, Region
    from services.core.domain import OrgKind, Scope
    from services.core.reference import seed_reference_data
    from services.notify.deliveries.manage import create_subscription
    from services.notify.deliveries.secrets import SecretBox

    key = Fernet.generate_key().decode()
    box = SecretBox([key.encode()])
    engine = make_engine(url, pool_size=1)
    made: list[Provider] = []
    try:
        async with make_sessions(engine)() as session, session.begin():
            await seed_reference_data(session)
            regions = sorted(
                (await session.scalars(select(Region.code).where(Region.active))).all()
            )
            care_types = (
                await session.execute(
                    select(CareType.code, CareType.has_beds)
                    .where(CareType.default_scope == Scope.REGIONAL)
                    .order_by(CareType.code)
                )
            ).all()
            for index in range(providers):
                agb = f"7399{index:04d}"
                organisation = await add_organisation(
                    session,
                    OrganisationSpec(OrgKind.PROVIDER, f"Bench GGZ {index:02d}", agb=agb),
                )
                _, clear = await create_api_key(
                    session, organisation=organisation, role=role_for(organisation, None)
                )
                _, secret = await create_subscription(
                    session,
                    organisation_id=organisation.id,
                    url=f"{receiver.base}/hook/{agb}",
                    event_types=EVENT_TYPES,
                    description="bench",
                    box=box,
                )
                made.append(Provider(agb, clear, secret))
            rows = []
            for index in range(departments):
                provider = made[index % providers]
                code = f"AFD-{index:05d}"
                provider.departments.append(code)
                care_type, beds = care_types[index % len(care_types)]
                region = regions[(index // len(care_types)) % len(regions)]
                capacity = "20" if beds else ""
                rows.append(
                    [provider.agb, code, f"Afdeling {index}", care_type, region, "", capacity]
                )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "departments.csv"
                for start in range(0, len(rows), 1000):  # larger files overflow a check's query
                    with path.open("w", newline="") as stream:
                        writer = csv.writer(stream)
                        writer.writerow(DEPARTMENT_CSV_COLUMNS)
                        writer.writerows(rows[start : start + 1000])
                    await import_departments(session, path)
        return World(made, key)
    finally:
        await engine.dispose()


class Stream:
    """The signals: one staffing report per department, each opening the department's alert."""

    def __init__(self, world: World) -> None:
        # Departments in turn over the providers, each used once.
        self._unused = [
            (provider, provider.departments[index])
            for index in range(max(len(p.departments) for p in world.providers))
            for provider in world.providers
            if index < len(provider.departments)
        ]
        self._observed = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        self._providers = world.providers
        self._peer = 0

    def take(self, count: int) -> list[tuple[Provider, dict[str, Any]]]:
        """`count` signals, each about a department that has had none."""
        if count > len(self._unused):
            raise RuntimeError("the world has too few departments left")
        taken, self._unused = self._unused[:count], self._unused[count:]
        return [(provider, self.signal(department)) for provider, department in taken]

    def take_unregistered(self, count: int) -> list[tuple[Provider, dict[str, Any]]]:
        """The same stream for Alertmanager, which has no register of departments (so the
        service's world holds only the departments it is sent signals about)."""
        made = []
        for _ in range(count):
            provider = self._providers[self._peer % len(self._providers)]
            made.append((provider, self.signal(f"PEER-{self._peer:05d}")))
            self._peer += 1
        return made

    def signal(self, department: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "department": department,
            "kind": "staffing",
            "observed_at": self._observed,
            "data": {"fte_budgeted": 20.0, "temp_staff_pct": 25.0},
        }

    @staticmethod
    def as_alert(provider: Provider, signal_: dict[str, Any]) -> dict[str, Any]:
        """The same report as an Alertmanager alert: one group each (the `signal` label)."""
        return {
            "labels": {
                "alertname": "ContinuityRisk",
                "department": signal_["department"],
                "provider": provider.agb,
                "severity": "watch",
                "signal": signal_["id"],
            },
            "annotations": {"reason": "staffing.temp_staff_high"},
            "startsAt": datetime.now(UTC).isoformat(),
        }


# --- the processes -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_services(
    url: str, world: World, data_dir: Path, max_in_flight: int | None, topology: str
) -> AsyncIterator[tuple[str, dict[str, psutil.Process]]]:
    """The service as an operator starts it: `vroegsignaal up` (one process), or `processes`:
    `vroegsignaal ingest`, `rules` and `notify`, each a process of its own, as deployed
    (deploy/). The base URL of the signals API, and the processes by name."""
    if topology == "up":
        async with running_service(url, world, data_dir, max_in_flight) as (base, process):
            yield base, {"up": process}
        return
    async with contextlib.AsyncExitStack() as stack:
        found: dict[str, psutil.Process] = {}
        bases: dict[str, str] = {}
        for name in ("ingest", "rules", "notify"):
            base, process = await stack.enter_async_context(
                running_service(url, world, data_dir, max_in_flight, command=name)
            )
            found[name], bases[name] = process, base
        yield bases["ingest"], found


@contextlib.asynccontextmanager
async def running_service(
    url: str,
    world: World,
    data_dir: Path,
    max_in_flight: int | None,
    command: str = "up",
) -> AsyncIterator[tuple[str, psutil.Process]]:
    """`vroegsignaal <command>` in a process of its own, as an operator starts it."""
    port = free_port()
    env = {
        **os.environ,
        "VROEGSIGNAAL_DATABASE_URL": url,
        "VROEGSIGNAAL_DATA_DIR": str(data_dir),
        "VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE": "true",
        "VROEGSIGNAAL_SECRET_KEY": world.fernet_key,
    }
    if max_in_flight is not None:
        env["VROEGSIGNAAL_WEBHOOK_MAX_IN_FLIGHT"] = str(max_in_flight)
    log = (data_dir / f"service-{command}.log").open("w")
    # `vroegsignaal <command>`, from the tree this script is in (the console script would import
    # the installed package, which may be another checkout).
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from services.cli import main; main()",
        command,
        "--metrics-port" if command == "rules" else "--port",
        str(port),
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as probe:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"vroegsignaal {command} exited ({log.name})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vroegsignaal {command} was not ready within 120 s")
                await asyncio.sleep(0.25)
        yield base, psutil.Process(process.pid)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


ALERTMANAGER_CONFIG = """\
route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: false
"""


@contextlib.asynccontextmanager
async def running_alertmanager(
    receiver: RunningReceiver, data_dir: Path
) -> AsyncIterator[tuple[str, psutil.Process, str]]:
    """Alertmanager on loopback, clustering off, one group per alert, `group_wait: 0s`."""
    binary = shutil.which(AM_BINARY)
    if binary is None:
        raise RuntimeError("apt-get install -y prometheus-alertmanager")
    port = free_port()
    config = data_dir / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG.format(url=f"{receiver.base}/am"))
    storage = data_dir / "alertmanager"
    storage.mkdir()
    log = (data_dir / "alertmanager.log").open("w")
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
        stdout=log,
        stderr=log,
    )
    version = ""
    with contextlib.suppress(Exception):
        found = await asyncio.create_subprocess_exec(
            binary, "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await found.communicate()
        version = out.decode().split("\n")[0].strip()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as probe:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"alertmanager exited ({data_dir / 'alertmanager.log'})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/-/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("alertmanager was not ready within 30 s")
                await asyncio.sleep(0.1)
        yield base, psutil.Process(process.pid), version
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


# --- measuring ---------------------------------------------------------------------------------


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)
    except psutil.Error:
        return 0.0


class Cpu:
    """CPU seconds of each party; PostgreSQL: the backends serving the benchmark's database."""

    def __init__(self, parties: dict[str, psutil.Process], database: str) -> None:
        self._parties = parties
        self._database = database

    def _postgres(self) -> dict[int, float]:
        found = {}
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] != "postgres":
                continue
            line = " ".join(process.info["cmdline"] or ())
            if f" {self._database} " in f"{line} ":
                found[process.pid] = _cpu(process)
        return found

    def take(self) -> tuple[dict[str, float], dict[int, float], float]:
        return (
            {name: _cpu(p) for name, p in self._parties.items()},
            self._postgres(),
            time.perf_counter(),
        )

    def cores_since(
        self, start: tuple[dict[str, float], dict[int, float], float]
    ) -> dict[str, Any]:
        now = self.take()
        seconds = now[2] - start[2]
        cores = {name: round((now[0][name] - start[0][name]) / seconds, 2) for name in now[0]}
        service = [name for name in cores if name.startswith("vroegsignaal:")]
        cores["vroegsignaal"] = round(sum(cores[name] for name in service), 2)
        if len(service) == 1:
            del cores[service[0]]
        cores["postgres"] = round(
            sum(used - start[1].get(pid, 0.0) for pid, used in now[1].items()) / seconds, 2
        )
        return cores


class Connections:
    """`limit` keep-alive connections to one base URL, one `httpx.AsyncClient` each (a pooled
    client costs more CPU per request the more connections it holds: bench/e2e_delivery.py),
    opened before the clock starts."""

    def __init__(self, base: str, limit: int = MAX_CONNECTIONS) -> None:
        tls = httpx.create_ssl_context()  # one for all: each costs ~25 ms of CPU to make
        self._all = [
            httpx.AsyncClient(
                base_url=base,
                timeout=60,
                verify=tls,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            for _ in range(limit)
        ]
        self._free = list(self._all)
        self._available = asyncio.Condition()

    async def open(self, path: str) -> None:
        """Connect every client (a GET of `path` each, all at once)."""
        await asyncio.gather(*(client.get(path) for client in self._all))

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async with self._available:
            while not self._free:
                await self._available.wait()
            client = self._free.pop()
        try:
            return await client.post(path, content=body, headers=headers)
        finally:
            async with self._available:
                self._free.append(client)
                self._available.notify()

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()


@dataclass
class Sender:
    """How one system is fed: a signal (or a batch) as a request."""

    name: str
    connections: Connections
    request: Callable[[list[tuple[Provider, dict[str, Any]]]], tuple[str, bytes, dict[str, str]]]
    accepted: int  # the status a stored request answers
    registered: bool = True  # signals about registered departments (Vroegsignaal) or not
    retried: list[str] = field(default_factory=list)  # 5xx answers sent again

    async def send(self, batch: list[tuple[Provider, dict[str, Any]]]) -> None:
        """Send until stored: a 5xx is sent again (as a provider system would; every signal
        has its own id, so a repeat stores nothing twice)."""
        path, body, headers = self.request(batch)
        for _ in range(5):
            answer = await self.connections.post(path, body, headers)
            if answer.status_code == self.accepted:
                return
            if answer.status_code < 500:
                break
            self.retried.append(f"{answer.status_code} {answer.text[:200]}")
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name}: {answer.status_code} {answer.text[:300]}")


def vroegsignaal_request(
    batch: list[tuple[Provider, dict[str, Any]]],
) -> tuple[str, bytes, dict[str, str]]:
    provider = batch[0][0]
    signals = [s for _, s in batch]
    body = signals[0] if len(signals) == 1 else {"signals": signals}
    headers = {"authorization": f"Bearer {provider.key}", "content-type": "application/json"}
    return "/v1/signals", json.dumps(body).encode(), headers


def alertmanager_request(
    batch: list[tuple[Provider, dict[str, Any]]],
) -> tuple[str, bytes, dict[str, str]]:
    alerts = [Stream.as_alert(p, s) for p, s in batch]
    return "/api/v2/alerts", json.dumps(alerts).encode(), {"content-type": "application/json"}


async def arrivals(receiver: RunningReceiver, wanted: set[str], until: float) -> dict[str, float]:
    """The first arrival of each wanted signal id, waiting until all came or `until`."""
    while True:
        records = await receiver.records()
        first: dict[str, float] = {}
        for at, key, _ in records["received"]:
            if key in wanted and key not in first:
                first[key] = at
        if len(first) >= len(wanted) or time.time() > until:
            if records["refused"]:
                raise RuntimeError(f"the receiver refused {records['refused']} signatures")
            return first
        await asyncio.sleep(0.5)


async def checkpoint(url: str) -> None:
    connection = await asyncpg.connect(**connect_args(url))
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def latency_phase(
    sender: Sender,
    receiver: RunningReceiver,
    stream: Stream,
    cpu: Cpu,
    *,
    rate: float,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    total = int(rate * (warmup + seconds))
    planned = stream.take(total) if sender.registered else stream.take_unregistered(total)
    scheduled: dict[str, float] = {}
    errors: list[str] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: tuple[Provider, dict[str, Any]]) -> None:
        try:
            await sender.send([item])
        except Exception as exc:
            errors.append(str(exc))

    retried_before = len(sender.retried)
    start_cpu = cpu.take()
    load = os.getloadavg()[0]
    started = time.time() + 0.2
    for index, item in enumerate(planned):
        at = started + index / rate
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if index >= rate * warmup:
            scheduled[item[1]["id"]] = at
        task = asyncio.create_task(one(item))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_until = time.time()
    achieved = len(planned) / (sent_until - started)
    await asyncio.gather(*tasks)
    # Every signal's webhook, however late (a system that fell behind catches up here, before
    # the next phase); what came more than GRACE_SECONDS after the last send is "missing".
    every = {item[1]["id"] for item in planned}
    got = await arrivals(receiver, every, sent_until + DRAIN_SECONDS)
    cores = cpu.cores_since(start_cpu)
    latencies = sorted((got[k] - at) * 1000 for k, at in scheduled.items() if k in got)
    late = sum(1 for k in scheduled if k not in got or got[k] > sent_until + GRACE_SECONDS)
    drained_after = max(got.values(), default=sent_until) - sent_until
    return {
        "system": sender.name,
        "rate": rate,
        "achieved_rate": round(achieved, 1),
        "measured": len(scheduled),
        "missing": late,
        "all_arrived_after_last_send_s": round(drained_after, 1),
        "never_arrived": len(every) - len(got),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "retried_5xx": sender.retried[retried_before:],
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p90": round(percentile(latencies, 0.90), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(latencies[-1], 1) if latencies else float("nan"),
        },
        "cpu_cores": cores,
        "load_average_1m": round(load, 2),
    }


async def backlog_phase(
    sender: Sender,
    receiver: RunningReceiver,
    stream: Stream,
    cpu: Cpu,
    *,
    count: int,
    batch_size: int = 100,
    stages: Callable[[list[str]], Awaitable[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    planned = stream.take(count) if sender.registered else stream.take_unregistered(count)
    batches: list[list[tuple[Provider, dict[str, Any]]]] = []
    by_provider: dict[str, list[tuple[Provider, dict[str, Any]]]] = {}
    for item in planned:  # a request holds one provider's signals
        queue = by_provider.setdefault(item[0].agb, [])
        queue.append(item)
        if len(queue) == batch_size:
            batches.append(queue)
            by_provider[item[0].agb] = []
    batches.extend(queue for queue in by_provider.values() if queue)
    wanted = {s["id"] for _, s in planned}
    retried_before = len(sender.retried)
    load = os.getloadavg()[0]
    start_cpu = cpu.take()
    started = time.time()
    pending = list(batches)

    async def post_all() -> None:
        while pending:
            await sender.send(pending.pop(0))

    await asyncio.gather(*(post_all() for _ in range(8)))
    posted = time.time()
    got = await arrivals(receiver, wanted, posted + DRAIN_SECONDS)
    last = max(got.values()) if got else posted
    cores = cpu.cores_since(start_cpu)
    result: dict[str, Any] = {
        "system": sender.name,
        "alerts": count,
        "delivered": len(got),
        "missing": count - len(got),
        "seconds": round(last - started, 3),
        "alerts_per_s": round(len(got) / (last - started), 1),
        "posted_after_s": round(posted - started, 3),
        "retried_5xx": sender.retried[retried_before:],
        "cpu_cores": cores,
        "load_average_1m": round(load, 2),
    }
    if stages is not None:
        result["stages_done_after_s"] = {
            name: round(at - started, 3) for name, at in (await stages(sorted(wanted))).items()
        }
        result["stages_done_after_s"]["webhook received"] = round(last - started, 3)
    return result


async def vroegsignaal_stages(url: str, ids: list[str]) -> dict[str, float]:
    """When each stage of the chain finished its last piece of work for these signals (by the
    database's clocks; the delivery's time is that of the notifier's transaction start)."""
    connection = await asyncpg.connect(**connect_args(url))
    try:
        row = await connection.fetchrow(
            """
            SELECT max(s.received_at) AS stored, max(e.at) AS judged,
                   max(d.created_at) AS queued, max(a.attempted_at) AS recorded
            FROM signals s
            LEFT JOIN alerts al ON al.department_id = s.department_id
            LEFT JOIN alert_events e ON e.alert_id = al.id
            LEFT JOIN deliveries d ON d.alert_id = al.id
            LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
            WHERE s.received_at >= (SELECT max(received_at) FROM signals) - interval '10 minutes'
              AND s.id = ANY($1::uuid[])
            """,
            ids,
        )
    finally:
        await connection.close()
    names = {
        "stored": "signal stored (ingest)",
        "judged": "alert event (rules)",
        "queued": "delivery queued (notifier)",
        "recorded": "attempt recorded (delivery worker)",
    }
    return {label: row[key].timestamp() for key, label in names.items() if row[key]}


async def deliveries_done(url: str) -> None:
    """Wait until no delivery is pending (the last attempts may still be being recorded)."""
    connection = await asyncpg.connect(**connect_args(url))
    try:
        deadline = time.monotonic() + 60
        while pending := await connection.fetchval(
            "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} deliveries did not succeed")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def py_spy(pid: int, out: Path | None) -> AsyncIterator[None]:
    if out is None:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    process = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
        "--output", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 30)
        say(f"  py-spy profile of the service: {out}")


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("fastapi", "uvicorn", "sqlalchemy", "asyncpg", "httpx", "httpcore", "h11"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy(), "phases": {}}
    result["settings"]["profile"] = str(args.profile) if args.profile else None
    result["settings"]["json"] = None
    phases: dict[str, list[dict[str, Any]]] = result["phases"]
    async with (
        running_receiver() as hooks,
        running_receiver() as am_hooks,
        scratch_database(args.database_url, prefix="vroegsignaal_bench_e2e") as url,
    ):
        database = database_of(url)
        say("• Building the world…")
        # A department for every signal: each opens an alert of its own.
        signals = sum(rate * (args.warmup + args.seconds) for rate in args.rates) * 1.02
        signals += args.backlog + args.slow_backlog
        departments = int(signals) + args.warmup_signals
        world = await build_world(url, hooks, args.providers, departments)
        result["settings"]["departments"] = departments
        await hooks.configure("standard", secrets=world.secrets)
        await am_hooks.configure("alertmanager")
        stream = Stream(world)
        # The service's and Alertmanager's logs stay there after the run, for a look.
        tmp = Path(tempfile.gettempdir()) / "vroegsignaal-e2e"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        say("• Starting vroegsignaal up and Alertmanager…")
        async with (
            running_services(url, world, Path(tmp), args.max_in_flight, args.topology) as (
                base,
                services,
            ),
            contextlib.AsyncExitStack() as stack,
        ):
            am: tuple[str, psutil.Process, str] | None = None
            if not args.no_alertmanager:
                am = await stack.enter_async_context(running_alertmanager(am_hooks, Path(tmp)))
                result["machine"]["alertmanager"] = am[2]
            parties = {
                "load": psutil.Process(),
                **{f"vroegsignaal:{name}": process for name, process in services.items()},
                "receiver": hooks.process,
                "am_receiver": am_hooks.process,
            }
            if am is not None:
                parties["alertmanager"] = am[1]
            cpu = Cpu(parties, database)
            vs = Sender("vroegsignaal", Connections(base), vroegsignaal_request, 202)
            senders = [vs]
            if am is not None:
                senders.append(
                    Sender(
                        "alertmanager",
                        Connections(am[0]),
                        alertmanager_request,
                        200,
                        registered=False,
                    )
                )
            receivers = {"vroegsignaal": hooks, "alertmanager": am_hooks}
            try:
                say("• Warming up…")
                await backlog_phase(vs, hooks, stream, cpu, count=args.warmup_signals)
                await deliveries_done(url)
                for rate in args.rates:
                    for sender in senders:
                        await checkpoint(url)
                        say(f"• {sender.name}: latency at {rate:g}/s…")
                        found = await latency_phase(
                            sender,
                            receivers[sender.name],
                            stream,
                            cpu,
                            rate=rate,
                            warmup=args.warmup,
                            seconds=args.seconds,
                        )
                        say(f"  {summary(found)}")
                        phases.setdefault(f"latency@{rate:g}", []).append(found)
                        if sender is vs:
                            await deliveries_done(url)
                for delay, key, count in (
                    (0.0, "fast", args.backlog),
                    (0.2, "slow", args.slow_backlog),
                ):
                    for sender in senders:
                        receiver = receivers[sender.name]
                        await receiver.configure(
                            "standard" if sender is vs else "alertmanager",
                            delay=delay,
                            secrets=world.secrets,
                        )
                        await checkpoint(url)
                        say(f"• {sender.name}: a backlog of {count}, {key} receiver…")
                        profile = (
                            args.profile / "service-fast-backlog.txt"
                            if args.profile and sender is vs and key == "fast"
                            else None
                        )
                        # The process that judges and notifies (`up`, or `notify`).
                        spied = services.get("up") or services["notify"]
                        async with py_spy(spied.pid, profile):
                            found = await backlog_phase(
                                sender,
                                receiver,
                                stream,
                                cpu,
                                count=count,
                                stages=(lambda ids: vroegsignaal_stages(url, ids))
                                if sender is vs
                                else None,
                            )
                        say(f"  {summary(found)}")
                        phases.setdefault(key, []).append(found)
                        if sender is vs:
                            await deliveries_done(url)
            finally:
                for sender in senders:
                    await sender.connections.aclose()
    result["aims"] = aims(result)
    return result


def summary(found: dict[str, Any]) -> str:
    if "latency_ms" in found:
        ms = found["latency_ms"]
        return (
            f"{found['achieved_rate']:g}/s achieved, p50 {ms['p50']} ms, p99 {ms['p99']} ms,"
            f" max {ms['max']} ms, {found['missing']} missing, cores {found['cpu_cores']},"
            f" {found['errors']} errors {found['first_error'][:200]}"
        )
    return (
        f"{found['alerts_per_s']:,.0f} alerts/s ({found['delivered']} in {found['seconds']} s,"
        f" posted after {found['posted_after_s']} s), cores {found['cpu_cores']}"
        + (f", stages {found['stages_done_after_s']}" if "stages_done_after_s" in found else "")
    )


def aims(result: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    by = {(k, r["system"]): r for k, rows in result["phases"].items() for r in rows}
    latency = by.get((f"latency@{AIM_RATE:g}", "vroegsignaal"))
    if latency:
        p99 = latency["latency_ms"]["p99"]
        found["latency_p99_ms"] = {"aim": AIMS["latency_p99_ms"], "measured": p99}
        found["latency_p99_ms"]["met"] = p99 < AIMS["latency_p99_ms"] and not latency["missing"]
    fast = by.get(("fast", "vroegsignaal"))
    if fast:
        rate = fast["alerts_per_s"]
        found["alerts_per_s"] = {"aim": AIMS["alerts_per_s"], "measured": rate}
        found["alerts_per_s"]["met"] = rate >= AIMS["alerts_per_s"]
    ratios: dict[str, float] = {}
    for key in (*(k for k in result["phases"] if k.startswith("latency@")), "fast", "slow"):
        ours, theirs = by.get((key, "vroegsignaal")), by.get((key, "alertmanager"))
        if ours and theirs:
            if key.startswith("latency@"):
                for p in ("p50", "p99"):
                    ratios[f"{key}_{p}"] = round(ours["latency_ms"][p] / theirs["latency_ms"][p], 2)
            else:
                ratios[f"{key}_alerts_per_s"] = round(
                    ours["alerts_per_s"] / theirs["alerts_per_s"], 3
                )
    found["vroegsignaal_over_alertmanager"] = ratios
    return found


def table(result: dict[str, Any]) -> str:
    lines = [
        "| phase | Vroegsignaal | Alertmanager | ratio (V / AM) |",
        "| --- | --- | --- | --- |",
    ]
    by = {(k, r["system"]): r for k, rows in result["phases"].items() for r in rows}
    ratios = result["aims"]["vroegsignaal_over_alertmanager"]

    def cell(row: dict[str, Any] | None) -> str:
        if row is None:
            return ""
        if "latency_ms" in row:
            ms = row["latency_ms"]
            return f"p50 {ms['p50']} / p90 {ms['p90']} / p99 {ms['p99']} / max {ms['max']} ms" + (
                f" ({row['missing']} missing)" if row["missing"] else ""
            )
        return f"{row['alerts_per_s']:,.0f} alerts/s ({row['seconds']} s)"

    rows = [
        (f"latency@{rate:g}", f"signal → webhook at {rate:g}/s", f"latency@{rate:g}_p99")
        for rate in result["settings"]["rates"]
    ]
    for key, label, ratio in (
        *rows,
        ("fast", "backlog, fast receiver", "fast_alerts_per_s"),
        ("slow", "backlog, receiver answers after 200 ms", "slow_alerts_per_s"),
    ):
        shown = ratios.get(ratio)
        lines.append(
            f"| {label} | {cell(by.get((key, 'vroegsignaal')))} |"
            f" {cell(by.get((key, 'alertmanager')))} | {'' if shown is None else shown} |"
        )
    lines.append("")
    for key in ("fast", "slow"):
        row = by.get((key, "vroegsignaal"))
        if row and "stages_done_after_s" in row:
            lines.append(f"{key}: stages done after (s): {row['stages_done_after_s']}")
    for key, value in result["aims"].items():
        if key != "vroegsignaal_over_alertmanager":
            lines.append(f"aim {key}: {value}")
    lines.append(f"load average at start: {result['machine']['load_average_at_start']}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL)
    parser.add_argument("--providers", type=int, default=20)
    parser.add_argument(
        "--warmup-signals", type=int, default=500, help="posted first, not measured"
    )
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[AIM_RATE, 20.0], help="open-loop signals/s"
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--slow-backlog", type=int, default=1000)
    parser.add_argument(
        "--max-in-flight", type=int, help="VROEGSIGNAAL_WEBHOOK_MAX_IN_FLIGHT (default: 4)"
    )
    parser.add_argument(
        "--topology",
        choices=("up", "processes"),
        default="up",
        help="`vroegsignaal up` in one process, or ingest, rules and notify as three (deploy/)",
    )
    parser.add_argument("--no-alertmanager", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="py-spy the service in phase 2 into DIR")
    parser.add_argument("--quick", action="store_true", help="a short run to check the script")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup_signals = 100
        args.seconds, args.backlog, args.slow_backlog = 4.0, 600, 200
        args.rates = [AIM_RATE]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:  # pragma: no cover - uvloop is a dependency
        result = asyncio.run(run(args))
    print(table(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        say(f"• Figures written to {args.json}")


if __name__ == "__main__":
    main()

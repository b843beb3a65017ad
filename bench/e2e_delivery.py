"""Webhook delivery throughput with httpx at concurrency 1, 10 and 50, against baselines.

    .venv/bin/python -m bench.e2e_delivery [--database-url URL] [--seconds 4] [--json PATH]
        [--concurrency 1 10 50] [--profile DIR]

httpx is the users' chosen client, and its throughput is known to fall as concurrency rises
(encode/httpx#3215). This measures, to one fast local receiver (`bench/e2e_receiver.py`, its own
process, answering `204` at once), calls per second at each concurrency, in this order:

1. `raw`: the receiver alone, driven by a bare asyncio client (no HTTP library): what the
   receiver and the loopback can take. Every other figure is a ratio of it.
2. `httpx, one client`: bare `httpx.AsyncClient` (a pool as large as the concurrency), the same
   signed body and headers, `concurrency` tasks sending in a closed loop.
3. `httpx, client per connection`: one `AsyncClient` per task (each a pool of one connection),
   to show what the shared pool costs.
4. `post_webhook`: the real delivery path's one attempt (`services/notify/deliveries/webhook.py`:
   the SSRF check of the URL, the Standard Webhooks signature, the per-host `EndpointClients`,
   connect-by-checked-IP, the drained answer), `concurrency` tasks in a closed loop.
5. `worker`: the real `DeliveryWorker` (`worker.py`) draining a backlog of `--backlog` queued
   deliveries in PostgreSQL to one endpoint: claim (the queue's SQL), decrypt the secret, send,
   record the attempt, claim again. The endpoint's limit of calls in flight
   (`VROEGSIGNAAL_WEBHOOK_MAX_IN_FLIGHT`, default 4) is set to the concurrency for this phase
   (the worker's own capacity is 64 calls), and every delivery is about an alert of its own, so
   the per-alert order holds none back. The clock runs from the worker's start to the last
   delivery recorded as succeeded.

Phases 1-4 run for `--seconds` each after a second of warm-up at the same concurrency. Each
reports calls/s, the ratio to `raw`, and the CPU time per call of this process (the sender) and
of the receiver; phase 5 also PostgreSQL's. `--profile DIR` writes a cProfile of this process for
phases 2, 4 and 5 at the highest concurrency (what the sender spends its time on).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.metadata
import json
import os
import platform
import pstats
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from cryptography.fernet import Fernet
from sqlalchemy import insert

from bench.e2e_receiver import RunningReceiver, raw_load, raw_request, running_receiver
from services.core.db.scratch import connect_args, scratch_database

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps(
    {
        "type": "alert.updated",
        "timestamp": "2026-11-30T08:00:00Z",
        "data": {
            "alert": {"id": str(uuid.uuid4()), "department": "FACT-001", "level": "watch"},
            "previous_level": "watch",
            "signal_id": str(uuid.uuid4()),
            "reasons": [{"rule_id": "staffing.temp_staff_high", "text": "x" * 300}],
        },
    },
    separators=(",", ":"),
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def postgres_cpu() -> float:
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                total += cpu_seconds(process)
    return total


@dataclass
class Result:
    phase: str
    concurrency: int
    calls: int
    seconds: float
    sender_cpu: float
    receiver_cpu: float
    postgres_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        per_call = 1000 / self.calls if self.calls else 0.0
        return {
            "phase": self.phase,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "calls_per_s": round(self.rate, 1),
            "sender_cpu_ms_per_call": round(self.sender_cpu * per_call, 3),
            "receiver_cpu_ms_per_call": round(self.receiver_cpu * per_call, 3),
            "postgres_cpu_ms_per_call": round(self.postgres_cpu * per_call, 3),
            **self.extra,
        }


class Meter:
    """CPU of the sender (this process), the receiver and PostgreSQL around a phase."""

    def __init__(self, receiver: RunningReceiver) -> None:
        self._me = psutil.Process()
        self._receiver = receiver.process

    def start(self) -> None:
        self._start = (cpu_seconds(self._me), cpu_seconds(self._receiver), postgres_cpu())
        self._clock = time.perf_counter()

    def stop(self, phase: str, concurrency: int, calls: int, seconds: float) -> Result:
        me, receiver, pg = cpu_seconds(self._me), cpu_seconds(self._receiver), postgres_cpu()
        return Result(
            phase,
            concurrency,
            calls,
            seconds,
            me - self._start[0],
            receiver - self._start[1],
            pg - self._start[2],
        )


async def closed_loop(
    send: Callable[[], Awaitable[None]], concurrency: int, seconds: float
) -> tuple[int, float]:
    """`concurrency` tasks calling `send` until `seconds` have passed; (calls, seconds)."""
    stop_at = time.perf_counter() + seconds
    done = 0

    async def task() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await send()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    return done, time.perf_counter() - started


def signed(message_id: str) -> dict[str, str]:
    from services.notify.deliveries.signing import signed_headers

    return signed_headers(SECRET, message_id=message_id, body=BODY, at=datetime.now(UTC))


class Profiler:
    """cProfile around chosen phases (`--profile DIR`), written as text, top functions first."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory

    @contextlib.contextmanager
    def phase(self, name: str, wanted: bool) -> Any:
        if self._directory is None or not wanted:
            yield
            return
        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            out = self._directory / f"{name}.txt"
            with out.open("w") as stream:
                stats = pstats.Stats(profile, stream=stream)
                stats.sort_stats("tottime").print_stats(40)
                stats.sort_stats("cumulative").print_stats(60)
            say(f"  profile written to {out}")


# --- phases ----------------------------------------------------------------------------------


async def phase_raw(receiver: RunningReceiver, meter: Meter, c: int, seconds: float) -> Result:
    headers = list(signed(str(uuid.uuid4())).items())
    request = raw_request("/hook", BODY.encode(), headers)
    await raw_load(receiver.port, request, concurrency=c, seconds=1.0)
    meter.start()
    calls, took = await raw_load(receiver.port, request, concurrency=c, seconds=seconds)
    return meter.stop("raw", c, calls, took)


async def phase_httpx(
    receiver: RunningReceiver, meter: Meter, c: int, seconds: float, *, per_connection: bool
) -> Result:
    url = f"{receiver.base}/hook"
    limits = httpx.Limits(max_connections=1 if per_connection else c, max_keepalive_connections=c)
    clients = [
        httpx.AsyncClient(limits=limits, timeout=10) for _ in range(c if per_connection else 1)
    ]
    free = list(clients)
    content = BODY.encode()

    async def send() -> None:
        client = free.pop() if per_connection else clients[0]
        try:
            answer = await client.post(url, content=content, headers=signed(str(uuid.uuid4())))
            if answer.status_code != 204:
                raise RuntimeError(f"the receiver answered {answer.status_code}")
        finally:
            if per_connection:
                free.append(client)

    try:
        await closed_loop(send, c, 1.0)
        meter.start()
        calls, took = await closed_loop(send, c, seconds)
        name = "httpx, client per connection" if per_connection else "httpx, one client"
        return meter.stop(name, c, calls, took)
    finally:
        for client in clients:
            await client.aclose()


async def phase_post_webhook(
    receiver: RunningReceiver, meter: Meter, c: int, seconds: float, *, host: str = "127.0.0.1"
) -> Result:
    from services.notify.deliveries.ssrf import system_resolver
    from services.notify.deliveries.webhook import EndpointClients, post_webhook

    clients = EndpointClients(timeout=10.0)
    url = f"http://{host}:{receiver.port}/hook"

    async def send() -> None:
        outcome = await post_webhook(
            clients,
            url=url,
            secret=SECRET,
            message_id=str(uuid.uuid4()),
            body=BODY,
            seconds=10.0,
            allow_private=True,
            resolver=system_resolver,
        )
        if not outcome.ok:
            raise RuntimeError(f"post_webhook failed: {outcome.error}")

    try:
        await closed_loop(send, c, 1.0)
        meter.start()
        calls, took = await closed_loop(send, c, seconds)
        name = "post_webhook" if host == "127.0.0.1" else f"post_webhook, by name ({host})"
        return meter.stop(name, c, calls, took)
    finally:
        await clients.aclose()


@dataclass
class Queue:
    """A database with one provider and one webhook endpoint on the receiver."""

    url: str
    organisation_id: uuid.UUID
    subscription_id: uuid.UUID
    key: str


async def make_queue(url: str, receiver: RunningReceiver) -> Queue:
    from services.core.admin.organisations import OrganisationSpec, add_organisation
    from services.core.db.engine import make_engine, make_sessions
    from services.core.db.models import WebhookSubscription
    from services.core.domain import OrgKind
    from services.notify.deliveries.secrets import SecretBox

    key = Fernet.generate_key().decode()
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            provider = await add_organisation(
                session, OrganisationSpec(OrgKind.PROVIDER, "Bench GGZ", agb="73990001")
            )
            subscription = WebhookSubscription(
                organisation_id=provider.id,
                url=f"{receiver.base}/hook",
                event_types=["alert.updated"],
                description="bench",
                secret_encrypted=SecretBox([key.encode()]).encrypt(SECRET),
                active=True,
            )
            session.add(subscription)
            await session.flush()
            return Queue(url, provider.id, subscription.id, key)
    finally:
        await engine.dispose()


async def fill_queue(queue: Queue, count: int) -> None:
    """`count` pending webhook deliveries, each about an alert of its own (no order among them)."""
    from services.core.db.engine import make_engine, make_sessions
    from services.core.db.models import Delivery

    payload = json.loads(BODY)
    rows = [
        {
            "id": uuid.uuid4(),
            "channel": "webhook",
            "organisation_id": queue.organisation_id,
            "subscription_id": queue.subscription_id,
            "event_id": uuid.uuid4(),
            "event_type": "alert.updated",
            "payload": payload,
            "ordering_key": f"alert:{uuid.uuid4()}",
        }
        for _ in range(count)
    ]
    engine = make_engine(queue.url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            for start in range(0, count, 1000):
                await session.execute(insert(Delivery), rows[start : start + 1000])
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(**connect_args(queue.url))
    try:
        await connection.execute("VACUUM ANALYZE deliveries")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def phase_worker(
    receiver: RunningReceiver, meter: Meter, queue: Queue, c: int, count: int
) -> Result:
    from services.core.config import Settings
    from services.core.db.engine import make_engine, make_sessions
    from services.notify.deliveries.worker import DeliveryWorker

    await fill_queue(queue, count)
    settings = Settings(
        secret_key=queue.key,
        webhook_allow_private=True,
        webhook_max_in_flight=c,
        database_url=queue.url,
    )
    engine = make_engine(queue.url)
    watcher = await asyncpg.connect(**connect_args(queue.url))
    worker = DeliveryWorker(settings, make_sessions(engine))
    try:
        meter.start()
        started = time.perf_counter()
        await worker.start()
        while True:
            done = await watcher.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
            )
            if done >= count:
                break
            await asyncio.sleep(0.05)
        took = time.perf_counter() - started
        result = meter.stop("worker", c, count, took)
        await worker.stop()
        await watcher.execute("DELETE FROM delivery_attempts; DELETE FROM deliveries")
        return result
    finally:
        await worker.stop()
        await watcher.close()
        await engine.dispose()


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("httpx", "httpcore", "h11", "anyio", "uvloop", "sqlalchemy", "asyncpg"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
        "event_loop": "uvloop",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: list[Result] = []
    profiler = Profiler(args.profile)
    top = max(args.concurrency)

    def show(result: Result) -> None:
        results.append(result)
        say(
            f"  {result.phase:<38} c={result.concurrency:<3} {result.rate:9,.0f} calls/s"
            f"  sender {result.as_dict()['sender_cpu_ms_per_call']:.3f} ms CPU/call"
        )

    async with (
        running_receiver() as receiver,
        scratch_database(args.database_url, prefix="vroegsignaal_bench_delivery") as url,
    ):
        await receiver.configure("count")
        meter = Meter(receiver)
        queue = await make_queue(url, receiver)
        for c in args.concurrency:
            say(f"• concurrency {c}")
            show(await phase_raw(receiver, meter, c, args.seconds))
            with profiler.phase(f"httpx-one-client-c{c}", c == top):
                show(await phase_httpx(receiver, meter, c, args.seconds, per_connection=False))
            show(await phase_httpx(receiver, meter, c, args.seconds, per_connection=True))
            with profiler.phase(f"post-webhook-c{c}", c == top):
                show(await phase_post_webhook(receiver, meter, c, args.seconds))
            if c == top and args.by_name:
                show(await phase_post_webhook(receiver, meter, c, args.seconds, host=args.by_name))
            count = args.backlog if c > 1 else max(200, args.backlog // 4)
            with profiler.phase(f"worker-c{c}", c == top):
                show(await phase_worker(receiver, meter, queue, c, count))
    raw = {r.concurrency: r.rate for r in results if r.phase == "raw"}
    rows = []
    for result in results:
        row = result.as_dict()
        row["vs_raw"] = round(result.rate / raw[result.concurrency], 3)
        rows.append(row)
    return {
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "backlog": args.backlog,
            "concurrency": args.concurrency,
        },
        "results": rows,
    }


def table(result: dict[str, Any]) -> str:
    levels = result["settings"]["concurrency"]
    phases: list[str] = []
    for row in result["results"]:
        if row["phase"] not in phases:
            phases.append(row["phase"])
    found = {(r["phase"], r["concurrency"]): r for r in result["results"]}
    head = "| phase | " + " | ".join(f"c={c}: calls/s (vs raw), sender CPU" for c in levels)
    lines = [head + " |", "| --- |" + " --- |" * len(levels)]
    for phase in phases:
        cells = []
        for c in levels:
            row = found.get((phase, c))
            cells.append(
                ""
                if row is None
                else f"{row['calls_per_s']:,.0f} ({row['vs_raw']:.0%}),"
                f" {row['sender_cpu_ms_per_call']:.2f} ms"
            )
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    load = result["machine"]["load_average_at_start"]
    lines.append(f"\nload average at start: {load}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e_delivery", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--backlog", type=int, default=3000, help="deliveries for the worker")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--by-name",
        default="localhost",
        help="also run post_webhook at the top concurrency to this host name (DNS lookup per"
        " call, as for a registered name); empty to skip",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="cProfile the sender into DIR")
    args = parser.parse_args(argv)
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
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        say(f"• Figures written to {args.json}")


if __name__ == "__main__":
    main()

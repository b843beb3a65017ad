"""Soak: a realistic mix against the whole service for a while, with exact bookkeeping.

    .venv/bin/python -m bench.soak [--seconds 60] [--providers 10] [--insurers 3]
        [--server-url URL] [--json PATH]

One app with everything (ingest, rules, notifier, delivery worker) served by uvicorn on a real
socket, on a fresh database of its own on `--server-url` (default: $VROEGSIGNAAL_TEST_DATABASE_URL),
PostgreSQL bus. The mix, for `--seconds`:

- `--providers` care providers (4 FACT teams each in IJssel-Vecht) post batches of 1-20 staffing
  signals with their own signal ids, at random vacancy rates (alerts open, worsen and resolve);
- `--insurers` insurer users of the coordinating insurer read the alert list, open an alert,
  and acknowledge or comment on it (409 on a race is an answer, not an error);
- three webhook receivers subscribed to the alerts, whose speed changes every two seconds
  (0-1.5 s per call).

Afterwards it waits for the pipeline to drain and checks: every signal id acknowledged with
202 is stored exactly once, and no webhook-id reached a receiver twice with different content.
It reports throughput, latency percentiles per operation, and errors (5xx, no answer) per
operation. `tests/reliability/test_soak_short.py` runs it for 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from services import ingest
from services.core.admin.credentials import create_api_key, role_for
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import (
    OrganisationSpec,
    add_organisation,
    resolve_organisation,
)
from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import Alert, OutboxEvent, ProcessedEvent, Signal
from services.core.db.scratch import scratch_database
from services.core.domain import OrgKind
from services.core.http.app import create_app
from services.core.reference import seed_reference_data
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.ruleset import load_ruleset
from tests.support.live_server import LiveServer
from tests.support.receivers import WebhookReceiver

TEAMS_PER_PROVIDER = 4


@dataclass
class Operation:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer

    def summary(self, seconds: float) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)

        def pct(p: float) -> float:
            return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1) if ms else 0.0

        return {
            "count": len(ms),
            "per_second": round(len(ms) / seconds, 1),
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": round(ms[-1], 1) if ms else 0.0,
            "mean_ms": round(statistics.fmean(ms), 1) if ms else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": sum(n for s, n in self.statuses.items() if s >= 500),
            "no_answer": self.statuses.get(0, 0),
        }


@dataclass
class Report:
    seconds: float
    providers: int
    insurers: int
    operations: dict[str, dict[str, Any]]
    signals_acknowledged: int
    signals_stored: int
    signals_lost: int
    signals_doubled: int
    alerts: int
    webhooks_received: int
    webhook_ids_repeated: int
    drained_in_seconds: float

    @property
    def server_errors(self) -> int:
        return sum(int(op["server_errors"]) for op in self.operations.values())

    @property
    def no_answer(self) -> int:
        return sum(int(op["no_answer"]) for op in self.operations.values())


@dataclass
class Stats:
    ops: defaultdict[str, Operation] = field(default_factory=lambda: defaultdict(Operation))
    acknowledged: set[str] = field(default_factory=set)

    async def call(
        self, name: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError:
            self.ops[name].statuses[0] += 1
            return None
        self.ops[name].latencies.append(time.perf_counter() - started)
        self.ops[name].statuses[response.status_code] += 1
        return response


async def _world(url: str, providers: int, insurers: int) -> dict[str, Any]:
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            await seed_reference_data(session)
            await add_organisation(
                session,
                OrganisationSpec(
                    OrgKind.INSURER, "Zilveren Kruis", uzovi="9901", coordinates=("ijssel-vecht",)
                ),
            )
            world: dict[str, Any] = {"providers": [], "insurer_keys": []}
            for p in range(providers):
                agb = f"7399{p + 1:04d}"
                await add_organisation(
                    session, OrganisationSpec(OrgKind.PROVIDER, f"Aanbieder {p + 1}", agb=agb)
                )
                codes = []
                for t in range(TEAMS_PER_PROVIDER):
                    code = f"FACT-{p:02d}-{t}"
                    await add_department(
                        session,
                        DepartmentSpec(
                            agb, code, f"FACT {p}.{t}", "outreach.fact", "ijssel-vecht", None, 40
                        ),
                    )
                    codes.append(code)
                organisation = await resolve_organisation(session, agb)
                _, key = await create_api_key(
                    session, organisation=organisation, role=role_for(organisation, None)
                )
                world["providers"].append({"key": key, "departments": codes})
            insurer = await resolve_organisation(session, "9901")
            for _ in range(insurers + 1):  # one more for the subscriptions
                _, key = await create_api_key(
                    session, organisation=insurer, role=role_for(insurer, None)
                )
                world["insurer_keys"].append(key)
        return world
    finally:
        await engine.dispose()


def _app(url: str) -> Any:
    config = Settings(
        rate_limit_per_second=1e6,
        rate_limit_burst=1e6,
        secret_key=Fernet.generate_key().decode(),
        webhook_allow_private=True,
    )
    notify = notify_service(config)
    app = create_app(
        config,
        url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(load_ruleset()), *notify.subscriptions],
        background=[notify.deliveries],
    )
    return notify.install(app)


def _signal(code: str, rng: random.Random) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "department": code,
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(minutes=rng.uniform(1, 600))).isoformat(),
        "data": {"fte_budgeted": 20.0, "vacancies_fte": round(rng.choice([0, 0.5, 2.4, 4.5]), 1)},
    }


async def _provider(
    base: str, provider: dict[str, Any], stats: Stats, until: float, rng: random.Random
) -> None:
    headers = {"Authorization": f"Bearer {provider['key']}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() < until:
            batch = [
                _signal(rng.choice(provider["departments"]), rng) for _ in range(rng.randint(1, 20))
            ]
            response = await stats.call(
                "post_signals", client, "POST", "/v1/signals",
                json={"signals": batch}, headers=headers,
            )  # fmt: skip
            if response is not None and response.status_code == 202:
                stats.acknowledged.update(s["id"] for s in batch)
            await asyncio.sleep(rng.uniform(0.05, 0.3))


async def _insurer(base: str, key: str, stats: Stats, until: float, rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() < until:
            listed = await stats.call(
                "list_alerts", client, "GET", "/v1/alerts?status=open", headers=headers
            )
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            if listed is None or listed.status_code != 200:
                continue
            body = listed.json()
            items = body.get("items", body) if isinstance(body, dict) else body
            if not items:
                continue
            alert = rng.choice(items)["id"]
            await stats.call("get_alert", client, "GET", f"/v1/alerts/{alert}", headers=headers)
            action = rng.choice(["acknowledge", "comment", "comment"])
            await stats.call(
                action, client, "POST", f"/v1/alerts/{alert}/{action}",
                json={"note": "We bellen de aanbieder vandaag."}, headers=headers,
            )  # fmt: skip
            await asyncio.sleep(rng.uniform(0.2, 1.0))


async def _vary(receivers: list[WebhookReceiver], until: float, rng: random.Random) -> None:
    while time.monotonic() < until:
        for receiver in receivers:
            receiver.delay = rng.choice([0.0, 0.05, 0.3, 1.5])
        await asyncio.sleep(2)


async def _drain(url: str, within: float) -> float:
    """Seconds until every outbox event was applied by both groups (or `within`)."""
    engine = make_engine(url, pool_size=1)
    started = time.monotonic()
    try:
        sessions = make_sessions(engine)
        while time.monotonic() - started < within:
            async with sessions() as session:
                events = int(
                    await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
                )
                applied = int(
                    await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
                )
            # every event goes to rules or notify at least; settled when nothing moves
            await asyncio.sleep(1)
            async with sessions() as session:
                again = int(
                    await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
                )
            if again == applied and events > 0:
                break
        return time.monotonic() - started
    finally:
        await engine.dispose()


async def soak(server_url: str, seconds: float, providers: int, insurers: int) -> Report:
    rng = random.Random(20261)  # noqa: S311 (a reproducible mix, not a secret)
    async with scratch_database(server_url, prefix="vroegsignaal_soak") as url:
        world = await _world(url, providers, insurers)
        stats = Stats()
        with LiveServer(_app(url)) as server:
            receivers = [WebhookReceiver(), WebhookReceiver(), WebhookReceiver()]
            for receiver in receivers:
                await receiver.__aenter__()
            try:
                async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
                    for receiver in receivers:
                        made = await client.post(
                            "/v1/subscriptions",
                            json={
                                "url": receiver.url,
                                "event_types": ["alert.opened"],
                                "description": "soak",
                            },
                            headers={"Authorization": f"Bearer {world['insurer_keys'][-1]}"},
                        )
                        made.raise_for_status()
                        receiver.secret = made.json()["secret"]
                started = time.monotonic()
                until = started + seconds
                await asyncio.gather(
                    *(_provider(server.base, p, stats, until, rng) for p in world["providers"]),
                    *(
                        _insurer(server.base, key, stats, until, rng)
                        for key in world["insurer_keys"][:-1]
                    ),
                    _vary(receivers, until, rng),
                )
                elapsed = time.monotonic() - started
                for receiver in receivers:
                    receiver.delay = 0.0
                drained = await _drain(url, within=60)
                await asyncio.sleep(3)  # the deliveries of the last alerts
            finally:
                for receiver in receivers:
                    await receiver.__aexit__(None, None, None)
        engine = make_engine(url, pool_size=1)
        try:
            async with make_sessions(engine)() as session:
                ids = Counter(str(i) for i in (await session.execute(select(Signal.id))).scalars())
                alerts = int(await session.scalar(select(func.count()).select_from(Alert)) or 0)
        finally:
            await engine.dispose()
    repeated = 0
    for receiver in receivers:
        bodies: dict[str, bytes] = {}
        for call in receiver.accepted:
            if call.webhook_id in bodies:
                repeated += 1
            bodies[call.webhook_id] = call.body
    return Report(
        seconds=round(elapsed, 1),
        providers=providers,
        insurers=insurers,
        operations={name: op.summary(elapsed) for name, op in sorted(stats.ops.items())},
        signals_acknowledged=len(stats.acknowledged),
        signals_stored=sum(ids.values()),
        signals_lost=len(stats.acknowledged - set(ids)),
        signals_doubled=sum(1 for n in ids.values() if n > 1),
        alerts=alerts,
        webhooks_received=sum(len(r.accepted) for r in receivers),
        webhook_ids_repeated=repeated,
        drained_in_seconds=round(drained, 1),
    )


def _print(report: Report) -> None:
    print(f"soak: {report.seconds} s, {report.providers} providers, {report.insurers} insurers")
    print(f"{'operation':<14}{'n':>7}{'/s':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  statuses")
    for name, op in report.operations.items():
        print(
            f"{name:<14}{op['count']:>7}{op['per_second']:>8}{op['p50_ms']:>8}"
            f"{op['p95_ms']:>8}{op['p99_ms']:>8}{op['max_ms']:>8}  {op['statuses']}"
        )
    print(
        f"signals: {report.signals_acknowledged} acknowledged, {report.signals_stored} stored,"
        f" {report.signals_lost} lost, {report.signals_doubled} doubled;"
        f" alerts {report.alerts}; webhooks {report.webhooks_received}"
        f" (repeated webhook-ids {report.webhook_ids_repeated});"
        f" drained in {report.drained_in_seconds} s;"
        f" 5xx {report.server_errors}, no answer {report.no_answer}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--providers", type=int, default=10)
    parser.add_argument("--insurers", type=int, default=3)
    parser.add_argument(
        "--server-url", default=os.environ.get("VROEGSIGNAAL_TEST_DATABASE_URL", "")
    )
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if not args.server_url:
        parser.error("--server-url or VROEGSIGNAAL_TEST_DATABASE_URL is required")
    report = asyncio.run(soak(args.server_url, args.seconds, args.providers, args.insurers))
    _print(report)
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(asdict(report), out, indent=2)
    failed = report.server_errors or report.signals_lost or report.signals_doubled
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Dashboard benchmark: server time of the main pages with 5,000 departments and 20,000 alerts.

    .venv/bin/python -m bench.dashboard [--database-url URL] [--requests 200] [--json PATH]

One run, one database: the script makes a database of its own on the server (default the local
server at 127.0.0.1:5432), migrates it, seeds the reference data, loads a world with COPY and
drops the database at the end. The world: 500 providers with 5,000 departments spread over the
42 regions and 17 care types; 20,000 alerts (one open alert for 4,000 of the departments and
16,000 resolved ones before them, levels and steps mixed), three timeline entries each, the
coverage cells of every region × care type, and six monthly staffing reports per department
(30,000 signals) so that an alert page draws its figures from a real history. Ten insurers
coordinate the regions (four or five each).

The app is the notifier's (`create_app` with the notifier's routers, its runtime and
`install_dashboard`), driven in-process through `httpx.ASGITransport`: the time measured is the
server's own work plus a fraction of a millisecond of client, with no network and no other
process in between. Requests go one at a time (closed loop, no queueing), after a warm-up of 20
each, as two people: an insurer (4–5 regions) and the governance board (everything, the widest
scope). The pages:

- `GET /healthz`: the baseline (the same stack with no database work).
- `GET /`: the overview (coverage heat map, open alerts by level and step, the national table,
  the newest changes).
- `GET /alerts?level=threatened&status=open&sort=level`: a filtered, sorted list, first page.
- `GET /alerts?cluster=acute&page=3`: another filter, a later page.
- `GET /alerts/{id}`: an alert page, a different visible alert each time (its charts are separate
  image requests and not part of this figure; one is measured on its own).
- `GET /alerts/{id}/charts/0.svg`: one chart drawn (matplotlib), uncached: each alert once.

Every page view writes its audit rows, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from bench import worlds
from services.core.admin.credentials import add_user
from services.core.config import Settings
from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import CareType, Organisation, Region
from services.core.domain import OrgKind
from services.core.http.app import create_app
from services.notify.dashboard import install_dashboard
from services.notify.service import notify_service

PROVIDERS = 500
DEPARTMENTS = 5_000
OPEN_ALERTS = 4_000
ALERTS = 20_000
INSURERS = 10
PASSWORD = "benchmark wachtwoord"  # noqa: S105 (a throw-away database's user)
LEVELS = ("watch", "threatened", "critical")
STEPS = ("provider", "regional_table", "national_table")
REASON = {
    **worlds.VACANCY_REASON,
    "figures": {"staffing.vacancy_pct": 16.0, "staffing.vacancies_fte": 3.2},
}


async def load_world(url: str, rng: random.Random) -> dict[str, Any]:
    """The organisations, departments, alerts, timelines, coverage and signals, by COPY."""
    async with worlds.seeded(url) as session:
        regions = [(r.id, r.code) for r in await session.scalars(select(Region))]
        care_types = [c.code for c in await session.scalars(select(CareType))]
    now = datetime.now(UTC)
    async with worlds.copying(url) as connection:
        providers = await worlds.copy_providers(connection, PROVIDERS)
        insurers = [(uuid.uuid4(), f"Verzekeraar {n}", f"{9100 + n}") for n in range(INSURERS)]
        await connection.copy_records_to_table(
            "organisations",
            records=[(i, "insurer", name, uzovi) for i, name, uzovi in insurers],
            columns=["id", "kind", "name", "uzovi_code"],
        )
        await connection.copy_records_to_table(
            "insurer_regions",
            records=[(insurers[n % INSURERS][0], rid) for n, (rid, _) in enumerate(regions)],
            columns=["insurer_id", "region_id"],
        )
        departments = [
            worlds.department(
                rng,
                n,
                provider_id=providers[rng.randrange(PROVIDERS)].id,
                care_type=care_types[rng.randrange(len(care_types))],
                region_id=regions[n % len(regions)][0],
            )
            for n in range(DEPARTMENTS)
        ]
        await worlds.copy_departments(connection, departments)
        signals, signal_of = [], {}
        for department in departments:
            for month in range(6, 0, -1):
                signal_id = uuid.uuid4()
                vacancies = round(rng.uniform(0.5, 4.0), 1)
                when = now - timedelta(days=30 * month)
                data = {"fte_budgeted": 20.0, "vacancies_fte": vacancies}
                signals.append(worlds.staffing_report(signal_id, department, when, data))
                signal_of[department.id] = signal_id
        await worlds.copy_signals(connection, signals)
        alerts, events = [], []
        per_department = ALERTS // DEPARTMENTS
        for index, department in enumerate(departments):
            for k in range(per_department):
                is_open = k == per_department - 1 and index < OPEN_ALERTS
                opened = now - timedelta(days=rng.uniform(1, 365))
                level = rng.choice(LEVELS)
                step = rng.choice(STEPS)
                alert_id = uuid.uuid4()
                reason = {**REASON, "level": level, "signal_ids": [str(signal_of[department.id])]}
                resolved = None if is_open else opened + timedelta(days=rng.uniform(1, 30))
                alerts.append(
                    (alert_id, "department", department.id, department.region_id,
                     department.care_type, level, "open" if is_open else "resolved", step,
                     json.dumps([reason]), opened, resolved, "manual" if resolved else None,
                     "2026.11.1", opened)
                )  # fmt: skip
                for offset, kind in enumerate(("opened", "updated", "escalated")):
                    events.append((alert_id, kind, opened + timedelta(minutes=offset), level, step))
        await worlds.copy_alerts(connection, alerts, extra_columns=["escalated_at"])
        await connection.copy_records_to_table(
            "alert_events",
            records=events,
            columns=["alert_id", "type", "at", "level", "escalation"],
        )
        cells = []
        for region_id, _ in regions:
            for care_type in care_types:
                members = [
                    d for d in departments if d.region_id == region_id and d.care_type == care_type
                ]
                at_risk = [d for d in members if rng.random() < 0.2]
                cells.append(
                    (region_id, care_type, len(members), len(at_risk), len(at_risk) // 3,
                     1 if members and len(at_risk) == len(members) else 0,
                     sum(d.capacity for d in members), sum(d.capacity for d in at_risk))
                )  # fmt: skip
        await connection.copy_records_to_table(
            "regional_coverage",
            records=cells,
            columns=[
                "region_id",
                "care_type_code",
                "departments_active",
                "threatened",
                "critical",
                "no_alternative",
                "capacity_total",
                "capacity_at_risk",
            ],
        )
    engine = make_engine(url, pool_size=2)
    async with make_sessions(engine)() as session, session.begin():
        for ref, email in ((insurers[0][0], "inkoop@bench.test"), (None, "bo@bench.test")):
            query = (
                select(Organisation).where(Organisation.id == ref)
                if ref
                else select(Organisation).where(Organisation.kind == OrgKind.GOVERNANCE)
            )
            organisation = (await session.execute(query)).scalar_one()
            await add_user(session, organisation=organisation, email=email, password=PASSWORD)
    await engine.dispose()
    return {
        "regions": len(regions),
        "providers": PROVIDERS,
        "departments": len(departments),
        "alerts": len(alerts),
        "open_alerts": OPEN_ALERTS,
        "timeline_entries": len(events),
        "signals": len(signals),
        "coverage_cells": len(cells),
        "alert_ids": [a[0] for a in alerts],
        "insurer_regions": {rid for n, (rid, _) in enumerate(regions) if n % INSURERS == 0},
        "region_of": {a[0]: a[3] for a in alerts},
    }


def build_app(url: str) -> FastAPI:
    settings = Settings(
        database_url=url, rate_limit_per_second=1_000_000, rate_limit_burst=1_000_000
    )
    notify = notify_service(settings)
    app = create_app(settings, url, routers=notify.routers)
    notify.install(app)
    install_dashboard(app, settings, secret="bench" * 8)
    return app


async def log_in(client: httpx.AsyncClient, email: str) -> None:
    form = await client.get("/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/"}
    )
    assert done.status_code == 303, done.text


async def timed(
    count: int, request: Callable[[int], Awaitable[httpx.Response]]
) -> dict[str, float]:
    """Milliseconds per request over `count` requests one after another (after a warm-up)."""
    for n in range(20):
        answer = await request(n)
        assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    samples = []
    for n in range(count):
        started = time.perf_counter()
        answer = await request(20 + n)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p95": samples[int(0.95 * (len(samples) - 1))],
        "p99": samples[int(0.99 * (len(samples) - 1))],
        "max": samples[-1],
    }


async def run(database_url: str, requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    async with scratch.scratch_database(database_url, prefix="vroegsignaal_bench") as url:
        started = time.perf_counter()
        world = await load_world(url, rng)
        load_seconds = time.perf_counter() - started
        app = build_app(url)
        results: dict[str, dict[str, dict[str, float]]] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            for who, email in (("insurer", "inkoop@bench.test"), ("governance", "bo@bench.test")):
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                    await log_in(client, email)
                    visible = [
                        a
                        for a in world["alert_ids"]
                        if who == "governance" or world["region_of"][a] in world["insurer_regions"]
                    ]
                    rng.shuffle(visible)

                    def get(path: str) -> Callable[[int], Awaitable[httpx.Response]]:
                        return lambda _: client.get(path)

                    def detail(ids: list[uuid.UUID]) -> Callable[[int], Awaitable[httpx.Response]]:
                        return lambda n: client.get(f"/alerts/{ids[n % len(ids)]}")

                    def chart(ids: list[uuid.UUID]) -> Callable[[int], Awaitable[httpx.Response]]:
                        return lambda n: client.get(
                            f"/alerts/{ids[-1 - n % len(ids)]}/charts/0.svg"
                        )

                    pages: dict[str, Callable[[int], Awaitable[httpx.Response]]] = {
                        "GET /healthz (baseline)": get("/healthz"),
                        "GET / (overview)": get("/"),
                        "GET /alerts filtered, sorted": get(
                            "/alerts?level=threatened&status=open&sort=level"
                        ),
                        "GET /alerts other filter, page 3": get("/alerts?cluster=acute&page=3"),
                        "GET /alerts/{id} (detail)": detail(visible),
                        "GET /alerts/{id}/charts/0.svg (chart, drawn)": chart(visible),
                    }
                    results[who] = {}
                    for name, request in pages.items():
                        count = requests if "chart" not in name else max(20, requests // 4)
                        results[who][name] = await timed(count, request)
    return {
        "world": {k: v for k, v in world.items() if isinstance(v, int)},
        "load_seconds": round(load_seconds, 1),
        "requests": requests,
        "results": results,
    }


def table(report: dict[str, Any]) -> str:
    lines = []
    for who, pages in report["results"].items():
        lines.append(f"\n{who}\n")
        lines.append("| page | p50 ms | p95 ms | p99 ms | max ms |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        for name, figures in pages.items():
            lines.append(
                f"| {name} | {figures['p50']:.1f} | {figures['p95']:.1f} | {figures['p99']:.1f}"
                f" | {figures['max']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=worlds.DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    report = asyncio.run(run(args.database_url, args.requests, args.seed))
    print(json.dumps(report["world"]), f"loaded in {report['load_seconds']} s")
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

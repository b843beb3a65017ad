"""The notifier alone on PostgreSQL: alert events placed on the ladder and announced per second
by the consumer group `notify`, against a no-op handler on the same machinery in the same run.

    .venv/bin/python -m bench.notify [--alerts 5000] [--batch 500] [--server-url URL]
        [--explain] [--json PATH] [--quick]

In a database of its own on the server (default: the local one at 127.0.0.1:5432), dropped at
the end:

1. **The world.** Reference data (42 regions with their regional tables, the national table);
   100 providers and 8 insurers that coordinate the regions between them; one webhook endpoint
   per provider, insurer and table, subscribed to every alert type; two dashboard users per
   regional table and three at the national table (the default policy e-mails the tables); and a
   department with an open alert at the provider's step for every alert event of the run (each
   phase its own departments), levels as an engine leaves them: 60 % watch, 30 % threatened, 10 %
   critical, a twentieth without an alternative, supra-regional care as often as the care types
   give it, and 5 % of the departments silenced.
2. **Events.** One `alert.opened` per alert, as the rules worker records it (the alert's part,
   the signal id), read back as the bus hands it over (`Event.from_cloudevent`).
3. **Phases**, each applied through the real `Applier` (the consumer's exactly-once apply: the
   ids claimed in `processed_events`, the handlers under a savepoint, one transaction per batch)
   in batches of `--batch` (500, the PostgreSQL bus's batch), with no bus around it:
   - `notifier`: the subscription `vroegsignaal up` runs (`Notifier.subscription()`, its batch
     handler when it has one). The escalations it records (`alert.escalated`, on the same topic)
     are read back from the outbox and applied too, as the bus would hand them back: every event
     counts.
   - `notifier, per event`: the subscription's `handler` alone, event by event, on alerts of its
     own: what the batch handler saves.
   - `baseline`: a handler that does nothing, for as many events in the same batches, after the
     others (the same machinery: claim, savepoint, commit).

The clock runs from the first batch to the last commit. Figures per phase: events per second and
its ratio to the baseline; this process's CPU per event (all it does, the ORM and the driver
included) and the PostgreSQL backends' CPU per event; SQL statements per event (counted with a
`before_cursor_execute` listener on the engine, so the Applier's own are in, as in the baseline);
the deliveries (webhooks, e-mails) and escalations made: the world and the alerts follow from
`--seed`, so these counts are the same for every version of the notifier that announces the same
things (a check that a faster one still does).

Then the **claim** of the delivery worker (`queue.claim_due`, rolled back each time) with every
delivery the phases queued still pending: its time (median of 5) with the statistics PostgreSQL
had before the queue filled (a fast-growing backlog) and after `ANALYZE deliveries`, and its plan
with `--explain`.

The consumer runs in this process on uvloop, with `heap.settle()` after set-up (`gc.freeze()` and
the collector's thresholds), as the services run.
The machine is shared: read the ratios to the same-run baseline, not the absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import psutil
from rich.console import Console
from rich.table import Table
from sqlalchemy import Table as SaTable
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.measure import Statements, backend_cpu, database_of
from services.core import heap
from services.core.admin.organisations import OrganisationSpec, add_organisation
from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import (
    Alert,
    CareType,
    Delivery,
    Department,
    Organisation,
    OutboxEvent,
    Region,
    Silence,
    User,
    WebhookSubscription,
)
from services.core.domain import (
    AlertKind,
    AlertStatus,
    DeliveryChannel,
    EscalationStep,
    Level,
    OrgKind,
    Role,
    Scope,
)
from services.core.events.consumer import Applier, Subscription
from services.core.events.envelope import Event
from services.core.events.payloads import Alert as AlertPart
from services.core.events.payloads import AlertOpened, Service, new_event
from services.core.events.types import Topic
from services.core.reference.loading import seed_reference_data
from services.notify.deliveries.manage import SUBSCRIBABLE
from services.notify.deliveries.queue import claim_due
from services.notify.policy import load_policy
from services.notify.worker import Notifier

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROVIDERS = 100
INSURERS = 8
ZONE = ZoneInfo("Europe/Amsterdam")
LEVELS = ((Level.WATCH, 0.6), (Level.THREATENED, 0.3), (Level.CRITICAL, 0.1))
REASON = {
    Level.WATCH: ("staffing.fte_filled", "15.2 of 19.0 budgeted FTE are filled (80%)."),
    Level.THREATENED: ("staffing.vacancies_series", "16 % of the FTE vacant for three reports."),
    Level.CRITICAL: ("staffing.no_psychiatrist", "No psychiatrist left in the team."),
}
console = Console(stderr=True)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


# --- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    regions: list[Region]
    care_types: list[CareType]
    providers: list[tuple[uuid.UUID, str]]  # id, AGB


async def build_world(sessions: async_sessionmaker[AsyncSession], rng: random.Random) -> World:
    """Reference data, providers, insurers, endpoints and people; no departments yet."""
    async with sessions() as session, session.begin():
        await seed_reference_data(session)
        regions = list(await session.scalars(select(Region).where(Region.active)))
        care_types = list(await session.scalars(select(CareType)))
        providers = []
        for n in range(PROVIDERS):
            agb = f"7399{n:04d}"
            spec = OrganisationSpec(OrgKind.PROVIDER, f"GGZ Bench {n:03d}", agb=agb)
            providers.append(((await add_organisation(session, spec)).id, agb))
        codes = [region.code for region in regions]
        for n in range(INSURERS):
            await add_organisation(
                session,
                OrganisationSpec(
                    OrgKind.INSURER,
                    f"Verzekeraar Bench {n}",
                    uzovi=f"99{n:02d}",
                    coordinates=tuple(codes[n::INSURERS]),
                ),
            )
        organisations = list(
            (await session.execute(select(Organisation.id, Organisation.kind))).all()
        )
        endpoints = [
            {
                "id": _uuid(rng),
                "organisation_id": org_id,
                "url": f"https://hooks.example.nl/{org_id}",
                "event_types": list(SUBSCRIBABLE),
                "secret_encrypted": "not-sent-in-this-bench",
                "active": True,
            }
            for org_id, kind in organisations
            if kind is not OrgKind.GOVERNANCE and kind is not OrgKind.OPERATOR
        ]
        await session.execute(insert(cast(SaTable, WebhookSubscription.__table__)), endpoints)
        people = []
        for org_id, kind in organisations:
            count = {OrgKind.REGIONAL_TABLE: 2, OrgKind.NATIONAL_TABLE: 3}.get(kind, 0)
            people += [
                {
                    "id": _uuid(rng),
                    "organisation_id": org_id,
                    "email": f"lid{n}.{org_id.hex[:8]}@tafel.example.nl",
                    "password_hash": "not-a-login",
                    "role": Role(kind.value),
                }
                for n in range(count)
            ]
        await session.execute(insert(cast(SaTable, User.__table__)), people)
    return World(regions, care_types, providers)


async def add_alerts(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    count: int,
    rng: random.Random,
    label: str,
) -> list[Event]:
    """`count` departments, each with an open alert at the provider's step, and the
    `alert.opened` event the rules worker would have recorded for each."""
    departments, alerts, silences, events = [], [], [], []
    now = datetime.now(UTC)
    regions = {region.id: region for region in world.regions}
    for index in range(count):
        care_type = rng.choice(world.care_types)
        provider_id, agb = rng.choice(world.providers)
        region_id = rng.choice(world.regions).id
        department_id = _uuid(rng)
        scope = Scope(care_type.default_scope)
        code = f"{label}-{index:06d}"
        departments.append(
            {
                "id": department_id,
                "provider_id": provider_id,
                "code": code,
                "name": f"Afdeling {care_type.name_nl} {label} {index}",
                "care_type_code": care_type.code,
                "region_id": region_id,
                "scope": scope,
                "capacity": 20 if care_type.has_beds else None,
            }
        )
        roll, level = rng.random(), Level.WATCH
        for candidate, share in LEVELS:
            if roll < share:
                level = candidate
                break
            roll -= share
        rule_id, explanation = REASON[level]
        signal_id = _uuid(rng)
        reasons = [
            {
                "rule_id": rule_id,
                "level": level.value,
                "kind": "staffing",
                "explanation": explanation,
                "explanation_nl": explanation,
                "figures": {"fte_budgeted": 19.0},
                "thresholds": {},
                "norm": None,
                "signal_ids": [str(signal_id)],
            }
        ]
        alert = {
            "id": _uuid(rng),
            "kind": AlertKind.DEPARTMENT,
            "department_id": department_id,
            "region_id": region_id,
            "care_type_code": care_type.code,
            "level": level,
            "status": AlertStatus.OPEN,
            "escalation": EscalationStep.PROVIDER,
            "no_alternative": rng.random() < 0.05,
            "reasons": reasons,
            "opened_at": now,
            "ruleset_version": "bench",
        }
        alerts.append(alert)
        if rng.random() < 0.05:
            silences.append(
                {
                    "id": _uuid(rng),
                    "department_id": department_id,
                    "organisation_id": world.providers[0][0],
                    "reason": "aangekondigde fusie",
                    "starts_at": now - timedelta(days=1),
                    "ends_at": now + timedelta(days=30),
                }
            )
        part = AlertPart(
            id=alert["id"],
            kind=AlertKind.DEPARTMENT,
            department_id=department_id,
            department=code,
            provider_agb=agb,
            region=regions[region_id].code,
            care_type=care_type.code,
            cluster=care_type.cluster,
            scope=scope,
            level=level,
            status=AlertStatus.OPEN,
            escalation=EscalationStep.PROVIDER,
            no_alternative=alert["no_alternative"],
            reasons=[{k: v for k, v in r.items() if k != "explanation_nl"} for r in reasons],
            opened_at=now,
            escalated_at=None,
            acknowledged_at=None,
            resolved_at=None,
            ruleset_version="bench",
        )
        made = new_event(AlertOpened(alert=part, signal_id=signal_id), source=Service.RULES)
        events.append(Event.from_cloudevent(Topic.ALERTS.value, made.cloudevent()))
    async with sessions() as session, session.begin():
        await session.execute(insert(cast(SaTable, Department.__table__)), departments)
        await session.execute(insert(cast(SaTable, Alert.__table__)), alerts)
        if silences:
            await session.execute(insert(cast(SaTable, Silence.__table__)), silences)
    return events


# --- measuring ---------------------------------------------------------------------------------


async def last_outbox_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0))) or 0)


async def recorded_since(sessions: async_sessionmaker[AsyncSession], since: int) -> list[Event]:
    """The alert events recorded after outbox id `since`, as the bus would hand them over."""
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEvent.topic, OutboxEvent.event)
            .where(OutboxEvent.id > since, OutboxEvent.topic == Topic.ALERTS.value)
            .order_by(OutboxEvent.id)
        )
        return [Event.from_cloudevent(topic, document) for topic, document in rows.all()]


async def deliveries_since(sessions: async_sessionmaker[AsyncSession], since: int) -> Counter[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Delivery.channel, func.count())
            .where(Delivery.seq > since)
            .group_by(Delivery.channel)
        )
        return Counter({DeliveryChannel(channel).value: int(n) for channel, n in rows.all()})


async def last_delivery_seq(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.coalesce(func.max(Delivery.seq), 0))) or 0)


async def apply_all(
    applier: Applier,
    events: Sequence[Event],
    batch: int,
    progress: Callable[[int], None],
) -> None:
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        await applier.apply(chunk)
        progress(len(chunk))


async def phase(
    name: str,
    url: str,
    database: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    statements: Statements,
    subscription: Subscription,
    events: Sequence[Event],
    *,
    batch: int,
    follow_ups: bool,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[Event]]:
    """Apply `events` (and, with `follow_ups`, the alert events they record) through the
    Applier; the figures, and every event applied in order."""
    applier = Applier(sessions, subscription)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n

    async def report() -> None:
        while True:
            await asyncio.sleep(2.0)
            say(f"    {name}: {done:,} events applied")

    since = await last_outbox_id(sessions)
    seq = await last_delivery_seq(sessions)
    async with engine.connect() as connection:
        await connection.execute(text("CHECKPOINT"))
    heap.settle()
    reporter = asyncio.create_task(report())
    applied = list(events)
    backends_before = await backend_cpu(url, database)
    statements_before = statements.count
    cpu_before = time.process_time()
    started = time.perf_counter()
    try:
        await apply_all(applier, events, batch, progress)
        escalations: list[Event] = []
        if follow_ups:
            escalations = await recorded_since(sessions, since)
            await apply_all(applier, escalations, batch, progress)
            applied += escalations
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        sent = statements.count - statements_before
        backends_after = await backend_cpu(url, database)
    finally:
        reporter.cancel()
        gc.unfreeze()
    postgres = sum(after - backends_before.get(pid, 0.0) for pid, after in backends_after.items())
    made = await deliveries_since(sessions, seq)
    count = len(applied)
    figures = {
        "events": count,
        "alert_opened": len(events),
        "follow_ups_applied": len(applied) - len(events),
        "seconds": round(seconds, 3),
        "events_per_s": round(count / seconds, 1),
        "cpu_ms_per_event": round(cpu / count * 1000, 3),
        "postgres_cpu_ms_per_event": round(postgres / count * 1000, 3),
        "statements_per_event": round(sent / count, 3),
        "statements": sent,
        "webhooks_queued": made.get("webhook", 0),
        "emails_queued": made.get("email", 0),
        "escalations_recorded": len(await recorded_since(sessions, since)),
    }
    say(
        f"  → {name}: {figures['events_per_s']:,.0f} events/s,"
        f" {figures['statements_per_event']} statements and"
        f" {figures['cpu_ms_per_event']} ms CPU per event"
        f" ({figures['webhooks_queued']:,} webhooks, {figures['emails_queued']:,} e-mails queued)"
    )
    return figures, applied


async def _noop(session: AsyncSession, event: Event) -> None:
    """The baseline's handler: the event is claimed and the batch committed, nothing else."""


async def _noop_batch(session: AsyncSession, events: Sequence[Event]) -> None:
    """The baseline's batch handler (when the machinery has batch handlers)."""


def _subscription(group: str, handler: Any, batch_handler: Any = None) -> Subscription:
    """A subscription with a batch handler when this version of the Applier takes one."""
    if batch_handler is not None and "batch_handler" in Subscription.__dataclass_fields__:
        return Subscription(group, (Topic.ALERTS.value,), handler, batch_handler=batch_handler)
    return Subscription(group, (Topic.ALERTS.value,), handler)


async def measure_claim(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    *,
    explain: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The delivery worker's claim with everything queued still pending (rolled back), first
    with the statistics PostgreSQL had before the queue filled (as a fast-growing backlog
    meets it), then after an ANALYZE of the deliveries (as autovacuum soon has them)."""
    async with sessions() as session:
        pending = int(
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
            )
            or 0
        )
    found: dict[str, Any] = {"pending": pending}
    for label in ("stale_statistics", "analyzed"):
        if label == "analyzed":
            async with engine.connect() as connection:
                await connection.execute(text("ANALYZE deliveries"))
                await connection.commit()
        times = []
        claimed = 0
        for _ in range(5):
            async with sessions() as session, session.begin():
                started = time.perf_counter()
                got = await claim_due(
                    session,
                    now=datetime.now(UTC),
                    limit=64,
                    max_in_flight=4,
                    lease=timedelta(seconds=70),
                )
                times.append((time.perf_counter() - started) * 1000)
                claimed = len(got)
                await session.rollback()
        figures: dict[str, Any] = {
            "claimed": claimed,
            "claim_ms_median": round(statistics.median(times), 2),
            "claim_ms_min": round(min(times), 2),
        }
        if explain:
            figures["plan"] = await _claim_plan(sessions)
        found[label] = figures
        say(
            f"  claim of 64 with {pending:,} pending ({label.replace('_', ' ')}):"
            f" {figures['claim_ms_median']} ms median ({claimed} claimable)"
        )
    return found


async def _claim_plan(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    from services.notify.deliveries import queue

    async with sessions() as session, session.begin():
        plan = await session.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) " + str(queue._CLAIMABLE.text)),
            {"now": datetime.now(UTC), "scan": queue.SCAN_LIMIT, "max_in_flight": 4, "limit": 64},
        )
        lines = [str(row[0]) for row in plan.all()]
        await session.rollback()
    return lines


async def run(
    server: str,
    *,
    alerts: int,
    batch: int,
    seed: int,
    explain: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - repeatable test data, not secrets
    async with scratch.scratch_database(server, prefix="vroegsignaal_bench_notify") as url:
        database = database_of(url)
        engine = make_engine(url)
        statements = Statements()
        statements.attach(engine)
        sessions = make_sessions(engine)
        try:
            started = time.perf_counter()
            world = await build_world(sessions, rng)
            shipped_events = await add_alerts(sessions, world, alerts, rng, "B")
            single_events = await add_alerts(sessions, world, alerts, rng, "E")
            warm_events = await add_alerts(sessions, world, min(alerts, 500), rng, "W")
            async with engine.connect() as connection:
                await connection.execute(text("ANALYZE"))
                await connection.commit()
            say(
                f"  world: {PROVIDERS} providers, {INSURERS} insurers, {len(world.regions)}"
                f" regions, {2 * alerts + len(warm_events):,} departments with an open alert"
                f" ({time.perf_counter() - started:.1f} s)"
            )
            notifier = Notifier(load_policy(), zone=ZONE, public_url="https://vroegsignaal.test")
            shipped = notifier.subscription()
            per_event = Subscription(shipped.group, shipped.topics, shipped.handler)
            has_batch = getattr(shipped, "batch_handler", None) is not None
            # Warm-up, not measured: the statement caches and the code paths.
            await Applier(sessions, shipped).apply(warm_events)
            measured: dict[str, Any] = {}
            name = "notifier (batch handler)" if has_batch else "notifier (as shipped)"
            measured["notifier"], applied = await phase(
                name,
                url,
                database,
                engine,
                sessions,
                statements,
                shipped,
                shipped_events,
                batch=batch,
                follow_ups=True,
                say=say,
            )
            measured["notifier_per_event"], _ = await phase(
                "notifier, per event",
                url,
                database,
                engine,
                sessions,
                statements,
                per_event,
                single_events,
                batch=batch,
                follow_ups=True,
                say=say,
            )
            baseline = _subscription("bench-noop", _noop, _noop_batch)
            measured["baseline"], _ = await phase(
                "baseline (no-op handler)",
                url,
                database,
                engine,
                sessions,
                statements,
                baseline,
                applied,
                batch=batch,
                follow_ups=False,
                say=say,
            )
            claim = await measure_claim(engine, sessions, explain=explain, say=say)
        finally:
            await engine.dispose()
    base = measured["baseline"]["events_per_s"]
    for figures in measured.values():
        figures["ratio_to_baseline"] = round(figures["events_per_s"] / base, 3)
    return {
        "alerts_per_phase": alerts,
        "batch": batch,
        "has_batch_handler": has_batch,
        "phases": measured,
        "claim": claim,
        "load_average_at_start": list(psutil.getloadavg()),
    }


def table(result: dict[str, Any]) -> Table:
    out = Table(
        title=f"Notifier on PostgreSQL: {result['alerts_per_phase']:,} alert.opened per phase"
        f" (and their escalations), batches of {result['batch']}"
    )
    for column in (
        "",
        "events",
        "events/s",
        "× baseline",
        "CPU ms/event",
        "PostgreSQL CPU ms/event",
        "SQL/event",
        "webhooks",
        "e-mails",
    ):
        out.add_column(column, justify="right" if column else "left")
    names = {
        "notifier": "notifier, batch handler" if result["has_batch_handler"] else "notifier",
        "notifier_per_event": "notifier, per event",
        "baseline": "no-op handler (baseline)",
    }
    for key, label in names.items():
        f = result["phases"][key]
        out.add_row(
            label,
            f"{f['events']:,}",
            f"{f['events_per_s']:,.0f}",
            f"{f['ratio_to_baseline']:.3f}",
            f"{f['cpu_ms_per_event']:.3f}",
            f"{f['postgres_cpu_ms_per_event']:.3f}",
            f"{f['statements_per_event']}",
            f"{f['webhooks_queued']:,}",
            f"{f['emails_queued']:,}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=5_000, help="alert.opened per phase")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    parser.add_argument("--explain", action="store_true", help="print the claim's plan")
    parser.add_argument("--quick", action="store_true", help="500 alerts: to check the script")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    import uvloop

    console.print(f"load average {psutil.getloadavg()}")
    result = uvloop.run(
        run(
            args.server_url,
            alerts=500 if args.quick else args.alerts,
            batch=args.batch,
            seed=args.seed,
            explain=args.explain,
            say=console.print,
        )
    )
    Console(width=180).print(table(result))
    claim = result["claim"]
    for label in ("stale_statistics", "analyzed"):
        figures = claim[label]
        Console().print(
            f"claim (64, at most 4 per endpoint) with {claim['pending']:,} pending deliveries,"
            f" {label.replace('_', ' ')}: {figures['claim_ms_median']} ms median,"
            f" {figures['claim_ms_min']} ms min"
        )
        if "plan" in figures:
            Console(width=180).print("\n".join(figures["plan"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

"""The rules worker end to end on PostgreSQL: signals judged per second by ONE consumer of group
`rules`, against the bare pipeline (the same bus, a handler that does nothing) in the same run.

    .venv/bin/python -m bench.rules --worker [--departments 2000] [--signals 20000]
        [--server-url URL] [--breakdown] [--py-spy PATH] [--json PATH] [--rounds] [--forget]

In a database of its own on the server (default: the local one at 127.0.0.1:5432), dropped at
the end:

1. **The world.** Reference data (42 regions, 17 care types, the Treeknorm); 100 providers and one
   insurer that coordinates every region; `--departments` departments spread at random over the
   regions, with care types in proportions like the Dutch landscape (hundreds of FACT teams, three
   KIBs and one LIZ; supra-regional care in one national cell per care type), capacity where the
   care type has beds. Each department has six months of monthly history of the kinds its care
   type reports (staffing; waiting list where the Treeknorm applies; beds where it has beds), put
   straight into `signals`; a fifth of the departments are in trouble (short-staffed, long
   waits, full wards), so rules fire, alerts open and coverage cells change.
2. **Warm-up**, not timed: one signal per department, recorded and judged by both groups, so
   every department has an assessment and every coverage cell exists, as in a running system.
3. **Signals.** `--signals` new signals, each the newest of its department, recorded as the API
   records them (`record_signals`, 100 per transaction, the insurer posting for the providers,
   one `signal.received` event each in the outbox). Kinds as a provider's feed mixes them:
   staffing, waiting list and beds where the care type has them, now and then an admission stop,
   a closure or a contract change.
4. **Baseline**: ONE consumer of a group whose handler does nothing drains them, on the PostgreSQL
   bus with its production timing (batches of 500): the bus alone (fetch, claim of the event ids,
   offsets, commit).
5. **Rules**: ONE consumer of group `rules` with the real subscription (`worker.subscription`, as
   `vroegsignaal up` and `vroegsignaal rules` run it) drains the same signals: each one judged,
   its assessment stored, the department's alert and the region's coverage followed, their events
   recorded.

With `--rounds`, steps 3 to 5 go a consumer batch (500 signals) at a time: recorded, drained by
both groups, and so on, as a worker that keeps up meets its signals (each judged with the ones
before it, never a later one); the drains' times and CPU are summed. Without it the signals are a
backlog: a worker that reads a department in full judges its first signal with the later ones
already stored, which is less work than keeping up (docs/benchmarks.md, "Fourth session of
2026-11-30"). `--forget` runs the worker without its cache of departments (`remember=False`).

The clock runs from a consumer's start to its last commit; the figure is signals per second, and
the ratio to the baseline says what judging costs. Also reported: CPU per signal of this process
(the consumer) and of the PostgreSQL backends of the bench's database, SQL statements per signal,
and what the signals did (assessments, alert and coverage events). `--breakdown` times the
worker's steps (load, evaluate, coverage, alert, events; wall time, so it includes the round
trips) and `--py-spy PATH` records the rules phase with py-spy (collapsed stacks). The consumer
runs in this process on uvloop, with `heap.settle()` after set-up (`gc.freeze()` and the
collector's thresholds), as the services run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import shutil
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.measure import Statements, backend_cpu, database_of
from services.core import heap
from services.core.access import Caller, load_caller
from services.core.admin.organisations import OrganisationSpec, add_organisation
from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import (
    Assessment,
    CareType,
    Department,
    OutboxEvent,
    Region,
)
from services.core.domain import OrgKind, Role, Scope, SignalSource
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.postgres_bus import PostgresBus, Timing
from services.core.events.types import Topic
from services.core.reference.loading import seed_reference_data
from services.ingest.recording import record_signals
from services.ingest.validation import parse_signals
from services.rules import worker
from services.rules.ruleset import Ruleset, load_ruleset

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AIM_SIGNALS_PER_S = 2_000.0
PROVIDERS = 100
HISTORY_MONTHS = 6
BASELINE_GROUP = "bench-noop"
# Departments per care type, roughly as many as the Netherlands has (FACT teams by the hundred).
CARE_TYPE_WEIGHTS = {
    "acute.crisis": 100,
    "acute.iht": 100,
    "acute.hic": 150,
    "outreach.fact": 600,
    "outreach.vip": 80,
    "clinical.wvggz": 100,
    "clinical.mpu": 50,
    "clinical.paaz_puk": 150,
    "secure.level2": 100,
    "secure.level3": 40,
    "secure.level4": 15,
    "secure.kib": 3,
    "secure.liz": 1,
    "highly_specialised.hclv": 150,
    "highly_specialised.supra_regional": 60,
    "crisis_beds.vg": 50,
    "crisis_beds.pg": 50,
}
REASONS = ("personeelstekort", "verbouwing", "contract loopt af")


@dataclass(frozen=True)
class Place:
    """A department as the generator needs it."""

    id: uuid.UUID
    code: str
    provider_agb: str
    care_type: str
    waiting: bool  # the Treeknorm applies: it reports a waiting list
    beds: int | None  # it has beds: it reports them
    troubled: bool


@dataclass
class World:
    places: list[Place]
    insurer: Caller
    provider_ids: dict[str, uuid.UUID]


# --- the world ---------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> uuid.UUID:
    """Ids from the seed: the same world, signals and partitions in every run."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


async def build_world(
    sessions: async_sessionmaker[AsyncSession], count: int, rng: random.Random
) -> World:
    """Reference data, providers, one insurer for every region, and the departments."""
    async with sessions() as session, session.begin():
        await seed_reference_data(session)
        regions = list(await session.scalars(select(Region).where(Region.active)))
        care_types = {row.code: row for row in await session.scalars(select(CareType))}
        providers: dict[str, uuid.UUID] = {}
        for n in range(PROVIDERS):
            agb = f"7399{n:04d}"
            spec = OrganisationSpec(OrgKind.PROVIDER, f"GGZ Bench {n:03d}", agb=agb)
            providers[agb] = (await add_organisation(session, spec)).id
        insurer = await add_organisation(
            session,
            OrganisationSpec(
                OrgKind.INSURER,
                "Verzekeraar Bench",
                uzovi="9901",
                coordinates=tuple(region.code for region in regions),
            ),
        )
        caller = await load_caller(session, insurer, Role.INSURER)
        codes = [code for code in CARE_TYPE_WEIGHTS if code in care_types]
        weights = [CARE_TYPE_WEIGHTS[code] for code in codes]
        places: list[Place] = []
        rows: list[Department] = []
        agbs = list(providers)
        for index in range(count):
            care_type = care_types[rng.choices(codes, weights)[0]]
            agb = rng.choice(agbs)
            beds = rng.randint(8, 40) if care_type.has_beds else None
            department = Department(
                id=_uuid(rng),
                provider_id=providers[agb],
                code=f"AFD-{index:05d}",
                name=f"Afdeling {care_type.name_nl} {index}",
                care_type_code=care_type.code,
                region_id=rng.choice(regions).id,
                scope=Scope(care_type.default_scope),
                capacity=beds,
            )
            rows.append(department)
            places.append(
                Place(
                    department.id,
                    department.code,
                    agb,
                    care_type.code,
                    care_type.waiting_norms_apply,
                    beds,
                    troubled=rng.random() < 0.2,
                )
            )
        session.add_all(rows)
    return World(places, caller, providers)


def signal_data(kind: str, place: Place, rng: random.Random, day: date) -> dict[str, Any]:
    """Plausible figures; a troubled department's are worse (rules fire, alerts open)."""
    bad = place.troubled
    if kind == "staffing":
        budget = round(rng.uniform(10, 60), 1)
        vacancy = rng.uniform(0.08, 0.3) if bad else rng.uniform(0, 0.12)
        return {
            "fte_budgeted": budget,
            "fte_filled": round(budget * (1 - vacancy), 1),
            "vacancies_fte": round(budget * vacancy, 1),
            "sick_leave_pct": round(rng.uniform(6, 14) if bad else rng.uniform(2, 9), 1),
            "temp_staff_pct": round(rng.uniform(10, 35) if bad else rng.uniform(0, 22), 1),
            "psychiatrist_fte": float(rng.choice([0, 1, 2] if bad else [1, 2, 3])),
            "unfilled_shifts_pct": round(rng.uniform(3, 14) if bad else rng.uniform(0, 6), 1),
        }
    if kind == "waitlist":
        waiting = rng.randint(40, 300) if bad else rng.randint(0, 120)
        return {
            "waiting_count": waiting,
            "aanmeldwachttijd_weeks": round(rng.uniform(3, 12) if bad else rng.uniform(0.5, 5), 1),
            "behandelwachttijd_weeks": round(rng.uniform(8, 20) if bad else rng.uniform(1, 11), 1),
            "waiting_over_norm_count": rng.randint(0, waiting),
        }
    if kind == "capacity":
        total = place.beds or 12
        closed = rng.randint(0, total // 3) if bad else rng.randint(0, total // 10)
        return {
            "beds_total": total,
            "beds_occupied": rng.randint((total - closed) * 3 // 4, total - closed),
            "beds_closed": closed,
            "out_of_area_placements": rng.randint(0, 4) if bad else 0,
        }
    if kind == "admission_stop":
        active = rng.random() < (0.6 if bad else 0.2)
        found: dict[str, Any] = {"active": active}
        if active:
            found["since"] = (day - timedelta(days=rng.randint(0, 30))).isoformat()
            found["reason"] = rng.choice(REASONS)
        return found
    if kind == "closure":
        return {
            "effective_date": (day + timedelta(days=rng.randint(20, 200))).isoformat(),
            "scope": rng.choice(("full", "partial")),
            "capacity_lost": rng.randint(1, 10),
            "reason": rng.choice(REASONS),
        }
    statuses = ("at_risk", "not_renewed", "budget_ceiling_reached") if bad else ("contracted",)
    return {
        "status": rng.choice(statuses),
        "effective_date": (day + timedelta(days=rng.randint(0, 120))).isoformat(),
    }


def kind_of(place: Place, rng: random.Random) -> str:
    """A provider's feed: mostly the regular reports, now and then an event."""
    kinds = ["staffing"] * 4
    if place.waiting:
        kinds += ["waitlist"] * 3
    if place.beds is not None:
        kinds += ["capacity"] * 3
    roll = rng.random()
    if roll < 0.05:
        return "admission_stop"
    if roll < 0.06:
        return "closure"
    if roll < 0.10:
        return "contract"
    return rng.choice(kinds)


async def store_history(url: str, world: World, rng: random.Random, now: datetime) -> int:
    """Six months of monthly reports per department, straight into `signals` (no events)."""
    records = []
    for place in world.places:
        kinds = ["staffing"] + (["waitlist"] if place.waiting else [])
        kinds += ["capacity"] if place.beds is not None else []
        for month in range(HISTORY_MONTHS, 0, -1):
            observed = now - timedelta(days=30 * month, hours=rng.randint(0, 48))
            for kind in kinds:
                data = signal_data(kind, place, rng, observed.date())
                records.append(
                    (
                        _uuid(rng),
                        place.id,
                        kind,
                        observed,
                        observed,
                        json.dumps(data),
                        None,
                        SignalSource.API.value,
                        world.provider_ids[place.provider_agb],
                        "history",
                    )
                )
    connection = await asyncpg.connect(**scratch.connect_args(url))
    try:
        await connection.copy_records_to_table(
            "signals",
            records=records,
            columns=(
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
            ),
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return len(records)


async def record(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    bodies: Sequence[dict[str, Any]],
    *,
    per_transaction: int = 100,
) -> None:
    """Record signals as the API does: validated, stored, one `signal.received` event each."""
    for start in range(0, len(bodies), per_transaction):
        chunk = list(bodies[start : start + per_transaction])
        now = datetime.now(UTC)
        signals, _ = parse_signals({"signals": chunk}, now=now)
        async with sessions() as session, session.begin():
            await record_signals(
                session,
                caller=world.insurer,
                signals=signals,
                source=SignalSource.API,
                received_at=now,
            )


def bodies_for(
    world: World, places: Sequence[Place], rng: random.Random, end: datetime
) -> list[dict[str, Any]]:
    """One signal per place in `places`, in order, each observed later than the one before."""
    made = []
    for index, place in enumerate(places):
        observed = end - timedelta(milliseconds=10 * (len(places) - index))
        kind = kind_of(place, rng)
        made.append(
            {
                "id": str(_uuid(rng)),
                "department": place.code,
                "provider_agb": place.provider_agb,
                "kind": kind,
                "observed_at": observed.isoformat(),
                "data": signal_data(kind, place, rng, observed.date()),
            }
        )
    return made


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Breakdown:
    """Wall time spent in each of the worker's steps (`--breakdown`)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)

    def install(self) -> Callable[[], None]:
        """Wrap the names `worker.judge` calls; returns what puts them back."""
        names = [
            "load_departments",
            "evaluate",
            "follow_assessment",
            "follow_cell",
            "reason_document",
        ]
        originals = {name: getattr(worker, name) for name in names}
        for name, original in originals.items():
            setattr(worker, name, self._timed(name, original))

        def restore() -> None:
            for name, original in originals.items():
                setattr(worker, name, original)

        return restore

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1

            return timed_async

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


async def drain(
    url: str,
    sessions: async_sessionmaker[AsyncSession],
    subscription: Subscription,
    expected: int,
    *,
    database: str = "",
    statements: Statements | None = None,
    breakdown: Breakdown | None = None,
    py_spy: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """ONE consumer of the subscription's group works off `expected` events; its figures."""
    bus = PostgresBus(url, sessions)
    applied = 0
    batches: list[int] = []
    finished = asyncio.Event()
    last_commit = 0.0

    async def committed(events: Sequence[Event]) -> None:
        nonlocal applied, last_commit
        applied += len(events)
        batches.append(len(events))
        last_commit = time.perf_counter()
        if applied >= expected:
            finished.set()

    handler = subscription.handler
    handler_seconds = 0.0

    async def timed_handler(session: AsyncSession, event: Event) -> None:
        nonlocal handler_seconds
        started = time.perf_counter()
        try:
            await handler(session, event)
        finally:
            handler_seconds += time.perf_counter() - started

    batch_handler = subscription.batch_handler

    async def timed_batch(session: AsyncSession, events: Sequence[Event]) -> None:
        nonlocal handler_seconds
        assert batch_handler is not None
        started = time.perf_counter()
        try:
            await batch_handler(session, events)
        finally:
            handler_seconds += time.perf_counter() - started

    consumer = bus.consumer(
        Subscription(
            subscription.group,
            subscription.topics,
            timed_handler,
            batch_handler=timed_batch if batch_handler is not None else None,
        ),
        on_committed=committed,
    )
    restore = breakdown.install() if breakdown is not None else None
    spy = _start_py_spy(py_spy) if py_spy else None
    heap.settle(heap.BATCH_WORKER)  # as `vroegsignaal rules` sets it
    statements_before = statements.count if statements else 0
    backends_before = await backend_cpu(url, database) if database else {}
    cpu_before = time.process_time()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())

    async def progress() -> None:
        while True:
            await asyncio.sleep(2.0)
            say(f"    {subscription.group}: {applied:,} of {expected:,}")

    reporter = asyncio.create_task(progress())
    try:
        waiting = asyncio.create_task(finished.wait())
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            await task  # it failed: say why
            raise RuntimeError("the consumer stopped before it had applied every event")
    finally:
        reporter.cancel()
        cpu = time.process_time() - cpu_before
        sent = (statements.count - statements_before) if statements else 0
        backends_after = await backend_cpu(url, database) if database else {}
        consumer.stop()
        await task
        if spy is not None:
            _stop_py_spy(spy, say)
        if restore is not None:
            restore()
        gc.unfreeze()
    seconds = last_commit - started
    postgres = sum(after - backends_before.get(pid, 0.0) for pid, after in backends_after.items())
    return {
        "group": subscription.group,
        "events": applied,
        "seconds": round(seconds, 3),
        "events_per_s": round(applied / seconds, 1),
        "batches": len(batches),
        "mean_batch": round(sum(batches) / len(batches), 1) if batches else 0,
        "consumer_cpu_ms_per_event": round(cpu / applied * 1000, 3),
        "handler_ms_per_event": round(handler_seconds / applied * 1000, 3),
        "postgres_cpu_ms_per_event": round(postgres / applied * 1000, 3),
        "statements_per_event": round(sent / applied, 2) if statements else None,
    }


def combined(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of several drains of one group as one (time and CPU summed)."""
    if len(parts) == 1:
        return parts[0]
    events = sum(part["events"] for part in parts)
    seconds = sum(part["seconds"] for part in parts)
    batches = sum(part["batches"] for part in parts)

    def per_event(name: str) -> float | None:
        if any(part[name] is None for part in parts):
            return None
        total: float = sum(part[name] * part["events"] for part in parts)
        return float(round(total / events, 3))

    return {
        "group": parts[0]["group"],
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "batches": batches,
        "mean_batch": round(events / batches, 1) if batches else 0,
        "rounds": len(parts),
        **{
            name: per_event(name)
            for name in (
                "consumer_cpu_ms_per_event",
                "handler_ms_per_event",
                "postgres_cpu_ms_per_event",
                "statements_per_event",
            )
        },
    }


def _start_py_spy(path: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("py-spy") or "py-spy"
    import os

    command = [binary, "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw"]
    return subprocess.Popen(  # noqa: S603 - our own profiler on our own process
        [*command, "--output", path, "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_py_spy(process: subprocess.Popen[bytes], say: Callable[[str], None]) -> None:
    import signal

    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    say("    (py-spy profile written)")


async def _noop(session: AsyncSession, event: Event) -> None:
    """The baseline's handler: the event is claimed and the offset moves, nothing else."""


async def outcomes(sessions: async_sessionmaker[AsyncSession], since_id: int) -> dict[str, int]:
    """What the judged signals did: assessments stored, and the events the worker recorded."""
    async with sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(Assessment))
        rows = await session.execute(
            select(OutboxEvent.type, func.count())
            .where(OutboxEvent.id > since_id, OutboxEvent.topic != Topic.SIGNALS.value)
            .group_by(OutboxEvent.type)
        )
        found = {str(kind).removeprefix("nl.vroegsignaal."): int(n) for kind, n in rows}
    found["assessments"] = int(stored or 0)
    return found


async def last_outbox_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0))) or 0)


@contextlib.asynccontextmanager
async def own_database(server: str) -> AsyncIterator[str]:
    async with scratch.scratch_database(server, prefix="vroegsignaal_bench_rules") as url:
        yield url


async def run_worker_bench(
    server: str,
    *,
    departments: int = 2_000,
    signals: int = 20_000,
    seed: int = 7,
    breakdown: bool = False,
    py_spy: str | None = None,
    ruleset: Ruleset | None = None,
    rounds: bool = False,
    remember: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole worker benchmark in a fresh database; its figures."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data, not secrets
    ruleset = ruleset or load_ruleset()
    async with own_database(server) as url:
        database = database_of(url)
        engine = make_engine(url)
        statements = Statements()
        statements.attach(engine)
        sessions = make_sessions(engine)
        try:
            started = time.perf_counter()
            world = await build_world(sessions, departments, rng)
            now = datetime.now(UTC)
            history = await store_history(url, world, rng, now)
            say(
                f"  world: {departments:,} departments, {history:,} signals of history"
                f" ({time.perf_counter() - started:.1f} s)"
            )
            rules = (
                worker.subscription(ruleset)
                if remember
                else worker.subscription(ruleset, remember=False)
            )
            baseline = Subscription(BASELINE_GROUP, rules.topics, _noop)
            warm = bodies_for(world, world.places, rng, now)
            await record(sessions, world, warm)
            for subscription in (baseline, rules):
                await drain(url, sessions, subscription, len(warm), say=say)
            say(f"  warm-up: {len(warm):,} signals judged (one per department)")
            places = [rng.choice(world.places) for _ in range(signals)]
            bodies = bodies_for(world, places, rng, datetime.now(UTC))
            kinds = Counter(body["kind"] for body in bodies)
            since = await last_outbox_id(sessions)
            before = await outcomes(sessions, since)
            timer = Breakdown() if breakdown else None
            # Up front, as a backlog: the rules drain them in one go. In rounds, as a worker
            # that keeps up sees them: one consumer batch recorded, then drained, and so on.
            size = Timing().batch_size if rounds else signals
            drained: dict[str, list[dict[str, Any]]] = {baseline.group: [], rules.group: []}
            for start in range(0, signals, size):
                part = bodies[start : start + size]
                started = time.perf_counter()
                await record(sessions, world, part)
                if not rounds:
                    say(f"  recorded {signals:,} signals ({time.perf_counter() - started:.1f} s)")
                async with engine.connect() as connection:
                    await connection.execute(text("CHECKPOINT"))
                for subscription in (baseline, rules):
                    if not rounds:
                        say(f"  draining with ONE consumer of group {subscription.group}")
                    drained[subscription.group].append(
                        await drain(
                            url,
                            sessions,
                            subscription,
                            len(part),
                            database=database,
                            statements=statements,
                            breakdown=timer if subscription is rules else None,
                            py_spy=py_spy if subscription is rules and not rounds else None,
                            say=say if not rounds else (lambda _: None),
                        )
                    )
                if rounds:
                    say(f"    rounds: {start + len(part):,} of {signals:,} signals judged")
            measured = {group: combined(parts) for group, parts in drained.items()}
            for subscription in (baseline, rules):
                found = measured[subscription.group]
                say(
                    f"  → {subscription.group}: {found['events_per_s']:,.0f} signals/s,"
                    f" {found['statements_per_event']} statements and"
                    f" {found['consumer_cpu_ms_per_event']} ms CPU per signal"
                )
            after = await outcomes(sessions, since)
        finally:
            await engine.dispose()
    judged = after["assessments"] - before["assessments"]
    if judged != signals:
        raise RuntimeError(f"{judged} assessments stored for {signals} signals")
    rules_rate = measured[worker.GROUP]["events_per_s"]
    result: dict[str, Any] = {
        "departments": departments,
        "signals": signals,
        "rounds": rounds,
        "remember": remember,
        "kinds": dict(kinds),
        "baseline": measured[BASELINE_GROUP],
        "rules": measured[worker.GROUP],
        "ratio_to_baseline": round(rules_rate / measured[BASELINE_GROUP]["events_per_s"], 3),
        "aim_signals_per_s": AIM_SIGNALS_PER_S,
        "events_recorded": {k: v for k, v in after.items() if k != "assessments"},
        "assessments_stored": judged,
    }
    if timer is not None:
        result["breakdown_ms_per_signal"] = {
            name: round(seconds / signals * 1000, 3)
            for name, seconds in sorted(timer.seconds.items(), key=lambda item: -item[1])
        }
    return result

"""The rules worker's memory of departments between batches (`services/rules/cache.py`).

A remembered department must be exactly what reading it in full would give: the same reports
of each kind in the same order, the same rule memory and the same latest assessment. Random
signal streams (backfilled reports, more than a kind keeps, reports ageing out of the window,
events delivered twice) are judged batch after batch with the cache, and before every batch the
cached reading is compared with a full one. Whatever else writes an assessment, or a batch that
rolls back, makes the worker read the department in full again.
"""

from __future__ import annotations

import functools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, AlertEvent, Assessment, Organisation, Signal
from services.core.domain import SignalKind
from services.rules.cache import Remembered, StateCache
from services.rules.loading import HISTORY, PER_KIND, Loaded, catch_up, load_departments
from services.rules.ruleset import load_ruleset
from services.rules.worker import Judgement, judge, judge_batch
from tests.ingest.conftest import PROVIDER_A, build_world

KINDS = (SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.CAPACITY, SignalKind.ADMISSION_STOP)


FACTS = (
    "id",
    "code",
    "provider_agb",
    "region",
    "region_id",
    "care_type",
    "cluster",
    "scope",
    "capacity",
)


def _data(kind: SignalKind, rng: random.Random) -> dict[str, Any]:
    """Figures that make rules fire now and then (so rule memory is kept and changes)."""
    if kind is SignalKind.STAFFING:
        return {
            "fte_budgeted": 20.0,
            "vacancies_fte": round(rng.uniform(0, 6), 1),
            "sick_leave_pct": round(rng.uniform(2, 14), 1),
            "psychiatrist_fte": float(rng.choice([0, 1, 2])),
        }
    if kind is SignalKind.WAITLIST:
        return {
            "waiting_count": rng.randint(0, 300),
            "aanmeldwachttijd_weeks": round(rng.uniform(0.5, 12), 1),
            "behandelwachttijd_weeks": round(rng.uniform(1, 20), 1),
        }
    if kind is SignalKind.CAPACITY:
        closed = rng.randint(0, 8)
        return {
            "beds_total": 24,
            "beds_occupied": rng.randint(10, 24 - closed),
            "beds_closed": closed,
        }
    return {"active": rng.random() < 0.3}


def _shape(loaded: Loaded) -> dict[str, Any]:
    """What the engine and the worker see of a loaded department."""
    state, previous = loaded.state, loaded.previous
    return {
        "reports": {
            kind.value: [(r.id, r.observed_at, r.data) for r in series]
            for kind, series in sorted(state.reports.items())
        },
        "received": loaded.received,
        "memory": {rule: (m.consecutive, m.since) for rule, m in state.memory.items()},
        "previous": None
        if previous is None
        else (previous.level, previous.rule_ids, previous.assessed_at),
        "token": loaded.token,
        "facts": [getattr(loaded.facts, name) for name in FACTS],
        "norms": state.norms,
    }


class Stream:
    """Signals for some departments, as ingest would store them, one batch at a time."""

    def __init__(self, departments: list[uuid.UUID], provider: uuid.UUID, seed: int) -> None:
        self.departments = departments
        self.provider = provider
        self.rng = random.Random(seed)  # noqa: S311 - repeatable test data
        self.delivered: list[uuid.UUID] = []

    def batch(self, now: datetime, size: int) -> list[dict[str, Any]]:
        rng, rows = self.rng, []
        for n in range(size):
            kind = rng.choice(KINDS)
            roll = rng.random()
            if roll < 0.15:  # backfilled: observed long ago, some before the window
                observed = now - timedelta(days=rng.randint(300, 800))
            elif roll < 0.4:  # observed at one moment with others (newest first by receipt)
                observed = datetime(2026, 1, 1, tzinfo=UTC)
            else:
                observed = now - timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 9))
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "department_id": rng.choice(self.departments),
                    "kind": kind,
                    "observed_at": observed,
                    "received_at": now + timedelta(microseconds=n),
                    "data": _data(kind, rng),
                    "note": None,
                    "source": "api",
                    "submitted_by_id": self.provider,
                    "body_hash": "test",
                }
            )
        return rows


async def _stream(sessions: async_sessionmaker[AsyncSession]) -> Stream:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        provider = await session.scalar(
            select(Organisation.id).where(Organisation.agb_code == PROVIDER_A)
        )
    assert provider is not None
    return Stream(sorted(world.departments.values()), provider, seed=11)


async def _store(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(insert(Signal), rows)


def _judgements(rows: list[dict[str, Any]]) -> list[Judgement]:
    return [Judgement(r["department_id"], r["kind"], r["id"]) for r in rows]


async def _same_as_read_in_full(
    session: AsyncSession,
    cache: StateCache,
    ids: list[uuid.UUID],
    now: datetime,
    signals: list[uuid.UUID],
) -> tuple[int, int]:
    """Compare the cached reading with a full one; how many departments the cache held, and
    the most reports a kind had."""
    hits = cache.hits
    full = await load_departments(session, ids, now, signal_ids=signals)
    cached = await load_departments(session, ids, now, cache=cache, signal_ids=signals)
    assert list(cached) == list(full)
    for loaded in (*full.values(), *cached.values()):  # the batch's signals, all judged
        catch_up(loaded, None)
    for department_id in full:
        assert _shape(cached[department_id]) == _shape(full[department_id])
    longest = max((len(s) for d in full.values() for s in d.state.reports.values()), default=0)
    return cache.hits - hits, longest


async def test_a_remembered_department_is_what_a_full_reading_gives(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stream = await _stream(sessions)
    ruleset, cache = load_ruleset(), StateCache()
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    held, longest = 0, 0
    for round_ in range(40):
        rows = stream.batch(now, size=stream.rng.randint(1, 30))
        signals = [r["id"] for r in rows]
        if round_ % 7 == 3:  # an earlier batch's events delivered again
            signals += stream.delivered[-5:]
        async with sessions() as session, session.begin():
            await _store(session, rows)
        async with sessions() as session, session.begin():
            hits, most = await _same_as_read_in_full(
                session, cache, stream.departments, now, signals
            )
            held, longest = held + hits, max(longest, most)
            judgements = _judgements(rows)
            await judge_batch(session, ruleset, judgements, now, cache=cache)
        stream.delivered += signals
        now += timedelta(days=stream.rng.choice([1, 9, 40]))  # the window moves on
    # The cache was used (the comparisons above were not all of full readings) ...
    assert held > 40
    # ... some kinds held more reports than are kept, and the window moved past others.
    assert longest == PER_KIND
    async with sessions() as session:
        loaded = await load_departments(session, stream.departments, now)
    reports = [r for d in loaded.values() for series in d.state.reports.values() for r in series]
    assert all(r.observed_at >= now - HISTORY for r in reports)
    async with sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(Signal))
    assert stored is not None and stored > len(reports)


async def test_another_writer_or_a_rollback_makes_the_worker_read_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stream = await _stream(sessions)
    ruleset, cache = load_ruleset(), StateCache()
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    rows = stream.batch(now, size=20)
    async with sessions() as session, session.begin():
        await _store(session, rows)
        await judge_batch(session, ruleset, _judgements(rows), now, cache=cache)
    assert len(cache) == len({r["department_id"] for r in rows})

    # Another writer (the silence check, another replica) judges a department.
    other = rows[0]["department_id"]
    async with sessions() as session, session.begin():
        await judge(session, ruleset, other, now + timedelta(hours=1))
    # A batch that rolls back leaves the cache ahead of the database.
    later = stream.batch(now + timedelta(hours=2), size=10)
    async with sessions() as session, session.begin():
        await _store(session, later)
    async with sessions() as session:
        transaction = await session.begin()
        await judge_batch(session, ruleset, _judgements(later), now, cache=cache)
        await transaction.rollback()

    async with sessions() as session, session.begin():
        misses = cache.misses
        ids = [r["id"] for r in later]
        await _same_as_read_in_full(
            session, cache, stream.departments, now + timedelta(hours=3), ids
        )
        assert cache.misses > misses  # read again, not trusted


def test_the_cache_keeps_the_most_recently_judged() -> None:
    cache = StateCache(size=2)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for department_id in (first, second, third):
        cache.keep(department_id, Remembered(1, since, {}, {}, {}, None))
    assert len(cache) == 2
    assert set(cache.valid({first: 1, second: 1, third: 1}, since)) == {second, third}
    # A window that moved back (a clock set back) is not trusted.
    assert cache.valid({second: 1}, since - timedelta(days=1)) == {}


async def test_the_signals_of_one_batch_are_judged_each_with_the_ones_before_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A batch holding several signals of a department (a provider catching up on months, a
    worker catching up on a backlog) judges each as if it had come alone: the levels are those
    of a worker that met them one at a time."""
    stream = await _stream(sessions)
    fact = stream.departments[0]
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    levels: dict[str, list[str]] = {}
    for how, batches in (("one batch", [[0, 1, 2, 3]]), ("one by one", [[0], [1], [2], [3]])):
        rows = [
            {
                **stream.batch(start, 1)[0],
                "department_id": fact,
                "kind": SignalKind.STAFFING,
                "observed_at": start + timedelta(days=30 * n),
                "received_at": start + timedelta(days=30 * n),
                "data": {"fte_budgeted": 20.0, "vacancies_fte": fte},
            }
            for n, fte in enumerate((0.0, 5.0, 5.0, 0.0))
        ]
        stored, cache = [], StateCache()
        for numbers in batches:
            async with sessions() as session, session.begin():
                await _store(session, [rows[n] for n in numbers])
            async with sessions() as session, session.begin():
                moments = iter([start + timedelta(days=30 * n, hours=1) for n in [0, *numbers]])
                judged = await judge_batch(
                    session,
                    load_ruleset(),
                    _judgements([rows[n] for n in numbers]),
                    functools.partial(next, moments),
                    cache=cache,
                )
            stored += [a.level.value for a in judged if a is not None]
        levels[how] = stored
        async with sessions() as session, session.begin():  # the next round starts afresh
            await session.execute(delete(AlertEvent))
            await session.execute(delete(Alert))
            await session.execute(delete(Assessment))
            await session.execute(delete(Signal))
    assert levels["one batch"] == levels["one by one"] == ["ok", "watch", "watch", "ok"]

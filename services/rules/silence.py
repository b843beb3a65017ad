"""Data silence, checked on a schedule: a department that stops reporting is judged anyway.

Silence cannot wait for a signal to arrive. Every rules worker schedules the sweep, but a run is
claimed in the database (`scheduled_runs`): only the replica whose conditional UPDATE moves the
last-run time forward sweeps, so it happens once per interval however many workers there are.
The sweep judges each active department that has been silent for at least the shortest silence
of the ruleset, a batch of them per transaction, storing a judgement only when it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Department, Signal
from services.core.domain import DepartmentStatus
from services.core.schedule import interval_schedule
from services.rules.ruleset import RuleKind, Ruleset
from services.rules.worker import Judgement, judge_batch

log = logging.getLogger(__name__)

JOB = "rules.silence"
INTERVAL = timedelta(hours=1)
SWEEP_BATCH = 200  # departments judged per transaction

_CLAIM = text(
    """
    INSERT INTO scheduled_runs AS r (job, last_run_at, runs) VALUES (:job, :now, 1)
    ON CONFLICT (job) DO UPDATE SET last_run_at = excluded.last_run_at, runs = r.runs + 1
    WHERE r.last_run_at <= :due
    RETURNING r.runs
    """
)


def shortest_silence(ruleset: Ruleset) -> int | None:
    days = [c.rule.days for c in ruleset.rules if c.rule.kind is RuleKind.SILENCE and c.rule.days]
    return min(days) if days else None


async def claim_run(
    session: AsyncSession, now: datetime, interval: timedelta = INTERVAL, job: str = JOB
) -> bool:
    """True for the one replica that may run the job now (and notes that it did)."""
    claimed = await session.scalar(_CLAIM, {"job": job, "now": now, "due": now - interval})
    return claimed is not None


async def sweep_silence(
    sessions: async_sessionmaker[AsyncSession],
    ruleset: Ruleset,
    now: datetime,
    *,
    interval: timedelta = INTERVAL,
) -> int | None:
    """Judge the silent departments if this replica claims the run; how many were judged."""
    days = shortest_silence(ruleset)
    async with sessions() as session, session.begin():
        if not await claim_run(session, now, interval):
            return None
        if days is None:
            return 0
        last = (
            select(func.max(Signal.observed_at))
            .where(Signal.department_id == Department.id)
            .scalar_subquery()
        )
        silent_since = now - timedelta(days=days)
        candidates = (
            (
                await session.execute(
                    select(Department.id).where(
                        Department.status == DepartmentStatus.ACTIVE,
                        func.coalesce(last, Department.created_at) <= silent_since,
                    )
                )
            )
            .scalars()
            .all()
        )
    for start in range(0, len(candidates), SWEEP_BATCH):
        chunk = [
            Judgement(department_id) for department_id in candidates[start : start + SWEEP_BATCH]
        ]
        async with sessions() as session, session.begin():
            await judge_batch(session, ruleset, chunk, now, store_unchanged=False)
    log.info("silence sweep: %d departments silent for %d days or more", len(candidates), days)
    return len(candidates)


def silence_schedule(
    sessions: async_sessionmaker[AsyncSession],
    ruleset: Ruleset | Callable[[], Ruleset],
    *,
    every: timedelta = INTERVAL,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AbstractAsyncContextManager[AsyncIOScheduler]:
    """Run the sweep every `every` (and once at start-up) while the context is open."""
    current = ruleset if callable(ruleset) else (lambda: ruleset)

    async def run() -> None:
        try:
            await sweep_silence(sessions, current(), clock(), interval=every)
        except Exception:
            log.exception("silence sweep failed; the next one tries again")

    return interval_schedule(run, job=JOB, every=every, clock=clock)

"""The monthly job: on the first of the month at 07:00 (a cron line, in the service's zone) the
notifier makes the digest of the month before, once, however many replicas run.

Each replica schedules the job with APScheduler; what keeps it to one digest is the database
(`make_digest`: an advisory lock on the period and the unique period row), not the timing. The
job does not trust that it fires on time either: whenever it runs it works out which period is
due — the month before the latest fire time that has passed — and makes it if it is missing. So
the same job, run once at start-up, catches up on a first of the month the service was down for:
the digest is made on return. Only the latest due period is caught up (a new installation does not
fill in years of empty months), and not before any department was watched at its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from fastapi import FastAPI
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.config import Settings
from services.core.db.models import Department
from services.core.errors import InvalidInput
from services.notify.digest.figures import DEFAULT_LONG_OPEN_DAYS
from services.notify.digest.make import DigestOptions, DigestResult, make_digest
from services.notify.digest.period import Period

log = logging.getLogger(__name__)

DEFAULT_CRON = "0 7 1 * *"  # minute hour day-of-month month day-of-week: the 1st at 07:00
JOB = "notify.digest"
_LOOKBACK = timedelta(days=62)  # far enough back to find last month's fire of a monthly cron
_MAX_STEPS = 10_000  # a cron that fires every minute: stop looking, `now` is close enough


def _utcnow() -> datetime:
    return datetime.now(UTC)


def digest_trigger(cron: str, options: DigestOptions) -> CronTrigger:
    """The cron line as a trigger in the service's zone; InvalidInput for a bad line."""
    try:
        return CronTrigger.from_crontab(cron, timezone=options.zone)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"digest schedule {cron!r} is not a cron line: {exc}") from exc


def last_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest moment at or before `now` at which the trigger fires."""
    cursor, found = now - _LOOKBACK, None
    for _ in range(_MAX_STEPS):
        fire: datetime | None = trigger.get_next_fire_time(None, cursor)
        if fire is None or fire > now:
            return found
        found, cursor = fire, fire + timedelta(seconds=1)
    return found


def due_period(trigger: CronTrigger, now: datetime, options: DigestOptions) -> Period | None:
    """The period whose digest should exist at `now`: the month before the latest fire."""
    fire = last_fire(trigger, now)
    return Period.of(fire, options.zone).previous() if fire is not None else None


async def watched_by(session: AsyncSession, period: Period, options: DigestOptions) -> bool:
    """Whether any department was registered before the period ended (the service was in use)."""
    found = await session.scalar(
        select(exists().where(Department.created_at < period.ends_at(options.zone)))
    )
    return bool(found)


class DigestJob:
    """What the scheduler runs: make the due digest if it is missing. Safe to run any time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        options: DigestOptions,
        *,
        cron: str = DEFAULT_CRON,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.sessions = sessions
        self.options = options
        self.cron = cron
        self.trigger = digest_trigger(cron, options)
        self.clock = clock
        self.scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()

    async def run_due(self) -> DigestResult | None:
        """Make the due period's digest if it is missing; None when none is due."""
        now = self.clock()
        period = due_period(self.trigger, now, self.options)
        if period is None:
            return None
        async with self.sessions() as session, session.begin():
            if not await watched_by(session, period, self.options):
                log.info("digest %s: no department was watched then; nothing to report", period)
                return None
            return await make_digest(session, period, options=self.options, now=now)

    async def run_logged(self) -> None:
        """`run_due` for the scheduler: a failure is logged, and the next run tries again."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            result = await self.run_due()
            if result is not None:
                log.info("digest %s: %s", result.period, result.outcome.value)
        except Exception:
            log.exception("making the digest failed; the next run (or start-up) tries again")
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self) -> None:
        """Stop a run in progress: its transaction rolls back, so nothing half is kept."""
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def digest_schedule(
    sessions: async_sessionmaker[AsyncSession],
    options: DigestOptions,
    *,
    cron: str = DEFAULT_CRON,
    clock: Callable[[], datetime] = _utcnow,
) -> AsyncIterator[DigestJob]:
    """Run the job at every fire of `cron`, and right away to catch up, while open."""
    job = DigestJob(sessions, options, cron=cron, clock=clock)
    scheduler = AsyncIOScheduler(timezone=options.zone)
    scheduler.add_job(
        job.run_logged,
        job.trigger,
        id=JOB,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,  # late is better than never: run however late the loop woke
    )
    scheduler.add_job(job.run_logged, id=f"{JOB}.start-up")  # once, now: catch up
    job.scheduler = scheduler
    scheduler.start()
    try:
        yield job
    finally:
        scheduler.shutdown(wait=False)
        await job.stop()


def digest_background(
    settings: Settings,
    *,
    cron: str = DEFAULT_CRON,
    long_open_days: int = DEFAULT_LONG_OPEN_DAYS,
    clock: Callable[[], datetime] = _utcnow,
) -> Callable[[FastAPI], AbstractAsyncContextManager[object]]:
    """The schedule as a background context for `create_app` (the notifier's composition root).

    The cron line is checked here, at start-up, so a typo stops the process instead of the digest.
    """
    options = DigestOptions.from_settings(settings, long_open_days=long_open_days)
    digest_trigger(cron, options)

    def start(app: FastAPI) -> AbstractAsyncContextManager[object]:
        return digest_schedule(app.state.sessions, options, cron=cron, clock=clock)

    return start

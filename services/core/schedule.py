"""A job run on a fixed interval, and once right away, while a context is open.

The notifier's escalation timers and the rules worker's silence sweep are both such jobs: run at
start-up, so a service that was down catches up, then every interval. APScheduler runs them on
the event loop; `max_instances=1` and `coalesce` keep a slow run from piling up behind itself.
Each job keeps its own failures from reaching the scheduler (it logs them), and decides for itself
whether a run is once per interval across replicas (the silence sweep claims it in the database).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler


@asynccontextmanager
async def interval_schedule(
    run: Callable[[], Awaitable[None]],
    *,
    job: str,
    every: timedelta,
    clock: Callable[[], datetime],
) -> AsyncIterator[AsyncIOScheduler]:
    """Run `run` right away (at `clock()`) and every `every` after it while the context is open."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        run,
        "interval",
        seconds=every.total_seconds(),
        next_run_time=clock(),
        max_instances=1,
        coalesce=True,
        id=job,
    )
    scheduler.start()
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)

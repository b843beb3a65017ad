"""The monthly job on a controllable clock: it fires once at the configured time, several
schedulers (notifier replicas) make one digest, and a first of the month the service was down
for is made up on its return."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import Delivery, Digest
from services.core.errors import InvalidInput
from services.core.http.app import create_app
from services.notify import digest
from services.notify.digest import DigestJob, DigestOptions, Outcome, Period, digest_schedule
from services.notify.digest.schedule import digest_trigger, due_period
from tests.digest.world import AMS, BOARD_MEMBER, StoryClock, build_digest_world, digests_made
from tests.ingest.conftest import open_client, settings

OPTIONS = DigestOptions(zone=AMS, public_url="https://vroegsignaal.test", pdf=False)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMS).astimezone(UTC)


async def _eventually_made(sessions: async_sessionmaker[AsyncSession], period: str) -> None:
    for _ in range(600):
        if period in dict(await digests_made(sessions)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no digest for {period}")


async def _board_mails(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.email == BOARD_MEMBER)
        )
    return int(found or 0)


def test_the_due_period_is_the_month_before_the_latest_fire() -> None:
    trigger = digest_trigger("0 7 1 * *", OPTIONS)
    assert due_period(trigger, local(2027, 2, 1, 6, 59), OPTIONS) == Period(2026, 12)
    assert due_period(trigger, local(2027, 2, 1, 7, 0), OPTIONS) == Period(2027, 1)
    assert due_period(trigger, local(2027, 2, 28, 23, 0), OPTIONS) == Period(2027, 1)
    # Summer time: 07:00 in Amsterdam is 05:00 UTC.
    assert due_period(trigger, datetime(2027, 7, 1, 4, 59, tzinfo=UTC), OPTIONS) == Period(2027, 5)
    assert due_period(trigger, datetime(2027, 7, 1, 5, 0, tzinfo=UTC), OPTIONS) == Period(2027, 6)
    other = digest_trigger("30 6 2 * *", OPTIONS)  # the 2nd at 06:30
    assert due_period(other, local(2027, 2, 1, 7, 0), OPTIONS) == Period(2026, 12)
    assert due_period(other, local(2027, 2, 2, 6, 30), OPTIONS) == Period(2027, 1)
    with pytest.raises(InvalidInput, match="not a cron line"):
        digest_trigger("first of the month", OPTIONS)


async def test_the_job_fires_once_at_the_configured_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 1, 31, 22, 0))
    job = DigestJob(sessions, OPTIONS, clock=clock)
    outcomes: list[tuple[datetime, str, str]] = []
    while clock.now <= local(2027, 2, 1, 9, 0):
        result = await job.run_due()
        assert result is not None
        outcomes.append((clock.now, str(result.period), result.outcome.value))
        clock.now += timedelta(minutes=15)
    # The first run catches up on December; January's digest is made at 07:00 on the 1st,
    # by the first run at or after it, and only then.
    made = [(at, period) for at, period, outcome in outcomes if outcome == "made"]
    assert made == [(local(2027, 1, 31, 22, 0), "2026-12"), (local(2027, 2, 1, 7, 0), "2027-01")]
    assert {o for at, _, o in outcomes if at > local(2027, 2, 1, 7, 0)} == {"exists"}
    assert await digests_made(sessions) == [("2026-12", 1), ("2027-01", 1)]
    async with sessions() as session:
        january = (await session.scalars(select(Digest).where(Digest.period == "2027-01"))).one()
    assert january.made_at == local(2027, 2, 1, 7, 0)
    assert await _board_mails(sessions) == 2  # one e-mail per digest to the board's member


async def test_the_cron_line_decides_when(sessions: async_sessionmaker[AsyncSession]) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 2, 1, 7, 0))
    job = DigestJob(sessions, OPTIONS, cron="30 6 2 * *", clock=clock)
    result = await job.run_due()
    assert result is not None and str(result.period) == "2026-12"  # January is not due yet
    clock.now = local(2027, 2, 2, 6, 30)
    result = await job.run_due()
    assert result is not None and (str(result.period), result.outcome) == ("2027-01", Outcome.MADE)


async def test_the_scheduler_runs_the_job_at_start_up_and_then_on_the_first_at_seven(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 3, 1, 7, 0))
    async with digest_schedule(sessions, OPTIONS, clock=clock) as job:
        await _eventually_made(sessions, "2027-02")
        assert job.scheduler is not None
        planned = job.scheduler.get_job("notify.digest")
        assert planned is not None
        # APScheduler plans by the real clock: the next first of the month, 07:00 local.
        now = datetime.now(AMS)
        this_month = now.replace(day=1, hour=7, minute=0, second=0, microsecond=0)
        next_month = (this_month + timedelta(days=32)).replace(day=1)
        first = this_month if now < this_month else next_month
        assert planned.next_run_time == first
    assert await digests_made(sessions) == [("2027-02", 1)]  # not the months before


@pytest.fixture
async def second_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Another connection pool on the same database: a second notifier process."""
    engine = make_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


async def test_two_schedulers_make_one_digest(
    sessions: async_sessionmaker[AsyncSession], second_engine: AsyncEngine
) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 2, 1, 7, 0))
    replicas = [sessions, make_sessions(second_engine)]
    # Two replicas start together, each catching up at once; then both fire at 07:00 again.
    async with AsyncExitStack() as stack:
        for replica in replicas:
            await stack.enter_async_context(digest_schedule(replica, OPTIONS, clock=clock))
        await _eventually_made(sessions, "2027-01")
        jobs = [DigestJob(replica, OPTIONS, clock=clock) for replica in replicas]
        results = await asyncio.gather(*(job.run_due() for job in jobs * 3))
    assert {r.outcome for r in results if r is not None} <= {Outcome.EXISTS, Outcome.BUSY}
    assert await digests_made(sessions) == [("2027-01", 1)]
    assert await _board_mails(sessions) == 1


async def test_a_service_down_over_the_first_makes_the_digest_on_return(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 1, 30, 12, 0))
    async with digest_schedule(sessions, OPTIONS, clock=clock):
        await _eventually_made(sessions, "2026-12")
    # Down from 30 January until 3 February: the first of February passed without it.
    clock.now = local(2027, 2, 3, 10, 15)
    async with digest_schedule(sessions, OPTIONS, clock=clock):
        await _eventually_made(sessions, "2027-01")
    async with sessions() as session:
        january = (await session.scalars(select(Digest).where(Digest.period == "2027-01"))).one()
    assert january.made_at == local(2027, 2, 3, 10, 15)
    assert await digests_made(sessions) == [("2026-12", 1), ("2027-01", 1)]


async def test_nothing_is_made_for_a_month_before_anything_was_watched(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await build_digest_world(sessions)  # departments registered on 1 January 2026
    job = DigestJob(sessions, OPTIONS, clock=StoryClock(local(2026, 1, 15, 12, 0)))
    assert await job.run_due() is None  # December 2025: the service was not in use yet
    assert await digests_made(sessions) == []


async def test_the_notifier_runs_the_schedule_as_background_work(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await build_digest_world(sessions)
    clock = StoryClock(local(2027, 2, 1, 7, 0))
    config = settings(public_url="https://vroegsignaal.test")
    app = create_app(
        config,
        database_url,
        routers=digest.routers,
        background=[digest.digest_background(config, cron="0 7 1 * *", clock=clock)],
    )
    async for client in open_client(app):
        await _eventually_made(sessions, "2027-01")
        listed = await client.get("/v1/digests", headers={"Authorization": "Bearer nope"})
        assert listed.status_code == 401
    with pytest.raises(InvalidInput, match="not a cron line"):
        digest.digest_background(config, cron="61 7 1 * *")

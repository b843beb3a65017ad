"""Data silence on a schedule: judged without a signal, once per interval across replicas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, Assessment, Department, ScheduledRun
from services.rules.ruleset import load_ruleset
from services.rules.silence import JOB, silence_schedule, sweep_silence
from tests.ingest.conftest import build_world


async def test_silent_departments_are_judged_once_per_interval_however_many_replicas(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ruleset = load_ruleset()
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        world = await build_world(session)
        quiet = world.departments["FACT-ZWOLLE"]
        await session.execute(  # registered two months ago, never reported
            update(Department).values(created_at=now - timedelta(days=60))
        )

    # Two replicas fire at the same moment: one sweeps, the other stands aside.
    results = await asyncio.gather(
        sweep_silence(sessions, ruleset, now), sweep_silence(sessions, ruleset, now)
    )
    assert sorted(results, key=lambda r: r is None) == [4, None]
    # Within the interval nobody sweeps again.
    assert await sweep_silence(sessions, ruleset, now + timedelta(minutes=30)) is None
    # After it, a sweep runs, but stores nothing new: nothing changed.
    assert await sweep_silence(sessions, ruleset, now + timedelta(hours=2)) == 4

    async with sessions() as session:
        judged = (
            (await session.execute(select(Assessment).where(Assessment.department_id == quiet)))
            .scalars()
            .all()
        )
        alert = (
            await session.execute(select(Alert).where(Alert.department_id == quiet))
        ).scalar_one()
        runs = await session.scalar(select(ScheduledRun.runs).where(ScheduledRun.job == JOB))
    assert len(judged) == 1, "one judgement per change, not one per sweep"
    assert judged[0].level.value == "watch" and judged[0].signal_id is None
    assert judged[0].reasons[0]["rule_id"] == "silence.no_signal"
    assert "60 dagen" in judged[0].reasons[0]["explanation_nl"]
    assert alert.level.value == "watch"
    assert runs == 2


async def test_the_schedule_sweeps_at_start_and_keeps_going(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await build_world(session)
    async with silence_schedule(sessions, load_ruleset(), every=timedelta(seconds=1)):
        for _ in range(100):
            async with sessions() as session:
                runs = await session.scalar(select(func.coalesce(func.max(ScheduledRun.runs), 0)))
            if runs and runs >= 2:
                break
            await asyncio.sleep(0.05)
    assert runs is not None and runs >= 2

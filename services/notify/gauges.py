"""The open-alerts gauge on `/metrics`: unresolved alerts by level and step, read every few
seconds (a count in the database, not a tally kept in memory, so every replica reports the same
and a restart loses nothing)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert
from services.core.domain import AlertStatus, EscalationStep, Level
from services.core.metrics import OPEN_ALERTS

log = logging.getLogger(__name__)
EVERY_SECONDS = 15.0


async def refresh_open_alerts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        rows = await session.execute(
            select(Alert.level, Alert.escalation, func.count())
            .where(Alert.status != AlertStatus.RESOLVED)
            .group_by(Alert.level, Alert.escalation)
        )
        counts = {(level, step): int(n) for level, step, n in rows.all()}
    for level in (Level.WATCH, Level.THREATENED, Level.CRITICAL):
        for step in EscalationStep:
            OPEN_ALERTS.labels(level.value, step.value).set(counts.get((level, step), 0))


@asynccontextmanager
async def open_alerts_gauge(
    sessions: async_sessionmaker[AsyncSession], every: float = EVERY_SECONDS
) -> AsyncIterator[None]:
    """Keep the gauge fresh while the context is open."""

    async def loop() -> None:
        while True:
            try:
                await refresh_open_alerts(sessions)
            except Exception:
                log.warning("could not count open alerts; the gauge keeps its last values")
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

"""What the worker benchmarks measure besides the clock: the SQL statements a process sends,
and the CPU of the PostgreSQL backends that served it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import psutil
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.db import scratch


@dataclass
class Statements:
    """SQL statements this process sends (counted on the engine)."""

    count: int = 0

    def attach(self, engine: AsyncEngine) -> None:
        def counted(*_: Any) -> None:
            self.count += 1

        sa_event.listen(engine.sync_engine, "before_cursor_execute", counted)


def database_of(url: str) -> str:
    """The name of the database a URL points at (the bench's own, for `backend_cpu`)."""
    return make_url(url).database or ""


async def backend_cpu(url: str, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench's database."""
    connection = await asyncpg.connect(**scratch.connect_args(url))
    try:
        pids = [
            row["pid"]
            for row in await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
            )
        ]
    finally:
        await connection.close()
    found = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            found[pid] = times.user + times.system
    return found

"""Which database errors are the infrastructure's passing trouble rather than a bad request or
a bad event: a retry will do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")

# 08: connection exception; 40: transaction rollback (deadlock, serialisation failure);
# 57: operator intervention (the server is starting or shutting down).
RETRYABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "57"})


def sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE of the driver's error (asyncpg keeps it as `sqlstate`), or ''."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


def retryable(exc: DBAPIError) -> bool:
    """A lost connection, a server not accepting work yet, a deadlock: nothing was done."""
    return bool(exc.connection_invalidated) or sqlstate(exc)[:2] in RETRYABLE_SQLSTATE_CLASSES


DEADLOCK_RETRIES = 3


def lost_a_race(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: the whole transaction can simply run again."""
    return isinstance(exc, DBAPIError) and sqlstate(exc) in ("40P01", "40001")


async def in_transaction_retrying(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run `work` in a transaction; run it again (up to three times) when PostgreSQL picked it
    as a deadlock's victim, so concurrent writers queue instead of failing their callers."""
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            async with sessions() as session, session.begin():
                return await work(session)
        except DBAPIError as exc:
            if not lost_a_race(exc) or attempt == DEADLOCK_RETRIES:
                raise
            log.info("deadlock victim; running the transaction again (attempt %d)", attempt + 1)
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")

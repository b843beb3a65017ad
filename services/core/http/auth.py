"""Bearer API keys: who is calling. A short cache keeps the key lookup off the hot path.

A revoked key stops working at once: revoking sends `NOTIFY vroegsignaal_keys` in its own
transaction, and every process LISTENs and forgets its cached keys when one arrives. While a
process is not listening (at start, or after losing the connection) its cache is not used at
all, so a revocation is never missed; the cache only saves work, it never decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Request
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.access import Caller, load_caller
from services.core.auth import KEYS_CHANNEL, api_key_matches, key_prefix
from services.core.db.models import ApiKey, Organisation
from services.core.db.scratch import connect_args

log = logging.getLogger(__name__)

KEY_CACHE_SECONDS = 10.0
_UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="vroegsignaal"'}


class KeyCache:
    """Verified keys by their clear value's hash, each for a few seconds."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Caller]] = {}
        self.listening = False  # trusted only while revocations can reach us

    def clear(self) -> None:
        self._entries.clear()

    def get(self, clear: str) -> Caller | None:
        if not self.listening:
            return None
        entry = self._entries.get(clear)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, clear: str, caller: Caller) -> None:
        if len(self._entries) > 10_000:  # bounded: a flood of valid keys cannot grow it forever
            self._entries.clear()
        self._entries[clear] = (time.monotonic() + self.ttl, caller)


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_UNAUTHORISED)


async def authenticate(sessions: async_sessionmaker[AsyncSession], presented: str) -> Caller:
    """The caller a presented key belongs to, or 401."""
    prefix = key_prefix(presented)
    if prefix is None:
        raise _refuse("The API key is not one of ours (expected `vs_<prefix>_<secret>`).")
    async with sessions() as session:
        row = (
            await session.execute(
                select(ApiKey, Organisation)
                .join(Organisation, ApiKey.organisation_id == Organisation.id)
                .where(ApiKey.prefix == prefix)
            )
        ).one_or_none()
        if row is None or not api_key_matches(presented, row[0].key_hash):
            raise _refuse("Unknown API key.")
        key, organisation = row
        if key.revoked_at is not None:
            raise _refuse("This API key has been revoked.")
        caller = await load_caller(session, organisation, key.role, key=key)
        # Once per cache period, not per request: enough to see which keys are still in use.
        await session.execute(
            update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
        )
        await session.commit()
        return caller


async def current_caller(request: Request) -> Caller:
    """FastAPI dependency: the caller behind `Authorization: Bearer <key>`."""
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _refuse("Send your API key as `Authorization: Bearer <key>`.")
    presented = presented.strip()
    cache: KeyCache = request.app.state.key_cache
    caller = cache.get(presented)
    if caller is None:
        caller = await authenticate(request.app.state.sessions, presented)
        cache.put(presented, caller)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


@asynccontextmanager
async def revocations(cache: KeyCache, database_url: str) -> AsyncIterator[None]:
    """LISTEN for revocations while the context is open; reconnect when the connection drops."""

    def forget(*_: Any) -> None:
        cache.clear()

    def lost(*_: Any) -> None:
        cache.listening = False
        cache.clear()

    connection: asyncpg.Connection | None = None

    async def keep_listening() -> None:
        nonlocal connection
        while True:
            if not cache.listening:
                if connection is not None and not connection.is_closed():
                    connection.terminate()
                try:
                    connection = await asyncpg.connect(**connect_args(database_url))
                    await connection.add_listener(KEYS_CHANNEL, forget)
                    connection.add_termination_listener(lost)
                    cache.clear()
                    cache.listening = True
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning(
                        "LISTEN %s failed; keys are checked on every request: %r",
                        KEYS_CHANNEL,
                        exc,
                    )
            await asyncio.sleep(2.0)

    task = asyncio.create_task(keep_listening())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        cache.listening = False
        if connection is not None and not connection.is_closed():
            with suppress(OSError, asyncpg.PostgresError):
                await connection.close(timeout=2)

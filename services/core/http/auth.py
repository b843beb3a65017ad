"""Bearer API keys: who is calling. A short cache keeps the key lookup off the hot path.

A revoked key stops working within `KEY_CACHE_SECONDS`; that is the price of not reading the
database on every request of a busy provider system.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.access import Caller, load_caller
from services.core.auth import api_key_matches, key_prefix
from services.core.db.models import ApiKey, Organisation

KEY_CACHE_SECONDS = 10.0
_UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="vroegsignaal"'}


class KeyCache:
    """Verified keys by their clear value's hash, each for a few seconds."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, clear: str) -> Caller | None:
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

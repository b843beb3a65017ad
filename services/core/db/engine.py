"""The async engine and session factory: one per process, made at its composition root."""

from __future__ import annotations

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def async_url(url: str) -> str:
    """The same server in asyncpg's dialect: `postgresql://` → `postgresql+asyncpg://`."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine with a pool sized for one process.

    No `pool_pre_ping`: it costs three round trips per checkout, more than a whole signal. After a
    server restart each stale connection fails once (the API answers 503 with Retry-After, the
    connection is discarded) and the pool refills with fresh ones.
    """
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        json_serializer=dump_json,
        json_deserializer=orjson.loads,
    )


def dump_json(value: object) -> str:
    """A JSON(B) column's text, with orjson: several times faster than `json.dumps`, which the
    rules worker felt (thousands of reports and reasons a batch). Keys that are not strings are
    written as strings, as `json.dumps` does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (we return them in responses)."""
    return async_sessionmaker(engine, expire_on_commit=False)

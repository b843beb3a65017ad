"""Throw-away databases on a server: the test suite and the benchmarks each make their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from services.core.db import migrate


def connect_args(url: str, *, database: str | None = None) -> dict[str, Any]:
    """asyncpg keyword arguments for a URL (socket URLs of embedded PostgreSQL too)."""
    parsed = make_url(url)
    args: dict[str, Any] = {
        "user": parsed.username or "postgres",
        "database": database or parsed.database or "postgres",
    }
    if parsed.password:
        args["password"] = parsed.password
    host = parsed.query.get("host") or parsed.host
    if host:
        args["host"] = host
    if parsed.port:
        args["port"] = parsed.port
    return args


async def _maintenance(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(**connect_args(server_url, database="postgres"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_database(
    server_url: str, *, prefix: str, migrated: bool = True
) -> AsyncIterator[str]:
    """A new database on the server (migrated to head unless told not to), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _maintenance(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            await migrate.upgrade(url)
        yield url
    finally:
        await _maintenance(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Fuzz `/v1/subscriptions` and `/v1/deliveries` with schemathesis on a live server: whatever a
client sends, the answer is never a 5xx and always matches the documented schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from services.core.db.base import Base
from services.core.db.engine import make_engine, make_sessions
from services.core.http.app import create_app
from services.notify import deliveries
from tests.ingest.conftest import World, build_world
from tests.notify.deliveries.conftest import delivery_settings
from tests.support.fuzzing import examples, fuzz_operation, operations
from tests.support.live_server import LiveServer


async def _public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]  # every name is public here: no real DNS lookups while fuzzing


async def _reset(database_url: str, *, build: bool) -> World | None:
    """Empty every table; with `build`, make the world again."""
    engine = make_engine(database_url, pool_size=1)
    try:
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        if not build:
            return None
        async with make_sessions(engine)() as session, session.begin():
            return await build_world(session)
    finally:
        await engine.dispose()


def _app(database_url: str) -> Any:
    app = create_app(
        delivery_settings(webhook_allow_private=False), database_url, routers=deliveries.routers
    )
    app.state.webhook_resolver = _public
    return app


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    world = asyncio.run(_reset(database_url, build=True))
    assert world is not None
    with LiveServer(_app(database_url)) as server:
        yield server, world
    asyncio.run(_reset(database_url, build=False))  # leave it empty, as other tests expect


def _operations() -> list[str]:
    app = _app("postgresql://nobody@localhost/none")
    return operations(app, lambda path: path.startswith(("/v1/subscriptions", "/v1/deliveries")))


@pytest.mark.parametrize("label", _operations())
def test_no_server_errors(label: str, live: tuple[LiveServer, World]) -> None:
    """Random ids name nothing of ours (404), and an organisation has at most 20 endpoints
    (409): schema-valid requests refused on purpose are not a failure here (fuzzing.py)."""
    server, world = live
    fuzz_operation(server.base, label, world.auth("provider_a"), max_examples=examples(25))

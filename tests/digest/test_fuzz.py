"""Schema-based fuzzing of `/v1/digests` with schemathesis against a real server: whatever the
period, the suffix or the role, no answer is a 5xx or breaks the documented schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.http.app import create_app
from services.notify import digest
from tests.digest.world import AMS
from tests.ingest.conftest import World, build_world
from tests.ingest.test_fuzz import _reset
from tests.support.fuzzing import examples, fuzz_operation, operations
from tests.support.live_server import LiveServer

ROLES = ("governance", "provider_a")


async def _world_with_a_digest(database_url: str) -> World:
    await _reset(database_url, build=False)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            world = await build_world(session)
            await digest.make_digest(
                session,
                digest.Period(2026, 10),
                options=digest.DigestOptions(zone=AMS, public_url="https://x.test"),
                now=datetime(2026, 11, 1, 6, tzinfo=UTC),
            )
            return world
    finally:
        await engine.dispose()


def _app(database_url: str) -> Any:
    config = Settings(rate_limit_per_second=1e6, rate_limit_burst=1e6)
    return create_app(config, database_url, routers=digest.routers)


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    world = asyncio.run(_world_with_a_digest(database_url))
    with LiveServer(_app(database_url)) as server:
        yield server, world
    asyncio.run(_reset(database_url, build=False))


def _operations() -> list[str]:
    app = _app("postgresql://nobody@localhost/none")
    return operations(app, lambda path: path.startswith("/v1/digests"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", _operations())
def test_no_server_errors_on_the_digest_routes(
    label: str, role: str, live: tuple[LiveServer, World]
) -> None:
    server, world = live
    fuzz_operation(server.base, label, world.auth(role), max_examples=examples(25))

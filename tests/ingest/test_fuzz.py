"""Schema-based fuzzing of the ingest API with schemathesis, against a real server process.

Every operation of the app's own OpenAPI document is called with generated requests and a
valid provider key. No answer may be a 5xx or break its own documented schema, and a refused
request may leave no signal behind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance
from sqlalchemy import func, select

from services import ingest
from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import Signal
from services.core.http.app import create_app
from tests.ingest.conftest import World, build_world
from tests.support.live_server import LiveServer


async def _count_signals(database_url: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(Signal)) or 0)
    finally:
        await engine.dispose()


async def _reset(database_url: str, *, build: bool) -> World | None:
    engine = make_engine(database_url, pool_size=1)
    try:
        from sqlalchemy import text

        from services.core.db.base import Base

        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        if not build:
            return None
        async with make_sessions(engine)() as session, session.begin():
            return await build_world(session)
    finally:
        await engine.dispose()


def _server(database_url: str) -> LiveServer:
    """uvicorn serving the ingest app in a thread, on its own event loop."""
    app = create_app(
        Settings(rate_limit_per_second=1e6, rate_limit_burst=1e6),
        database_url,
        routers=ingest.routers(),
    )
    return LiveServer(app)


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    world = asyncio.run(_reset(database_url, build=True))
    assert world is not None
    with _server(database_url) as server:
        yield server, world
    asyncio.run(_reset(database_url, build=False))  # leave it empty, as other tests expect


def _operations() -> list[str]:
    """`METHOD /path` of every documented operation (the document needs no database)."""
    app = create_app(Settings(), "postgresql://nobody@localhost/none", routers=ingest.routers())
    return [
        f"{method.upper()} {path}"
        for path, item in sorted(app.openapi()["paths"].items())
        for method in item
    ]


@pytest.mark.parametrize("label", _operations())
def test_no_server_errors_and_refusals_store_nothing(
    label: str, live: tuple[LiveServer, World], database_url: str
) -> None:
    server, world = live
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
    method, path = label.split(" ", 1)
    operation = schema[path][method.lower()]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=int(os.environ.get("VROEGSIGNAAL_FUZZ_EXAMPLES", "40")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Case[Any]) -> None:
        before = asyncio.run(_count_signals(database_url))
        headers = {**dict(case.headers or {}), **world.auth("provider_a")}
        # Business rules (an observation older than two years, an unknown region) refuse some
        # schema-valid requests on purpose, so "valid data is accepted" is not a check here.
        response = case.call_and_validate(
            base_url=server.base, headers=headers, excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code < 500
        if response.status_code >= 400:
            assert asyncio.run(_count_signals(database_url)) == before

    check()

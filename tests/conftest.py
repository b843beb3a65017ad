"""Shared fixtures: one fresh PostgreSQL database per test run, migrated to head.

With `VROEGSIGNAAL_TEST_DATABASE_URL` set, the run creates its database on that server (the
development machines and CI use the server at 127.0.0.1:5432); unset, it starts an embedded
server in a temporary directory. Either way the run's database is dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.db.base import Base
from services.core.db.engine import make_engine, make_sessions
from services.core.db.scratch import scratch_database
from tests.support.needs import need
from tests.support.tansu import broker_available, tansu_broker


def _server_url() -> Iterator[str]:
    configured = os.environ.get("VROEGSIGNAAL_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from services.core.embedded import embedded_postgres

    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-test-") as tmp,
        embedded_postgres(Path(tmp)) as url,
    ):
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu) for the whole run; see tests/support/tansu.py."""
    need(broker_available(), "Kafka")
    with tansu_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server for this run (maintenance database URL)."""
    yield from _server_url()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A database of our own on that server, migrated to head; dropped after the run."""
    async with scratch_database(server_url, prefix="vroegsignaal_test") as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a clean database: every table is emptied after the test."""
    yield make_sessions(engine)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running `vroegsignaal` as a subprocess against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VROEGSIGNAAL_")}
    env["VROEGSIGNAAL_DATABASE_URL"] = database_url
    env["VROEGSIGNAAL_DATA_DIR"] = str(tmp_path / "data")
    return env

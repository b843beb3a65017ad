"""The migrations build the schema the models describe, and can be taken down again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from services.core.db import migrate
from services.core.db.base import Base
from services.core.db.engine import make_engine
from services.core.db.scratch import scratch_database


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own, so going down to base cannot disturb the other tests."""
    async with scratch_database(server_url, prefix="vroegsignaal_mig", migrated=False) as url:
        yield url


async def _tables(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def test_upgrade_from_empty_creates_every_model_table(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    assert await _tables(empty_database) == set(Base.metadata.tables) | {"alembic_version"}


async def test_models_and_migrations_agree(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    await migrate.check(empty_database)  # raises if autogenerate finds any difference


async def test_downgrade_to_base_removes_everything_and_upgrade_again_works(
    empty_database: str,
) -> None:
    await migrate.upgrade(empty_database)
    await migrate.downgrade(empty_database, "base")
    assert await _tables(empty_database) == {"alembic_version"}
    await migrate.upgrade(empty_database)
    assert "signals" in await _tables(empty_database)

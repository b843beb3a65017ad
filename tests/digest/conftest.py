"""The command line for the digest's tests: in-process, on the test database."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.cli.conftest import Cli


@pytest.fixture
def cli(cli_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]) -> Cli:
    """A CLI on a clean database (the `sessions` fixture empties it after the test)."""
    return Cli({**cli_env, "COLUMNS": "200"})

"""Run `vroegsignaal` commands in-process against the test database, as a script would."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.cli import app


@dataclass
class Cli:
    """Invoke the CLI with the test database in its environment."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> Result:
        # A thread of its own: the command calls asyncio.run(), which cannot nest in the loop
        # that runs an async test.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(
                CliRunner().invoke, app, list(args), env=self.env, input=input
            ).result()

    def json(self, *args: str, input: str | None = None) -> Any:
        """Run with `--json`, insist on success, and return the parsed document."""
        result = self(*args, "--json", input=input)
        assert result.exit_code == 0, result.stderr + result.stdout
        return json.loads(result.stdout)


@pytest.fixture
def cli(cli_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]) -> Cli:
    """A CLI on a clean database (the `sessions` fixture empties it after the test)."""
    return Cli({**cli_env, "COLUMNS": "200"})


@pytest.fixture
def seeded(cli: Cli) -> Cli:
    """The CLI on a database with the reference data loaded."""
    cli.json("seed")
    return cli

"""Alembic driven from code: `vroegsignaal migrate`, the tests and `up` all go through here."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from services.core.db.engine import async_url


def alembic_config(url: str) -> Config:
    """A config pointing at the packaged revisions, so it works from any directory."""
    config = Config()
    config.set_main_option("script_location", str(Path(str(files("migrations")))))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def schema_head(url: str = "") -> str:
    """The revision this code expects the database to be at (the newest migration)."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found in the package")
    return head


def known_revisions(url: str = "") -> frozenset[str]:
    """Every revision this code ships: a database at another one was migrated by newer code."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return frozenset(r.revision for r in script.walk_revisions())


async def _run(url: str, action: str, revision: str) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_in_sync, url, action, revision)
    finally:
        await engine.dispose()


def _in_sync(sync_connection: object, url: str, action: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_connection
    if action == "upgrade":
        command.upgrade(config, revision)
    elif action == "downgrade":
        command.downgrade(config, revision)
    else:
        command.check(config)


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision` (head by default) in one transaction."""
    await _run(url, "upgrade", revision)


async def downgrade(url: str, revision: str = "base") -> None:
    """Take the schema down to `revision`; `base` removes every table."""
    await _run(url, "downgrade", revision)


async def check(url: str) -> None:
    """Raise if the models and the migrations disagree (Alembic's autogenerate comparison)."""
    await _run(url, "check", "head")


__all__ = ["AsyncConnection", "check", "downgrade", "upgrade"]

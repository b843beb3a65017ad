"""Changing the ruleset without a restart: `kill -HUP <pid>` loads it again.

A domain expert edits the file, checks it (`vroegsignaal rules check`), and the running workers
take it up on SIGHUP. A file with problems is refused: the worker keeps judging with the ruleset
it has and logs why. Each version taken up is recorded (`ruleset_versions`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.errors import InvalidInput
from services.rules.ruleset import Ruleset, load_ruleset, record_ruleset

log = logging.getLogger(__name__)


class RulesetHolder:
    """The ruleset in use; callable, so the worker asks it for the current one per event."""

    def __init__(self, ruleset: Ruleset, path: Path | None = None) -> None:
        self.current = ruleset
        self.path = path

    def __call__(self) -> Ruleset:
        return self.current

    def reload(self) -> bool:
        """Load the file again; False (and the old ruleset kept) when it has problems."""
        try:
            fresh = load_ruleset(self.path)
        except InvalidInput as exc:
            log.error("ruleset not reloaded, the one in use stays: %s", exc)
            return False
        previous, self.current = self.current, fresh
        log.info("ruleset reloaded: %s → %s", previous.version, fresh.version)
        return True


@asynccontextmanager
async def reload_on_sighup(
    holder: RulesetHolder, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RulesetHolder]:
    """While open, SIGHUP reloads the ruleset and records its version."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        if holder.reload():
            async with sessions() as session, session.begin():
                await record_ruleset(session, holder.current)

    def on_sighup() -> None:
        task = loop.create_task(reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        yield holder
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await asyncio.gather(*pending, return_exceptions=True)

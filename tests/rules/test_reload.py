"""A changed ruleset is taken up on SIGHUP; a broken one is refused and the old one stays."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import RulesetVersion
from services.rules.reload import RulesetHolder, reload_on_sighup
from services.rules.ruleset import PACKAGED, load_ruleset


async def test_sighup_reloads_the_ruleset_and_records_its_version(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    path = tmp_path / "rules.yaml"
    original = PACKAGED.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    holder = RulesetHolder(load_ruleset(path), path)
    assert holder().version == "2026.11.1"

    async with reload_on_sighup(holder, sessions):
        path.write_text(original.replace('version: "2026.11.1"', 'version: "2026.11.2"'), "utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if holder().version == "2026.11.2":
                break
            await asyncio.sleep(0.02)
        assert holder().version == "2026.11.2"

        path.write_text(original.replace("kind: threshold", "kind: thresold", 1), "utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert holder().version == "2026.11.2", "a broken file is refused; the old one stays"

    async with sessions() as session:
        recorded = (await session.execute(select(RulesetVersion.version))).scalars().all()
    assert recorded == ["2026.11.2"]

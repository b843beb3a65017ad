"""`vroegsignaal digest --period YYYY-MM [--force]`: made on demand with progress, left alone when
it exists, made again with --force; bad periods refused; two processes make one digest."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Digest
from services.notify.digest import Period
from tests.cli.conftest import Cli
from tests.digest.world import AMS, build_digest_world, digests_made

VROEGSIGNAAL = str(Path(sys.executable).with_name("vroegsignaal"))


def _last_month() -> Period:
    return Period.of(datetime.now(UTC), AMS).previous()


async def _made_at(sessions: async_sessionmaker[AsyncSession], period: str) -> datetime:
    async with sessions() as session:
        found = await session.scalar(select(Digest.made_at).where(Digest.period == period))
    assert found is not None
    return found


async def test_the_command_makes_a_digest_leaves_it_and_remakes_it_with_force(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await build_digest_world(sessions)
    period = str(_last_month())

    made = cli("digest", "--period", period)
    assert made.exit_code == 0, made.stderr + made.stdout
    assert f"Made: the digest of {period}" in made.stdout
    assert "1 e-mail(s) to the governance board" in made.stdout
    for step in (
        "lezen…",
        "Cijfers, grafieken en PDF maken (6 afdelingen",
        "Opslaan en publiceren",
    ):
        assert step in made.stderr, made.stderr  # progress, on standard error
    first = await _made_at(sessions, period)

    again = cli("digest", "--period", period)
    assert again.exit_code == 0 and "nothing done" in again.stdout and "--force" in again.stdout
    assert await _made_at(sessions, period) == first

    remade = cli("digest", "--period", period, "--force", "--json")
    assert remade.exit_code == 0, remade.stderr
    document = json.loads(remade.stdout)
    assert (document["outcome"], document["published"], document["emails"]) == ("remade", True, 1)
    assert document["links"]["pdf"] == f"/v1/digests/{period}.pdf"
    assert remade.stderr == ""  # --json: only the document
    assert await _made_at(sessions, period) > first
    assert await digests_made(sessions) == [(period, 2)]  # published twice: two versions

    quiet = cli("digest", "--period", period, "--force", "--no-publish", "--json")
    assert json.loads(quiet.stdout)["published"] is False
    async with sessions() as session:
        digest = (await session.scalars(select(Digest))).one()
    assert digest.status.value == "made" and digest.published_at is None
    assert await digests_made(sessions) == [(period, 2)]


async def test_the_command_refuses_bad_and_unfinished_periods(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await build_digest_world(sessions)
    this_month = Period.of(datetime.now(UTC), AMS)
    for period, message in (
        ("2026-13", "expected a month as YYYY-MM"),
        ("november", "expected a month as YYYY-MM"),
        (str(this_month), "is not over yet"),
        (str(this_month.shift(5)), "is not over yet"),
    ):
        result = cli("digest", "--period", period)
        assert result.exit_code == 2, (period, result.stdout)
        assert message in result.stderr, result.stderr
    assert await digests_made(sessions) == []


async def test_two_processes_make_one_digest(
    cli_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await build_digest_world(sessions)
    period = str(_last_month())

    async def run() -> tuple[int, dict[str, object]]:
        process = await asyncio.create_subprocess_exec(
            VROEGSIGNAAL,
            "digest",
            "--period",
            period,
            "--json",
            env=cli_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode in (0, 1), err.decode()
        return process.returncode, json.loads(out)

    results = await asyncio.gather(run(), run())
    outcomes = sorted(str(document["outcome"]) for _, document in results)
    assert outcomes in (["busy", "made"], ["exists", "made"]), outcomes
    assert {code for code, document in results if document["outcome"] == "busy"} <= {1}
    assert await digests_made(sessions) == [(period, 1)]

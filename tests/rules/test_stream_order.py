"""Each signal is judged as if it had come alone: with the department's signals before it in the
stream, never with its next ones, even when those are stored already (a provider sending its
reports faster than the worker judges them, a backlog, one request with several months).

The worker reads a department in full when it does not hold it (`loading._HISTORY`); before,
that reading took every stored signal, so what a judgement saw depended on how far behind the
worker was. Here the signals are stored first and judged after, batch by batch, with no cache:
every judgement reads in full.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Assessment, Organisation, Signal
from services.core.domain import SignalKind
from services.rules.ruleset import load_ruleset
from services.rules.worker import Judgement, judge_batch
from tests.ingest.conftest import PROVIDER_A, build_world

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
# 5 %, 12.5 % and 20 % of 20 FTE vacant: ok, then watch (10 %), then watch again. Judged with
# the newest (20 %) each time, the three would be watch, watch and threatened (15 % for three
# reports in a row) — critical here, as the region's only FACT team.
VACANCIES = (1.0, 2.5, 4.0)


async def _world(sessions: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, uuid.UUID]:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        provider = await session.scalar(
            select(Organisation.id).where(Organisation.agb_code == PROVIDER_A)
        )
    assert provider is not None
    return world.departments["FACT-ZWOLLE"], provider


def _signals(
    department: uuid.UUID, provider: uuid.UUID, received: list[datetime]
) -> list[dict[str, Any]]:
    """One staffing report a day, the oldest first, received at the given moments."""
    return [
        {
            "id": uuid.uuid4(),
            "department_id": department,
            "kind": SignalKind.STAFFING,
            "observed_at": NOW - timedelta(days=len(VACANCIES) - n),
            "received_at": received[n],
            "data": {"fte_budgeted": 20.0, "vacancies_fte": fte},
            "note": None,
            "source": "api",
            "submitted_by_id": provider,
            "body_hash": "test",
        }
        for n, fte in enumerate(VACANCIES)
    ]


async def _judge_in_batches(
    sessions: async_sessionmaker[AsyncSession],
    rows: list[dict[str, Any]],
    batches: list[list[int]],
) -> list[tuple[str, list[str]]]:
    """Store every signal, then judge them batch by batch; each assessment's level and rules."""
    async with sessions() as session, session.begin():
        await session.execute(insert(Signal), rows)
    ruleset = load_ruleset()
    for number, batch in enumerate(batches):
        judgements = [
            Judgement(rows[n]["department_id"], SignalKind.STAFFING, rows[n]["id"]) for n in batch
        ]
        async with sessions() as session, session.begin():
            await judge_batch(session, ruleset, judgements, NOW + timedelta(minutes=number))
    async with sessions() as session:
        stored = (await session.execute(select(Assessment).order_by(Assessment.id))).scalars()
        return [(a.level.value, [r["rule_id"] for r in a.reasons]) for a in stored]


async def test_signals_sent_one_by_one_are_not_judged_with_the_next_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    department, provider = await _world(sessions)
    received = [NOW - timedelta(seconds=3 - n) for n in range(3)]  # three requests
    judged = await _judge_in_batches(
        sessions, _signals(department, provider, received), [[0], [1], [2]]
    )
    assert judged == [
        ("ok", []),
        ("watch", ["staffing.vacancies_high"]),
        ("watch", ["staffing.vacancies_high"]),
    ]


async def test_one_requests_signals_split_over_batches_are_judged_in_their_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    department, provider = await _world(sessions)
    received = [NOW - timedelta(seconds=1)] * 3  # one request: one receipt time
    judged = await _judge_in_batches(
        sessions, _signals(department, provider, received), [[0], [1, 2]]
    )
    assert [level for level, _ in judged] == ["ok", "watch", "watch"]


async def test_what_was_judged_before_is_read_whatever_its_receipt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A signal received later but judged earlier (two requests committed the other way round)
    is part of the department's past: a full reading keeps it."""
    department, provider = await _world(sessions)
    received = [NOW - timedelta(seconds=3 - n) for n in range(3)]
    judged = await _judge_in_batches(
        sessions, _signals(department, provider, received), [[2], [0], [1]]
    )
    # 20 % first; then the two older days, each judged with the newest report (20 %) it
    # already has: the run of reports at 15 % or more goes on (consecutive 1, 2, 3).
    assert [level for level, _ in judged] == ["watch", "watch", "critical"]

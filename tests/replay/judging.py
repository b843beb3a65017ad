"""Judge replayed signals with the rules engine as the worker would have, at the time they report.

The rules worker judges a signal when it arrives, with the clock of today. A replay of 2018
figures judged today would see every department silent for years and every admission stop years
old; so the tests and the figures in docs/replay.md judge each replayed signal at its own
`observed_at` (plus an hour), in the order of observation: what the engine would have said in
March 2018.

Also a script, for the full-file figures of docs/replay.md (after `vroegsignaal signals replay`):
`VROEGSIGNAAL_DATABASE_URL=... python -m tests.replay.judging`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import Assessment, Signal
from services.core.domain import SignalSource
from services.rules.ruleset import Ruleset, load_ruleset
from services.rules.worker import judge

AFTER = timedelta(hours=1)  # judged an hour after the observation, as a worker a bit later would


@dataclass(frozen=True)
class Judged:
    """The last judgement of each replayed department, and how long judging took."""

    levels: Counter[str]
    rule_ids: Counter[str]  # departments whose last judgement names the rule
    departments: int
    signals: int
    seconds: float


async def judge_replayed(
    sessions: async_sessionmaker[AsyncSession], ruleset: Ruleset, *, batch: int = 200
) -> Judged:
    """Judge every replayed signal not judged yet, oldest observation first, in batches."""
    started = time.monotonic()
    async with sessions() as session:
        judged = select(Assessment.signal_id).where(Assessment.signal_id.is_not(None))
        pending = (
            await session.execute(
                select(Signal.id, Signal.department_id, Signal.kind, Signal.observed_at)
                .where(Signal.source == SignalSource.REPLAY, Signal.id.not_in(judged))
                .order_by(Signal.observed_at, Signal.department_id, Signal.kind)
            )
        ).all()
    departments: set[uuid.UUID] = set()
    for start in range(0, len(pending), batch):
        async with sessions() as session, session.begin():
            for signal_id, department_id, kind, observed_at in pending[start : start + batch]:
                await judge(
                    session,
                    ruleset,
                    department_id,
                    observed_at + AFTER,
                    trigger=kind,
                    signal_id=signal_id,
                )
                departments.add(department_id)
    levels: Counter[str] = Counter()
    rule_ids: Counter[str] = Counter()
    last: dict[uuid.UUID, Assessment] = {}
    async with sessions() as session:
        # oldest first: the last one kept per department is its current judgement
        for assessment in await session.scalars(
            select(Assessment).order_by(Assessment.assessed_at, Assessment.id)
        ):
            last[assessment.department_id] = assessment
    for assessment in last.values():
        levels[assessment.level.value] += 1
        rule_ids.update({reason["rule_id"] for reason in assessment.reasons})
    return Judged(levels, rule_ids, len(departments), len(pending), time.monotonic() - started)


async def _main(url: str) -> None:
    engine = make_engine(url, pool_size=2)
    try:
        result = await judge_replayed(make_sessions(engine), load_ruleset())
    finally:
        await engine.dispose()
    total = sum(result.levels.values())
    print(f"judged {result.signals} signals of {result.departments} departments")
    print(f"in {result.seconds:.1f} s")
    print("| level | departments | share |\n| --- | ---: | ---: |")
    for level in ("ok", "watch", "threatened", "critical"):
        count = result.levels.get(level, 0)
        print(f"| {level} | {count} | {count / total:.1%} |")
    print("\n| rule id | departments |\n| --- | ---: |")
    for rule_id, count in result.rule_ids.most_common(12):
        print(f"| `{rule_id}` | {count} |")


if __name__ == "__main__":
    database = os.environ.get("VROEGSIGNAAL_DATABASE_URL")
    if not database:
        sys.exit("set VROEGSIGNAAL_DATABASE_URL to the database the file was replayed into")
    asyncio.run(_main(database))

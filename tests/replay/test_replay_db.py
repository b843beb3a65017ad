"""The replay end to end on PostgreSQL: store the sample twice, nothing doubles; then the rules
engine judges the departments, and what a user would check holds."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Assessment, Department, Organisation, OutboxEvent, Signal
from services.core.domain import OrgKind, SignalKind, SignalSource
from services.core.events.types import EventType
from services.core.reference import seed_reference_data
from services.ingest.replay_nza import plan_replay
from services.ingest.replay_nza_store import store_plan
from services.rules.ruleset import load_ruleset
from tests.replay.judging import judge_replayed

Sessions = async_sessionmaker[AsyncSession]


async def _counts(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:

        async def count(model: type, *where: object) -> int:
            query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
            return int(await session.scalar(query) or 0)

        return {
            "providers": await count(Organisation, Organisation.kind == OrgKind.PROVIDER),
            "departments": await count(Department),
            "signals": await count(Signal),
            "received_events": await count(
                OutboxEvent, OutboxEvent.type == EventType.SIGNAL_RECEIVED.value
            ),
        }


async def _current(sessions: Sessions, name: str) -> tuple[str, set[str]]:
    """The level and rule ids of the current assessment of the department with this name."""
    async with sessions() as session:
        department = (
            await session.scalars(select(Department).where(Department.name.startswith(name)))
        ).one()
        latest = (
            await session.scalars(
                select(Assessment)
                .where(Assessment.department_id == department.id)
                .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                .limit(1)
            )
        ).one()
    return latest.level.value, {reason["rule_id"] for reason in latest.reasons}


async def test_replay_stores_once_and_the_rules_judge_real_figures(
    sessions: Sessions, sample_rows: list[dict[str, str]]
) -> None:
    plan = plan_replay(sample_rows)
    async with sessions() as session, session.begin():
        await seed_reference_data(session)

    async with sessions() as session, session.begin():
        first = await store_plan(session, plan, file="sample.csv", received_at=datetime.now(UTC))
    assert (first.providers_created, first.departments_created) == (81, 227)
    assert first.stored_by_kind == {"admission_stop": 34, "closure": 12, "waitlist": 192}
    assert (first.signals_stored, first.signals_already_stored) == (238, 0)
    assert first.signals_refused == {}
    assert first.rows_skipped["basic_ggz"] == 70
    counts = await _counts(sessions)
    assert counts == {"providers": 81, "departments": 227, "signals": 238, "received_events": 238}
    async with sessions() as session:
        sources = set(await session.scalars(select(Signal.source).distinct()))
    assert sources == {SignalSource.REPLAY}

    # The same file again: nothing new, nothing doubled.
    async with sessions() as session, session.begin():
        second = await store_plan(session, plan, file="sample.csv", received_at=datetime.now(UTC))
    assert (second.providers_created, second.providers_existing) == (0, 81)
    assert (second.departments_created, second.departments_existing) == (0, 227)
    assert (second.signals_stored, second.signals_already_stored) == (0, 238)
    assert await _counts(sessions) == counts

    judged = await judge_replayed(sessions, load_ruleset())
    assert (judged.departments, judged.signals) == (227, 238)
    assert sum(judged.levels.values()) == 227

    # A treatment wait of 23 weeks is beyond the Treeknorm of 10.
    level, rules = await _current(sessions, "Altrecht Kinder- en jeugdpsychiatrie Utrecht")
    assert "waitlist.behandel_over_treeknorm" in rules and level in ("threatened", "critical")
    # "Aanmeldstop", observed the day it is reported: an admission stop in its first days.
    level, rules = await _current(sessions, "MoleMann Mental Health Hilversum – Jeugd")
    assert "admission_stop.active" in rules and level != "ok"
    # A cliëntenstop "per 03-10-2017", five months old on the Peildatum.
    level, rules = await _current(sessions, "De Praktijk IJmond Ijmuiden – Jeugd")
    assert "admission_stop.longer_than_two_weeks" in rules and level in ("threatened", "critical")
    # "PsyQ vestiging is gesloten": a full closure, effective by the Peildatum.
    level, rules = await _current(sessions, "PsyQ Spijkenisse – Volwassenen – Persoonlijkheid")
    assert "closure.full_within_90_days" in rules and level == "critical"
    # A treatment wait of exactly 10 weeks meets the norm; a VIP team with short waits is fine.
    level, rules = await _current(sessions, "Accare Groningen – Adolescenten – Intensieve zorg")
    assert (level, rules) == ("ok", set())
    level, rules = await _current(sessions, "Bavo Europoort Vroege Interventie Psychose (VIP)")
    assert (level, rules) == ("ok", set())
    # Every replayed department was judged once per signal, at the time of its report.
    async with sessions() as session:
        assessed = int(await session.scalar(select(func.count()).select_from(Assessment)) or 0)
        kinds = set(await session.scalars(select(Signal.kind).distinct()))
    assert assessed == 238
    assert kinds == {SignalKind.WAITLIST, SignalKind.ADMISSION_STOP, SignalKind.CLOSURE}

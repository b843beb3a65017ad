"""What a batch of judgements writes of the alerts it read (`services/rules/batch.py`).

The alerts are written by Core statements, not the ORM's unit of work, and must keep its
promise: a row is updated in the columns the batch changed and no others, so what the notifier
changed meanwhile in other columns of the same alert (escalation, acknowledgement) stays.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, Organisation, Signal
from services.core.domain import AlertStatus, EscalationStep, SignalKind
from services.rules.batch import Batch
from services.rules.loading import load_departments
from services.rules.ruleset import load_ruleset
from services.rules.worker import Judgement, judge_batch
from tests.ingest.conftest import PROVIDER_A, build_world


async def _open_alerts(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> tuple[list[uuid.UUID], list[Alert]]:
    """Two departments judged short-staffed: an open alert each."""
    async with sessions() as session, session.begin():
        world = await build_world(session)
        provider = await session.scalar(
            select(Organisation.id).where(Organisation.agb_code == PROVIDER_A)
        )
        departments = [world.departments["FACT-ZWOLLE"], world.departments["HIC-ZWOLLE"]]
        ids = [uuid.uuid4() for _ in departments]
        rows: list[dict[str, object]] = [
            {
                "id": signal_id,
                "department_id": department,
                "kind": SignalKind.STAFFING,
                "observed_at": now - timedelta(days=1),
                "received_at": now,
                "data": {"fte_budgeted": 20.0, "vacancies_fte": 5.0},
                "note": None,
                "source": "api",
                "submitted_by_id": provider,
                "body_hash": "test",
            }
            for department, signal_id in zip(departments, ids, strict=True)
        ]
        await session.execute(insert(Signal), rows)
        judgements = [
            Judgement(department, SignalKind.STAFFING, signal_id)
            for department, signal_id in zip(departments, ids, strict=True)
        ]
        await judge_batch(session, load_ruleset(), judgements, now)
    async with sessions() as session:
        alerts = list((await session.scalars(select(Alert).order_by(Alert.opened_at))).all())
    return departments, alerts


async def test_a_batch_writes_the_columns_it_changed_and_leaves_the_others(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    departments, alerts = await _open_alerts(sessions, now)
    fact, hic = departments
    assert {a.department_id for a in alerts} == {fact, hic}

    async with sessions() as session, session.begin():
        loaded = await load_departments(session, departments, now)
        batch = await Batch.open(session, [entry.facts for entry in loaded.values()])
        mine = batch.alerts[fact]
        # Meanwhile the notifier escalates and someone acknowledges, in other columns.
        async with sessions() as other, other.begin():
            await other.execute(
                update(Alert)
                .where(Alert.id.in_([a.id for a in alerts]))
                .values(
                    escalation=EscalationStep.REGIONAL_TABLE,
                    status=AlertStatus.ACKNOWLEDGED,
                    acknowledged_at=now,
                )
            )
        mine.reasons = [{**mine.reasons[0], "explanation": "changed by the batch"}]
        mine.ok_since = now
        await batch.write()

    async with sessions() as session:
        stored = {a.department_id: a for a in (await session.scalars(select(Alert))).all()}
    changed, untouched = stored[fact], stored[hic]
    assert changed.reasons[0]["explanation"] == "changed by the batch"
    assert changed.ok_since == now
    assert (changed.escalation, changed.status) == (
        EscalationStep.REGIONAL_TABLE,
        AlertStatus.ACKNOWLEDGED,
    ), "the notifier's columns were not written back as the batch read them"
    before = {a.department_id: a for a in alerts}
    assert untouched.reasons == before[hic].reasons and untouched.ok_since is None


async def test_an_alert_resolved_and_opened_again_in_one_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The old alert is closed before its successor is stored: one open alert at a time (a
    department's, or a region's coverage alert, which a batch of many departments can close
    and open again)."""
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    departments, _ = await _open_alerts(sessions, now)
    fact = departments[0]
    async with sessions() as session, session.begin():
        loaded = await load_departments(session, [fact], now)
        batch = await Batch.open(session, [loaded[fact].facts])
        old = batch.alerts[fact]
        old.status, old.resolved_at = AlertStatus.RESOLVED, now
        batch.add(
            Alert(
                id=uuid.uuid4(),
                kind=old.kind,
                department_id=fact,
                region_id=old.region_id,
                care_type_code=old.care_type_code,
                level=old.level,
                status=AlertStatus.OPEN,
                escalation=EscalationStep.PROVIDER,
                no_alternative=False,
                reasons=old.reasons,
                opened_at=now + timedelta(hours=1),
                ruleset_version=old.ruleset_version,
            )
        )
        await batch.write()
    async with sessions() as session:
        alerts = list(
            (
                await session.scalars(
                    select(Alert).where(Alert.department_id == fact).order_by(Alert.opened_at)
                )
            ).all()
        )
    assert [a.status for a in alerts] == [AlertStatus.RESOLVED, AlertStatus.OPEN]

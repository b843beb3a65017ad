"""Loading a department's state for the engine: one query for the department, one for its reports.

The reports are the newest of each kind (up to `PER_KIND`, over `HISTORY` at most): enough for
every trend window and forecast of the ruleset, small enough to judge in microseconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import (
    Assessment,
    CareType,
    Department,
    Organisation,
    Region,
    WaitingTimeNorm,
)
from services.core.domain import Cluster, Level, SignalKind
from services.rules.state import DepartmentState, Report, RuleMemory

PER_KIND = 24
HISTORY = timedelta(days=730)

_REPORTS = text(
    """
    SELECT id, kind, observed_at, data FROM (
        SELECT s.id, s.kind, s.observed_at, s.data,
               row_number() OVER (
                   PARTITION BY s.kind ORDER BY s.observed_at DESC, s.received_at DESC
               ) AS n
        FROM signals s
        WHERE s.department_id = :department AND s.observed_at >= :since
    ) recent
    WHERE n <= :per_kind
    ORDER BY kind, observed_at, id
    """
)


@dataclass(frozen=True)
class DepartmentFacts:
    """What events and assessments name a department by."""

    id: uuid.UUID
    code: str
    provider_agb: str
    region: str
    region_id: int
    care_type: str
    cluster: Cluster
    scope: str
    capacity: int | None
    active: bool


async def load_department(
    session: AsyncSession, department_id: uuid.UUID, now: datetime, *, lock: bool = False
) -> tuple[DepartmentFacts, DepartmentState, Previous | None] | None:
    """The department's facts, its state (reports and rule memory) and its latest assessment;
    None if it is unknown.

    With `lock`, the department row is locked until the transaction ends, so that two judgements
    of one department (a signal and the silence check, say) follow one another.
    """
    query = (
        select(Department, Organisation.agb_code, Region.code, CareType)
        .join(Organisation, Organisation.id == Department.provider_id)
        .join(Region, Region.id == Department.region_id)
        .join(CareType, CareType.code == Department.care_type_code)
        .where(Department.id == department_id)
    )
    if lock:
        query = query.with_for_update(of=Department)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    department, agb, region_code, care_type = row
    facts = DepartmentFacts(
        id=department.id,
        code=department.code,
        provider_agb=agb or "",
        region=region_code,
        region_id=department.region_id,
        care_type=care_type.code,
        cluster=Cluster(care_type.cluster),
        scope=department.scope.value,
        capacity=department.capacity,
        active=department.status.value == "active",
    )
    memory, previous = await _latest(session, department.id)
    state = DepartmentState(
        department_id=department.id,
        care_type=care_type.code,
        cluster=Cluster(care_type.cluster),
        scope=department.scope.value,
        capacity=department.capacity,
        registered_at=department.created_at,
        norms=await _norms(session, now.date()) if care_type.waiting_norms_apply else None,
        reports=await _reports(session, department.id, now - HISTORY),
        memory=memory,
    )
    return facts, state, previous


async def _reports(
    session: AsyncSession, department_id: uuid.UUID, since: datetime
) -> dict[SignalKind, tuple[Report, ...]]:
    rows = await session.execute(
        _REPORTS, {"department": department_id, "since": since, "per_kind": PER_KIND}
    )
    found: dict[SignalKind, list[Report]] = {}
    for row in rows:
        kind = SignalKind(row.kind)
        found.setdefault(kind, []).append(Report(row.id, kind, row.observed_at, row.data))
    return {kind: tuple(items) for kind, items in found.items()}


async def _norms(session: AsyncSession, day: date) -> dict[str, float] | None:
    norm = (
        await session.execute(
            select(WaitingTimeNorm)
            .where(
                WaitingTimeNorm.valid_from <= day,
                WaitingTimeNorm.valid_to.is_(None) | (WaitingTimeNorm.valid_to >= day),
            )
            .order_by(WaitingTimeNorm.valid_from.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if norm is None:
        return None
    return {
        "aanmeld_weeks": float(norm.aanmeldwachttijd_weeks),
        "behandel_weeks": float(norm.behandelwachttijd_weeks),
    }


@dataclass(frozen=True)
class Previous:
    """The department's latest assessment, as the next judgement compares with it."""

    level: Level
    reasons: list[dict[str, Any]]


async def _latest(
    session: AsyncSession, department_id: uuid.UUID
) -> tuple[dict[str, RuleMemory], Previous | None]:
    """The rule memory of the latest assessment, and that assessment (one read)."""
    row = (
        await session.execute(
            select(Assessment.rule_memory, Assessment.level, Assessment.reasons)
            .where(Assessment.department_id == department_id)
            .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return {}, None
    memory = {
        rule_id: RuleMemory(int(value["consecutive"]), datetime.fromisoformat(value["since"]))
        for rule_id, value in row.rule_memory.items()
    }
    return memory, Previous(Level(row.level), list(row.reasons))


def memory_document(memory: dict[str, RuleMemory]) -> dict[str, Any]:
    return {
        rule_id: {"consecutive": m.consecutive, "since": m.since.isoformat()}
        for rule_id, m in memory.items()
    }

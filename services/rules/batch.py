"""What one batch of judgements reads up front and writes at the end.

The worker judges a consumer batch of signals (up to 500) in one transaction. Reading each
department's alert, its coverage cell and the cell's alert per signal cost about nine statements
a signal (docs/benchmarks.md, "Rules"); here they are read once for the whole batch and kept up
to date in memory as the batch's judgements follow one another, and the assessments, alerts,
timeline entries and events are written once at the end. Every judgement sees what it would
have seen one by one: the rows read are locked for the batch (departments, cells), and what the
batch itself has written so far is counted from memory.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.types import Integer, String, Uuid

from services.core.db.bulk import copy_rows, draw_ids
from services.core.db.models import Alert, AlertEvent, RegionalCoverage
from services.core.db.models import Assessment as StoredAssessment
from services.core.domain import AlertKind, Level, Scope
from services.core.events.outbox import NewEvent, record_events
from services.rules.coverage import CELL_LOCK_SPACE, Cell, CellKey, Member, cell_key, lock_key
from services.rules.loading import DepartmentFacts

# Advisory locks taken in the order of the (sorted) array: two workers lock cells in one order.
_LOCK_CELLS = text(
    "SELECT pg_advisory_xact_lock(:space, key) FROM unnest(:keys) AS key"
).bindparams(bindparam("keys", type_=ARRAY(Integer())))
# The cells' keys as arrays: the regional cells as (region, care type) pairs, the national cells
# (supra-regional care) by care type. Arrays, not IN lists: one statement text whatever the batch.
_CELL_PARAMS = (
    bindparam("regions", type_=ARRAY(Integer())),
    bindparam("regional_types", type_=ARRAY(String())),
    bindparam("national_types", type_=ARRAY(String())),
)
# Every active member of the cells, with its newest level (none when never judged). The regional
# cells are joined to the departments through their (region, care type) index: a filter over all
# departments cost several milliseconds a batch (docs/benchmarks.md, "Rules").
_MEMBERS = text(
    """
    SELECT d.id, d.capacity, d.care_type_code, d.region_id, d.scope, a.level
    FROM (
        SELECT d.id, d.capacity, d.care_type_code, d.region_id, d.scope
        FROM unnest(:regions, :regional_types) AS cell(region_id, care_type_code)
        CROSS JOIN LATERAL (
            SELECT * FROM departments
            WHERE region_id = cell.region_id AND care_type_code = cell.care_type_code
              AND scope = 'regional' AND status = 'active'
            OFFSET 0  -- kept a subquery: an index lookup per cell (see `_OPEN_ALERTS`)
        ) d
        UNION ALL
        SELECT d.id, d.capacity, d.care_type_code, d.region_id, d.scope
        FROM departments d
        WHERE d.scope = 'supra_regional' AND d.status = 'active'
            AND d.care_type_code = ANY(:national_types)
    ) d
    LEFT JOIN LATERAL (
        SELECT level FROM assessments
        WHERE department_id = d.id
        ORDER BY assessed_at DESC, id DESC
        LIMIT 1
    ) a ON true
    """
).bindparams(*_CELL_PARAMS)
# The open alerts of the departments and of their cells, each part through its partial index
# (one filter with OR read every open alert there was). A LATERAL subquery that the planner
# cannot pull up (LIMIT, OFFSET): an index lookup per cell. As a plain join, the generic plan of a
# prepared statement (guessing `unnest` at 10 rows) hashed it against a scan of every open one.
_OPEN_ALERTS = text(
    """
    SELECT alerts.* FROM alerts
    WHERE alerts.kind = 'department' AND alerts.status <> 'resolved'
      AND alerts.department_id = ANY(:departments)
    UNION ALL
    SELECT a.* FROM unnest(:regions, :regional_types) AS cell(region_id, care_type)
    CROSS JOIN LATERAL (
        SELECT * FROM alerts
        WHERE region_id = cell.region_id AND care_type_code = cell.care_type
          AND kind = 'coverage' AND status <> 'resolved'
        LIMIT 1  -- at most one is open; and it keeps the subquery, so a lookup per cell
    ) a
    UNION ALL
    SELECT alerts.* FROM alerts
    WHERE alerts.kind = 'coverage' AND alerts.status <> 'resolved'
      AND alerts.region_id IS NULL AND alerts.care_type_code = ANY(:national_types)
    """
).bindparams(bindparam("departments", type_=ARRAY(Uuid())), *_CELL_PARAMS)
# The coverage rows of the cells (not every row of their care types).
_COVERAGE_ROWS = select(RegionalCoverage).from_statement(
    text(
        """
            SELECT c.* FROM unnest(:regions, :regional_types) AS cell(region_id, care_type)
            CROSS JOIN LATERAL (
                SELECT * FROM regional_coverage
                WHERE region_id = cell.region_id AND care_type_code = cell.care_type
                LIMIT 1  -- one row per cell; a lookup per cell (see `_OPEN_ALERTS`)
            ) c
            UNION ALL
            SELECT regional_coverage.* FROM regional_coverage
            WHERE regional_coverage.region_id IS NULL
              AND regional_coverage.care_type_code = ANY(:national_types)
            """
    ).bindparams(*_CELL_PARAMS)
)
_REPORTS_SINCE = text(
    """
    SELECT count(*) FROM assessments
    WHERE department_id = ANY(:departments) AND assessed_at >= :since AND signal_id IS NOT NULL
    """
).bindparams(bindparam("departments", type_=ARRAY(Uuid())))


@dataclass
class Batch:
    """The rows a batch of judgements works on, and what it has to write."""

    session: AsyncSession
    cells: dict[CellKey, Cell]
    alerts: dict[uuid.UUID, Alert]  # department → its unresolved alert
    coverage: dict[CellKey, RegionalCoverage]
    coverage_alerts: dict[CellKey, Alert]
    assessments: list[dict[str, Any]] = field(default_factory=list)
    added: list[RegionalCoverage | Alert] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # `alerts.timeline_row`s
    events: list[NewEvent] = field(default_factory=list)
    # Each loaded department's newest assessment before the batch (None: never judged): where it
    # is older than a hysteresis count's start, the database has nothing to count.
    newest_stored: dict[uuid.UUID, datetime | None] = field(default_factory=dict)
    # The assessments to insert by department: a cell's hysteresis counts its members' own.
    stored_by_department: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    # The alerts and coverage rows read (detached from the session; `write` updates them).
    loaded: list[Alert | RegionalCoverage] = field(default_factory=list)

    @classmethod
    async def open(cls, session: AsyncSession, departments: Collection[DepartmentFacts]) -> Batch:
        """Lock the departments' cells and read the cells, their figures and every alert."""
        by_key = {cell_key(facts): facts for facts in departments}
        locks = sorted({lock_key(facts) for facts in departments})
        if locks:
            await session.execute(_LOCK_CELLS, {"space": CELL_LOCK_SPACE, "keys": locks})
        keys = _cell_params(by_key)
        cells = await _load_cells(session, by_key, keys)
        department_ids = [facts.id for facts in departments]
        alerts: dict[uuid.UUID, Alert] = {}
        coverage_alerts: dict[CellKey, Alert] = {}
        coverage: dict[CellKey, RegionalCoverage] = {}
        if department_ids:
            for alert in await session.scalars(
                select(Alert).from_statement(_OPEN_ALERTS),
                {"departments": department_ids, **keys},
            ):
                if alert.kind is AlertKind.DEPARTMENT and alert.department_id is not None:
                    alerts[alert.department_id] = alert
                elif (key := (alert.region_id, alert.care_type_code)) in by_key:
                    coverage_alerts[key] = alert
            for row in await session.scalars(_COVERAGE_ROWS, keys):
                if (key := (row.region_id, row.care_type_code)) in by_key:
                    coverage[key] = row
        # Out of the session: their changes are written by `write`, not by the unit of work.
        loaded: list[Alert | RegionalCoverage] = [*alerts.values(), *coverage_alerts.values()]
        loaded += coverage.values()
        for row in loaded:
            session.expunge(row)
        return cls(session, cells, alerts, coverage, coverage_alerts, loaded=loaded)

    def store(self, row: dict[str, Any]) -> None:
        """An assessment to insert (counted at once by `reports_since`)."""
        self.assessments.append(row)
        self.stored_by_department.setdefault(row["department_id"], []).append(row)

    def add(self, row: RegionalCoverage | Alert) -> None:
        self.added.append(row)

    async def reports_since(self, department_ids: Iterable[uuid.UUID], since: datetime) -> int:
        """Assessments of a signal since `since` of these departments: stored, and this batch's."""
        ids = list(department_ids)
        if not ids:
            return 0
        if self._none_stored_since(ids, since):
            stored = 0
        else:
            with self.session.no_autoflush:
                stored = await self.session.scalar(
                    _REPORTS_SINCE, {"departments": ids, "since": since}
                )
        pending = 0
        for department_id in set(ids):
            for row in self.stored_by_department.get(department_id, []):
                if row["signal_id"] is not None and row["assessed_at"] >= since:
                    pending += 1
        return int(stored or 0) + pending

    def _none_stored_since(self, ids: list[Any], since: datetime) -> bool:
        newest = self.newest_stored
        for department_id in ids:
            if department_id not in newest:
                return False
            stored = newest[department_id]
            if stored is not None and stored >= since:
                return False
        return True

    async def write(self) -> list[int]:
        """Everything at once: assessments, then alerts and cells, then timelines and events.

        Alerts and cells go out as Core statements, not through the ORM's unit of work (its
        bookkeeping was a tenth of the worker's CPU, docs/benchmarks.md): the new rows copied
        in, and each changed row updated in the columns this batch changed and no others, as
        the unit of work would (the notifier changes other columns of the same alerts). New rows
        go in by COPY (`copy_rows`), the assessments with ids drawn first. The stored
        assessments' ids, in the order they were stored."""
        session = self.session
        table = cast(Table, StoredAssessment.__table__)
        ids = await draw_ids(session, table, len(self.assessments))
        await copy_rows(
            session,
            table,
            [{"id": id_, **row} for id_, row in zip(ids, self.assessments, strict=True)],
        )
        # The updates first: an alert resolved here may have a successor opened here, and only
        # one may be open at a time. Then the new alerts, before the timeline entries that refer
        # to them.
        await _update(session, self.loaded)
        await _insert(session, self.added)
        await copy_rows(session, cast(Table, AlertEvent.__table__), self.timeline)
        await record_events(session, self.events)  # once: the log's partition lock
        return ids


Row = Alert | RegionalCoverage


def _set_columns(row: Row) -> dict[str, Any]:
    """The column values a new row was given (the database fills in the others)."""
    given = row.__dict__
    return {c.key: given[c.key] for c in row.__mapper__.column_attrs if c.key in given}


async def _insert(session: AsyncSession, rows: Sequence[Row]) -> None:
    """The new rows, one COPY per table and set of given columns."""
    groups: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        given = _set_columns(row)
        groups[cast(Table, row.__table__), tuple(given)].append(given)
    for (table, _), values in groups.items():
        await copy_rows(session, table, values)


async def _update(session: AsyncSession, rows: Sequence[Alert | RegionalCoverage]) -> None:
    """Each row in the columns changed since it was read, one statement per table and set of
    changed columns (`updated_at` set by the database)."""
    groups: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        state = instance_state(row)
        if not state.modified:
            continue
        before = state.committed_state
        changed = {k: getattr(row, k) for k in before if getattr(row, k) != before[k]}
        if changed:
            key = (cast(Table, row.__table__), tuple(sorted(changed)))
            groups[key].append({"_id": row.id, **changed})
    for (table, columns), values in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        await session.execute(statement, values)


def _cell_params(by_key: dict[CellKey, DepartmentFacts]) -> dict[str, list[Any]]:
    """The cells as the arrays `_CELL_PARAMS` name."""
    regional = [key for key in by_key if key[0] is not None]
    return {
        "regions": [key[0] for key in regional],
        "regional_types": [key[1] for key in regional],
        "national_types": [key[1] for key in by_key if key[0] is None],
    }


async def _load_cells(
    session: AsyncSession, by_key: dict[CellKey, DepartmentFacts], keys: dict[str, list[Any]]
) -> dict[CellKey, Cell]:
    members: dict[CellKey, list[Member]] = {key: [] for key in by_key}
    if by_key:
        rows = await session.execute(_MEMBERS, keys)
        for row in rows:
            national_member = row.scope == Scope.SUPRA_REGIONAL.value
            key = (None if national_member else row.region_id, row.care_type_code)
            level = Level(row.level) if row.level else Level.OK
            members[key].append(Member(row.id, level, int(row.capacity or 0)))
    return {
        key: Cell(
            region_id=key[0],
            region=None if key[0] is None else facts.region,
            care_type=facts.care_type,
            cluster=facts.cluster,
            members=tuple(members[key]),
        )
        for key, facts in by_key.items()
    }

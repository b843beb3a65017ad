"""Loading departments' state for the engine: two statements per batch, both written out in SQL.

The first locks the departments' rows (in id order, so that two workers lock in one order) and
reads what does not change between judgements (provider, region, care type, and the waiting-time
norm of the day); the second, once the locks are held, reads what the last judgement of each left
(the newest assessment, with the rule memory) and the reports. The reports are the newest of each
kind (up to `PER_KIND`, over `HISTORY` at most): enough for every trend window and forecast of the
ruleset, small enough to judge in microseconds.

Why two and not one: a statement that waits for a row lock keeps the snapshot it started with, so
reading the assessment in the locking statement could miss the one the lock holder was writing.

The rules worker keeps what it read between batches (`cache.py`): for a department it still
holds, the second statement becomes a small one, its newest assessment's id (is the entry still
true?). The batch's own signals are read apart, by id, and added to the department's reports one
at a time as their judgements come (`catch_up`, with `brought_up_to_date`).
Why SQL text rather than ORM queries: building and loading ORM statements cost the worker more CPU
than the database spends answering them (docs/benchmarks.md, "Rules").
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime, Uuid

from services.core.db.models import WaitingTimeNorm
from services.core.domain import Cluster, Level, SignalKind
from services.rules.cache import Remembered, StateCache
from services.rules.state import DepartmentState, Report, RuleMemory

PER_KIND = 24
HISTORY = timedelta(days=730)

# The department with what names it, and its norm today; `FOR NO KEY UPDATE OF d` when
# locking: it does not wait for (or block) the foreign-key checks of signals being stored.
_DEPARTMENT = """
    SELECT d.id, d.code, d.region_id, d.scope, d.capacity, d.status, d.created_at,
           o.agb_code, r.code AS region, c.code AS care_type, c.cluster, c.waiting_norms_apply,
           n.aanmeldwachttijd_weeks, n.behandelwachttijd_weeks
    FROM departments d
    JOIN organisations o ON o.id = d.provider_id
    JOIN regions r ON r.id = d.region_id
    JOIN care_types c ON c.code = d.care_type_code
    LEFT JOIN LATERAL (
        SELECT w.aanmeldwachttijd_weeks, w.behandelwachttijd_weeks
        FROM waiting_time_norms w
        WHERE c.waiting_norms_apply AND w.valid_from <= :day
          AND (w.valid_to IS NULL OR w.valid_to >= :day)
        ORDER BY w.valid_from DESC
        LIMIT 1
    ) n ON true
    WHERE d.id = ANY(:departments)
    ORDER BY d.id
    FOR NO KEY UPDATE OF d
"""
_LOAD = text(_DEPARTMENT).bindparams(bindparam("departments", type_=ARRAY(Uuid())))

# The newest assessment, and the newest reports of each kind (as arrays, oldest first per kind).
_HISTORY = text(
    """
    SELECT dep.id AS department_id, a.id AS assessment_id, a.rule_memory, a.level, a.rule_ids,
           a.assessed_at, s.ids, s.kinds, s.observed, s.received, s.datas
    FROM unnest(:departments, :horizons) AS dep(id, horizon)
    LEFT JOIN LATERAL (
        SELECT id, rule_memory, level, assessed_at,
               -- the rule ids only: the reasons' texts are not needed to compare, and were
               -- most of what the worker decoded
               ARRAY(SELECT r->>'rule_id' FROM jsonb_array_elements(reasons) r) AS rule_ids
        FROM assessments
        WHERE department_id = dep.id
        ORDER BY assessed_at DESC, id DESC
        LIMIT 1
    ) a ON true
    LEFT JOIN LATERAL (
        SELECT array_agg(id ORDER BY kind, observed_at, id) AS ids,
               array_agg(kind ORDER BY kind, observed_at, id) AS kinds,
               array_agg(observed_at ORDER BY kind, observed_at, id) AS observed,
               array_agg(received_at ORDER BY kind, observed_at, id) AS received,
               array_agg(data ORDER BY kind, observed_at, id) AS datas
        FROM (
            SELECT sg.id, sg.kind, sg.observed_at, sg.received_at, sg.data,
                   row_number() OVER (
                       PARTITION BY sg.kind ORDER BY sg.observed_at DESC, sg.received_at DESC
                   ) AS n
            FROM signals sg
            WHERE sg.department_id = dep.id AND sg.observed_at >= :since
              AND sg.id <> ALL(:batch)  -- the batch's own: added as they are judged
              -- Not those later in the stream: stored already (a fast sender, a backlog), they
              -- are judged, and added, in a later batch. Later: received at or after the
              -- department's newest signal of the batch and not judged yet (one request's
              -- signals share a receipt time; the stream may split them over batches).
              AND (dep.horizon IS NULL OR sg.received_at < dep.horizon OR EXISTS (
                  SELECT 1 FROM assessments j
                  WHERE j.department_id = dep.id AND j.signal_id = sg.id
              ))
        ) recent
        WHERE n <= :per_kind
    ) s ON true
    """
).bindparams(
    bindparam("departments", type_=ARRAY(Uuid())),
    bindparam("horizons", type_=ARRAY(DateTime(timezone=True))),
    bindparam("batch", type_=ARRAY(Uuid())),
)

# What a remembered department (`cache.py`) needs read: its newest assessment's id, to tell
# whether the entry still holds; and the batch's own signals, by id.
_NEWEST = text(
    """
    SELECT dep.id AS department_id, a.id AS assessment_id
    FROM unnest(:departments) AS dep(id)
    LEFT JOIN LATERAL (
        SELECT id FROM assessments
        WHERE department_id = dep.id
        ORDER BY assessed_at DESC, id DESC
        LIMIT 1
    ) a ON true
    """
).bindparams(bindparam("departments", type_=ARRAY(Uuid())))
_SIGNALS = text(
    """
    SELECT id, department_id, kind, observed_at, received_at, data FROM signals
    WHERE id = ANY(:signals)
    """
).bindparams(bindparam("signals", type_=ARRAY(Uuid())))


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
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

    def __init__(
        self,
        id: uuid.UUID,
        code: str,
        provider_agb: str,
        region: str,
        region_id: int,
        care_type: str,
        cluster: Cluster,
        scope: str,
        capacity: int | None,
        active: bool,
    ) -> None:
        self.id = id
        self.code = code
        self.provider_agb = provider_agb
        self.region = region
        self.region_id = region_id
        self.care_type = care_type
        self.cluster = cluster
        self.scope = scope
        self.capacity = capacity
        self.active = active


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class Loaded:
    """A department as a batch of judgements sees it; `state` and `previous` move on as the
    batch judges it (the next signal of the batch sees the memory the last one left)."""

    facts: DepartmentFacts
    state: DepartmentState
    previous: Previous | None
    token: int | None  # the id of the newest stored assessment (for `cache.py`)
    received: dict[uuid.UUID, datetime]  # when each of the reports was received
    stored: int  # the batch's row that is now the newest assessment (-1: none)
    # The batch's own signals of the department, in the order of their events, not yet in
    # `state`: each is added when its judgement comes (`catch_up`).
    pending: list[tuple[Report, datetime]]
    since: datetime  # the start of the window the reports are kept for

    def __init__(
        self,
        facts: DepartmentFacts,
        state: DepartmentState,
        previous: Previous | None,
        since: datetime,
        token: int | None = None,
        received: dict[uuid.UUID, datetime] | None = None,
    ) -> None:
        self.facts = facts
        self.state = state
        self.previous = previous
        self.token = token
        self.received = received if received is not None else {}
        self.stored = -1
        self.pending = []
        self.since = since


async def load_departments(
    session: AsyncSession,
    department_ids: Collection[uuid.UUID],
    now: datetime,
    *,
    cache: StateCache | None = None,
    signal_ids: Collection[uuid.UUID] = (),
) -> dict[uuid.UUID, Loaded]:
    """The known departments among `department_ids`, locked until the transaction ends (so
    that two judgements of one department, a signal and the silence check say, follow one
    another), with their facts, state (reports and rule memory) and latest assessment.

    With a `cache`, a department it still holds is not read again. The signals among
    `signal_ids` (the batch's, in the order of their events) are read apart, left `pending`, and
    added one by one as their judgements come (`catch_up`): each signal is judged with the ones
    before it and not with the batch's later ones, nor with the department's signals stored
    already but later in the stream (a provider's next reports, sent before this one was
    judged), as if it had come alone."""
    ids = sorted(set(department_ids))
    rows = (await session.execute(_LOAD, {"departments": ids, "day": now.date()})).all()
    if not rows:
        return {}
    found = {row.id: row for row in rows}
    since = now - HISTORY
    held: dict[uuid.UUID, Remembered] = {}
    if cache is not None:
        newest = await session.execute(_NEWEST, {"departments": list(found)})
        held = cache.valid({row.department_id: row.assessment_id for row in newest}, since)
    loaded: dict[uuid.UUID, Loaded] = {}
    batch = list(dict.fromkeys(signal_ids))
    arrivals = await _arrived(session, found, batch)
    unknown = [department_id for department_id in found if department_id not in held]
    if unknown:
        # Each department's newest receipt among the batch's signals: what was received from
        # then on and is not judged yet comes later in the stream (`_HISTORY`).
        horizons = [
            max(received_at for _, received_at in arrivals[department_id])
            if department_id in arrivals
            else None
            for department_id in unknown
        ]
        pasts = await session.execute(
            _HISTORY,
            {
                "departments": unknown,
                "horizons": horizons,
                "since": since,
                "per_kind": PER_KIND,
                "batch": batch,
            },
        )
        for past in pasts:
            loaded[past.department_id] = _loaded(found[past.department_id], past, since)
    for department_id, entry in held.items():
        # What the window has moved past since goes (usually nothing: then as it was).
        reports, received = brought_up_to_date(entry.reports, entry.received, [], since)
        loaded[department_id] = _remembered(found[department_id], entry, reports, received, since)
    for department_id, arrived in arrivals.items():
        loaded[department_id].pending = arrived
    return {department_id: loaded[department_id] for department_id in found}


async def _arrived(
    session: AsyncSession, departments: Collection[uuid.UUID], signal_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[Report, datetime]]]:
    """The batch's signals of these departments, by department, in the order of `signal_ids`
    (with receipt)."""
    arrived: dict[uuid.UUID, list[tuple[Report, datetime]]] = {}
    if not signal_ids:
        return arrived
    order = {signal_id: n for n, signal_id in enumerate(signal_ids)}
    rows = sorted(
        await session.execute(_SIGNALS, {"signals": signal_ids}), key=lambda r: order[r.id]
    )
    for row in rows:
        if row.department_id in departments:
            report = Report(row.id, SignalKind(row.kind), row.observed_at, row.data)
            arrived.setdefault(row.department_id, []).append((report, row.received_at))
    return arrived


def catch_up(entry: Loaded, signal_id: uuid.UUID | None) -> None:
    """Add the batch's pending signals of the department to its state, up to and including
    `signal_id` (None: all of them); none when `signal_id` is not among them."""
    pending = entry.pending
    if not pending:
        return
    if signal_id is None:
        count = len(pending)
    else:
        count = next((n + 1 for n, p in enumerate(pending) if p[0].id == signal_id), 0)
    if not count:
        return
    reports, received = brought_up_to_date(
        entry.state.reports, entry.received, pending[:count], entry.since
    )
    entry.state = entry.state.with_reports(reports)
    entry.received = received
    del pending[:count]


def remember(cache: StateCache, loaded: dict[uuid.UUID, Loaded]) -> None:
    """Keep each department as the batch leaves it: `token` by then the newest assessment's."""
    for department_id, entry in loaded.items():
        state = entry.state
        for series in state.reports.values():
            for report in series[:-1]:
                report.forget_measured()  # only a kind's newest is judged again
        cache.keep(
            department_id,
            Remembered(
                token=entry.token,
                since=entry.since,
                reports=state.reports,
                received=entry.received,
                memory=state.memory,
                previous=entry.previous,
            ),
        )


def brought_up_to_date(
    reports: dict[SignalKind, tuple[Report, ...]],
    received: dict[uuid.UUID, datetime],
    arrived: list[tuple[Report, datetime]],
    since: datetime,
) -> tuple[dict[SignalKind, tuple[Report, ...]], dict[uuid.UUID, datetime]]:
    """The reports with the arrived ones added, as `_HISTORY` would read them now: per kind
    the newest `PER_KIND` observed since `since` (by observation, then receipt), oldest first
    (ties by id, as its `ORDER BY`).

    Newer reports only push older ones out, and the window only moves forward (`cache.valid`
    sees to that), so the newest of what was kept and what arrived are the newest of all."""
    touched: dict[SignalKind, list[Report]] = {}
    received = dict(received)
    for report, received_at in arrived:
        if report.id in received or report.observed_at < since:
            continue  # held already (its event came again), or before the window
        if report.kind not in touched:
            touched[report.kind] = list(reports.get(report.kind, ()))
        touched[report.kind].append(report)
        received[report.id] = received_at
    aged = any(series[0].observed_at < since for series in reports.values() if series)
    if not touched and not aged:
        return reports, received
    result: dict[SignalKind, tuple[Report, ...]] = {}
    for kind in [*reports, *(kind for kind in touched if kind not in reports)]:
        series = [r for r in touched.get(kind, reports.get(kind, ())) if r.observed_at >= since]
        if kind in touched:
            series.sort(key=lambda r: (r.observed_at, received[r.id]))
            del series[:-PER_KIND]
            series.sort(key=lambda r: (r.observed_at, r.id))
        if series:
            result[kind] = tuple(series)
    kept = {r.id for series in result.values() for r in series}
    return result, {k: v for k, v in received.items() if k in kept}


def _loaded(row: Any, past: Any, since: datetime) -> Loaded:
    """A department read in full: its row (`_LOAD`) and its past (`_HISTORY`)."""
    memory: dict[str, RuleMemory] = {}
    previous = None
    if past.level is not None:
        memory = {
            rule_id: RuleMemory(int(value["consecutive"]), datetime.fromisoformat(value["since"]))
            for rule_id, value in past.rule_memory.items()
        }
        previous = Previous(Level(past.level), list(past.rule_ids), past.assessed_at)
    reports = _reports(past.ids, past.kinds, past.observed, past.datas)
    received = dict(zip(past.ids, past.received, strict=True)) if past.ids else {}
    facts, state = _facts_and_state(row, reports, memory)
    return Loaded(facts, state, previous, since, past.assessment_id, received)


def _remembered(
    row: Any,
    entry: Remembered,
    reports: dict[SignalKind, tuple[Report, ...]],
    received: dict[uuid.UUID, datetime],
    since: datetime,
) -> Loaded:
    """A department the cache held: its row read again (it may have changed), its past kept."""
    facts, state = _facts_and_state(row, reports, entry.memory)
    return Loaded(facts, state, entry.previous, since, entry.token, received)


def _facts_and_state(
    row: Any, reports: dict[SignalKind, tuple[Report, ...]], memory: dict[str, RuleMemory]
) -> tuple[DepartmentFacts, DepartmentState]:
    cluster = Cluster(row.cluster)
    facts = DepartmentFacts(
        id=row.id,
        code=row.code,
        provider_agb=row.agb_code or "",
        region=row.region,
        region_id=row.region_id,
        care_type=row.care_type,
        cluster=cluster,
        scope=row.scope,
        capacity=row.capacity,
        active=row.status == "active",
    )
    norms = None
    if row.waiting_norms_apply and row.aanmeldwachttijd_weeks is not None:
        norms = {
            "aanmeld_weeks": float(row.aanmeldwachttijd_weeks),
            "behandel_weeks": float(row.behandelwachttijd_weeks),
        }
    state = DepartmentState(
        department_id=row.id,
        care_type=row.care_type,
        cluster=cluster,
        scope=row.scope,
        capacity=row.capacity,
        registered_at=row.created_at,
        norms=norms,
        reports=reports,
        memory=memory,
    )
    return facts, state


def _reports(
    ids: list[uuid.UUID] | None,
    kinds: list[str] | None,
    observed: list[datetime] | None,
    datas: list[dict[str, Any]] | None,
) -> dict[SignalKind, tuple[Report, ...]]:
    """The reports per kind, oldest first, from the arrays (in kind order, then time)."""
    if not ids or kinds is None or observed is None or datas is None:
        return {}
    found: dict[SignalKind, list[Report]] = {}
    current: list[Report] = []
    last = None
    for report_id, name, at, data in zip(ids, kinds, observed, datas, strict=True):
        if name != last:
            last = name
            kind = SignalKind(name)
            current = found.setdefault(kind, [])
        current.append(Report(report_id, kind, at, data))
    return {kind: tuple(items) for kind, items in found.items()}


async def norms_on(session: AsyncSession, day: date) -> dict[str, float] | None:
    """The waiting-time norm that applies on `day` (the dashboard asks for it too)."""
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


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class Previous:
    """The department's latest assessment, as the next judgement compares with it."""

    level: Level
    rule_ids: list[str]  # of its reasons, in order
    assessed_at: datetime | None

    def __init__(
        self, level: Level, rule_ids: list[str], assessed_at: datetime | None = None
    ) -> None:
        self.level = level
        self.rule_ids = rule_ids
        self.assessed_at = assessed_at


def memory_document(memory: dict[str, RuleMemory]) -> dict[str, Any]:
    return {
        rule_id: {"consecutive": m.consecutive, "since": m.since.isoformat()}
        for rule_id, m in memory.items()
    }

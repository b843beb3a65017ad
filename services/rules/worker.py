"""The rules worker: judges a department after each of its signals, and stores the judgement.

It consumes `signal.received` in consumer group `rules`, a batch at a time, in the consumer's
transaction: lock the batch's departments, load their state, and for each signal in turn
evaluate (the pure function), store the assessment (history, with each rule's memory), record
`assessment.changed` when the level or the reasons changed, open, update or resolve the
department's alert (`alerts.py`), and bring the region's coverage cell up to date
(`coverage.py`). The reads and writes are done once per batch (`batch.py`), the judgements one
signal after the other, as if each signal had come alone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.core import heap
from services.core.domain import Level, SignalKind
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.types import EventType, Topic
from services.core.metrics import ASSESSMENTS
from services.rules.alerts import follow_assessment
from services.rules.batch import Batch
from services.rules.cache import StateCache
from services.rules.coverage import (
    cell_key,
    follow_cell,
    no_alternative,
    no_alternative_reason,
    raised,
    with_member,
)
from services.rules.evaluate import Assessment, evaluate
from services.rules.events import assessment_changed
from services.rules.loading import (
    Loaded,
    Previous,
    catch_up,
    load_departments,
    memory_document,
    remember,
)
from services.rules.reasons import reason_document
from services.rules.ruleset import Ruleset

log = logging.getLogger(__name__)
# The counter of each level, looked up once (`labels` costs a few µs a judgement).
_ASSESSED = {level: ASSESSMENTS.labels(level.value) for level in Level}

GROUP = "rules"
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class Judgement:
    """A department to judge, and the signal that asks for it (none for the silence check)."""

    department_id: uuid.UUID
    trigger: SignalKind | None
    signal_id: uuid.UUID | None

    def __init__(
        self,
        department_id: uuid.UUID,
        trigger: SignalKind | None = None,
        signal_id: uuid.UUID | None = None,
    ) -> None:
        self.department_id = department_id
        self.trigger = trigger
        self.signal_id = signal_id


async def judge_batch(
    session: AsyncSession,
    ruleset: Ruleset,
    judgements: Sequence[Judgement],
    now: datetime | Clock,
    *,
    store_unchanged: bool = True,
    cache: StateCache | None = None,
) -> list[Assessment | None]:
    """Judge each in turn and store the assessments; None for an unknown department.

    `now` may be a clock: each judgement then gets a moment of its own, as it would have one by
    one (the history pages by time). A scheduled judgement (`store_unchanged=False`) stores
    nothing when nothing changed, so the history holds one row per signal and one per change,
    not one per department per day. With a `cache` (the rules worker's), departments judged
    before are not read again in full, and are kept as this batch leaves them.
    """
    moment = now if callable(now) else (lambda: now)
    loaded = await load_departments(
        session,
        {j.department_id for j in judgements},
        moment(),
        cache=cache,
        signal_ids=[j.signal_id for j in judgements if j.signal_id is not None],
    )
    batch = await Batch.open(session, [entry.facts for entry in loaded.values()])
    batch.newest_stored = {
        department_id: entry.previous.assessed_at if entry.previous else None
        for department_id, entry in loaded.items()
    }
    judged: list[Assessment | None] = []
    for judgement in judgements:
        entry = loaded.get(judgement.department_id)
        if entry is None:
            log.warning(
                "signal for unknown department %s; nothing to judge", judgement.department_id
            )
            judged.append(None)
            continue
        judged.append(
            await _judge(
                batch, ruleset, entry, moment(), judgement, store_unchanged=store_unchanged
            )
        )
    stored = await batch.write()
    if cache is not None:
        for entry in loaded.values():
            catch_up(entry, None)  # what no judgement asked for (a signal judged twice, say)
            if entry.stored >= 0:
                entry.token = stored[entry.stored]
        remember(cache, loaded)
    return judged


async def judge(
    session: AsyncSession,
    ruleset: Ruleset,
    department_id: uuid.UUID,
    now: datetime,
    *,
    trigger: SignalKind | None = None,
    signal_id: uuid.UUID | None = None,
    store_unchanged: bool = True,
) -> Assessment | None:
    """Judge one department now and store the assessment; None for an unknown department."""
    judgement = Judgement(department_id, trigger, signal_id)
    judged = await judge_batch(session, ruleset, [judgement], now, store_unchanged=store_unchanged)
    return judged[0]


async def _judge(
    batch: Batch,
    ruleset: Ruleset,
    entry: Loaded,
    now: datetime,
    judgement: Judgement,
    *,
    store_unchanged: bool,
) -> Assessment:
    """One judgement of the batch: evaluate, then follow with the alert and the cell."""
    facts, previous, signal_id = entry.facts, entry.previous, judgement.signal_id
    catch_up(entry, signal_id)  # this signal, and the batch's before it; not the later ones
    assessment = evaluate(entry.state, ruleset, now, trigger=judgement.trigger)
    share = ruleset.file.no_alternative_share
    key = cell_key(facts)
    cell = with_member(batch.cells[key], facts.id, assessment.level)
    alone = no_alternative(cell, facts.id, assessment.level, share)
    reasons = [reason_document(reason) for reason in assessment.reasons]
    if alone:
        assessment = replace(assessment, level=raised(assessment.level))
        reasons.insert(0, no_alternative_reason(cell, assessment.level))
    rule_ids = [r["rule_id"] for r in reasons]
    changed = previous is None or (
        previous.level != assessment.level or previous.rule_ids != rule_ids
    )
    if not changed and not store_unchanged:
        return assessment
    batch.store(
        {
            "department_id": facts.id,
            "signal_id": signal_id,
            "level": assessment.level,
            "score": Decimal(assessment.score),
            "reasons": reasons,
            "no_alternative": alone,
            "rule_memory": memory_document(dict(assessment.memory)),
            "ruleset_version": assessment.ruleset_version,
            "assessed_at": now,
        }
    )
    _ASSESSED[assessment.level].inc()
    if changed:
        batch.events.append(
            assessment_changed(
                facts,
                previous_level=previous.level if previous is not None else None,
                level=assessment.level,
                no_alternative=alone,
                reasons=reasons,
                ruleset_version=assessment.ruleset_version,
                assessed_at=now,
                signal_id=signal_id,
            )
        )
    batch.events.extend(
        await follow_assessment(
            batch,
            facts,
            assessment,
            reasons,
            now,
            hysteresis_reports=ruleset.file.hysteresis_reports,
            signal_id=signal_id,
            no_alternative=alone,
        )
    )
    # The newest assessment is now this one, unless one dated later than `now` was already
    # there: the next judgement of the batch, and the cell, see the newest.
    if previous is not None and previous.assessed_at is not None and previous.assessed_at > now:
        stored_level = previous.level
    else:
        stored_level = assessment.level
        entry.state = entry.state.with_memory(assessment.memory)
        entry.previous = Previous(assessment.level, rule_ids, now)
        entry.stored = len(batch.assessments) - 1
    batch.cells[key] = with_member(batch.cells[key], facts.id, stored_level)
    batch.events.extend(
        await follow_cell(
            batch,
            batch.cells[key],
            now,
            share=share,
            ruleset_version=assessment.ruleset_version,
            hysteresis_reports=ruleset.file.hysteresis_reports,
        )
    )
    return assessment


def subscription(
    ruleset: Ruleset | Callable[[], Ruleset], clock: Clock = _utcnow, *, remember: bool = True
) -> Subscription:
    """The rules worker's consumer group: signals in, assessments out, a batch at a time.

    `ruleset` may be a holder (`reload.RulesetHolder`) that a SIGHUP refreshes: it is asked for
    the current ruleset at every batch. The worker keeps the departments it judged between
    batches (`cache.py`); `remember=False` reads every department in full at every batch (the
    benchmark's baseline for the cache).
    """
    current = ruleset if callable(ruleset) else (lambda: ruleset)
    cache = StateCache() if remember else None

    async def handle_batch(session: AsyncSession, events: Sequence[Event]) -> None:
        judgements = [
            Judgement(
                uuid.UUID(str(event.data["department_id"])),
                SignalKind(event.data["kind"]),
                uuid.UUID(str(event.data["signal_id"])),
            )
            for event in events
            if event.type == EventType.SIGNAL_RECEIVED.value
        ]
        if judgements:
            with heap.paused():
                await judge_batch(session, current(), judgements, clock, cache=cache)

    async def handle(session: AsyncSession, event: Event) -> None:
        await handle_batch(session, (event,))

    return Subscription(GROUP, (Topic.SIGNALS.value,), handle, batch_handler=handle_batch)

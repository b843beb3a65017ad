"""The rules worker: judges a department after each of its signals, and stores the judgement.

It consumes `signal.received` in consumer group `rules`. Per event, in the consumer's transaction:
lock the department, load its state, evaluate (the pure function), store the assessment (history,
with each rule's memory), record `assessment.changed` when the level or the reasons changed, and
open, update or resolve the department's alert (`alerts.py`), and bring the region's coverage
cell up to date (`coverage.py`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import Assessment as StoredAssessment
from services.core.domain import Scope, SignalKind
from services.core.events.consumer import Subscription
from services.core.events.envelope import Event
from services.core.events.outbox import record_events
from services.core.events.payloads import AssessmentChanged, Service, new_event
from services.core.events.types import EventType, Topic
from services.core.metrics import ASSESSMENTS
from services.rules.alerts import follow_assessment
from services.rules.coverage import (
    follow_cell,
    load_cell,
    lock_cell,
    no_alternative,
    no_alternative_reason,
    raised,
    with_member,
)
from services.rules.evaluate import Assessment, evaluate
from services.rules.loading import DepartmentFacts, Previous, load_department, memory_document
from services.rules.reasons import for_event, reason_document
from services.rules.ruleset import Ruleset

log = logging.getLogger(__name__)

GROUP = "rules"
Clock = Callable[[], datetime]
_STORE = insert(cast(Table, StoredAssessment.__table__))


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    """Judge one department now and store the assessment; None for an unknown department.

    A scheduled judgement (`store_unchanged=False`) stores nothing when nothing changed, so the
    history holds one row per signal and one per change, not one per department per day.
    """
    loaded = await load_department(session, department_id, now, lock=True)
    if loaded is None:
        log.warning("signal for unknown department %s; nothing to judge", department_id)
        return None
    facts, state, previous = loaded
    assessment = evaluate(state, ruleset, now, trigger=trigger)
    share = ruleset.file.no_alternative_share
    await lock_cell(session, facts)
    cell = with_member(await load_cell(session, facts), facts.id, assessment.level)
    alone = no_alternative(cell, facts.id, assessment.level, share)
    reasons = [reason_document(reason) for reason in assessment.reasons]
    if alone:
        assessment = replace(assessment, level=raised(assessment.level))
        reasons.insert(0, no_alternative_reason(cell, assessment.level))
    changed = previous is None or (
        previous.level != assessment.level
        or [r["rule_id"] for r in previous.reasons] != [r["rule_id"] for r in reasons]
    )
    if not changed and not store_unchanged:
        return assessment
    # One INSERT, at once (the alert's hysteresis counts this assessment): a Core statement, not
    # an ORM object and a flush, which cost the worker more than the row itself.
    await session.execute(
        _STORE,
        {
            "department_id": department_id,
            "signal_id": signal_id,
            "level": assessment.level,
            "score": Decimal(assessment.score),
            "reasons": reasons,
            "no_alternative": alone,
            "rule_memory": memory_document(dict(assessment.memory)),
            "ruleset_version": assessment.ruleset_version,
            "assessed_at": now,
        },
    )
    ASSESSMENTS.labels(assessment.level.value).inc()
    events = []
    if changed:
        events.append(_changed_event(facts, assessment, reasons, previous, now, signal_id, alone))
    events += await follow_assessment(
        session,
        facts,
        assessment,
        reasons,
        now,
        hysteresis_reports=ruleset.file.hysteresis_reports,
        signal_id=signal_id,
        no_alternative=alone,
    )
    # The cell as a fresh read would find it now: the cell lock is held since before `cell` was
    # read, so only this department's level has moved (to what was just stored, unless an
    # assessment dated later than `now` was already there: the newest one counts).
    if previous is not None and previous.assessed_at is not None and previous.assessed_at > now:
        stored_level = previous.level
    else:
        stored_level = assessment.level
    events += await follow_cell(
        session,
        with_member(cell, facts.id, stored_level),
        now,
        share=share,
        ruleset_version=assessment.ruleset_version,
        hysteresis_reports=ruleset.file.hysteresis_reports,
    )
    await record_events(session, events)  # once, at the end: the log's partition lock
    return assessment


def _changed_event(
    facts: DepartmentFacts,
    assessment: Assessment,
    reasons: list[dict[str, Any]],
    previous: Previous | None,
    now: datetime,
    signal_id: uuid.UUID | None,
    alone: bool,
) -> Any:
    payload = AssessmentChanged(
        department_id=facts.id,
        department=facts.code,
        provider_agb=facts.provider_agb,
        region=facts.region,
        care_type=facts.care_type,
        cluster=facts.cluster,
        scope=Scope(facts.scope),
        previous_level=previous.level if previous is not None else None,
        level=assessment.level,
        no_alternative=alone,
        reasons=for_event(reasons),
        ruleset_version=assessment.ruleset_version,
        assessed_at=now,
        signal_id=signal_id,
    )
    return new_event(payload, source=Service.RULES)


def subscription(ruleset: Ruleset | Callable[[], Ruleset], clock: Clock = _utcnow) -> Subscription:
    """The rules worker's consumer group: signals in, assessments out.

    `ruleset` may be a holder (`reload.RulesetHolder`) that a SIGHUP refreshes: it is asked for
    the current ruleset at every event.
    """
    current = ruleset if callable(ruleset) else (lambda: ruleset)

    async def handle(session: AsyncSession, event: Event) -> None:
        if event.type != EventType.SIGNAL_RECEIVED.value:
            return
        data = event.data
        await judge(
            session,
            current(),
            uuid.UUID(str(data["department_id"])),
            clock(),
            trigger=SignalKind(data["kind"]),
            signal_id=uuid.UUID(str(data["signal_id"])),
        )

    return Subscription(GROUP, (Topic.SIGNALS.value,), handle)

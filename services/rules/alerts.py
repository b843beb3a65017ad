"""The alert lifecycle of a department, driven by its assessments.

At most one unresolved alert per department. An assessment at `watch` or above opens one, or
updates it when the level or the reasons change. An `ok` assessment does not resolve it at once:
only after `hysteresis_reports` reports in a row judged ok (the ruleset says how many), so that a
figure hovering around a threshold does not open and close alerts every month. Every change is an
alert event in the alert's timeline and an event on the alerts topic, in the same transaction
(the batch writes them together, `batch.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.core.db.models import Alert, AlertEvent
from services.core.domain import (
    AlertEventType,
    AlertKind,
    AlertStatus,
    EscalationStep,
    Level,
)
from services.core.events.outbox import NewEvent
from services.core.events.payloads import ResolutionReason
from services.rules.evaluate import Assessment
from services.rules.events import alert_opened, alert_recovered, alert_updated, department_alert
from services.rules.loading import DepartmentFacts

if TYPE_CHECKING:
    from services.rules.batch import Batch


async def follow_assessment(
    batch: Batch,
    facts: DepartmentFacts,
    assessment: Assessment,
    reasons: list[dict[str, Any]],
    now: datetime,
    *,
    hysteresis_reports: int,
    signal_id: uuid.UUID | None,
    no_alternative: bool = False,
) -> list[NewEvent]:
    """Open, update or (after the hysteresis) resolve the department's alert; its events."""
    alert = batch.alerts.get(facts.id)
    if assessment.level is not Level.OK:
        if alert is None:
            return [_open(batch, facts, assessment, reasons, now, signal_id, no_alternative)]
        alert.no_alternative = no_alternative
        return _update(batch, facts, alert, assessment, reasons, now, signal_id)
    if alert is None:
        return []
    if alert.ok_since is None:
        alert.ok_since = now
    if await batch.reports_since((facts.id,), alert.ok_since) < hysteresis_reports:
        return []
    return [_resolve(batch, facts, alert, now)]


def timeline_entry(alert: Alert, kind: AlertEventType, now: datetime, **details: Any) -> AlertEvent:
    """One line of an alert's timeline, at its current level and step."""
    return AlertEvent(**timeline_row(alert, kind, now, **details))


def timeline_row(
    alert: Alert, kind: AlertEventType, now: datetime, **details: Any
) -> dict[str, Any]:
    """`timeline_entry`'s columns, as the batch copies them in (an ORM object costs more)."""
    return {
        "alert_id": alert.id,
        "type": kind,
        "at": now,
        "level": alert.level,
        "escalation": alert.escalation,
        "details": details,
    }


def _open(
    batch: Batch,
    facts: DepartmentFacts,
    assessment: Assessment,
    reasons: list[dict[str, Any]],
    now: datetime,
    signal_id: uuid.UUID | None,
    no_alternative: bool,
) -> NewEvent:
    alert = Alert(
        id=uuid.uuid4(),
        kind=AlertKind.DEPARTMENT,
        department_id=facts.id,
        region_id=facts.region_id,
        care_type_code=facts.care_type,
        level=assessment.level,
        status=AlertStatus.OPEN,
        escalation=EscalationStep.PROVIDER,
        no_alternative=no_alternative,
        reasons=reasons,
        opened_at=now,
        ruleset_version=assessment.ruleset_version,
    )
    batch.alerts[facts.id] = alert
    batch.add(alert)
    batch.timeline.append(timeline_row(alert, AlertEventType.OPENED, now, signal_id=str(signal_id)))
    return alert_opened(department_alert(facts, alert), signal_id)


def _update(
    batch: Batch,
    facts: DepartmentFacts,
    alert: Alert,
    assessment: Assessment,
    reasons: list[dict[str, Any]],
    now: datetime,
    signal_id: uuid.UUID | None,
) -> list[NewEvent]:
    alert.ok_since = None  # not ok (any more): the hysteresis starts again next time
    same_reasons = [r["rule_id"] for r in alert.reasons] == [r["rule_id"] for r in reasons]
    if alert.level is assessment.level and same_reasons:
        return []
    previous = alert.level
    alert.level = assessment.level
    alert.reasons = reasons
    alert.ruleset_version = assessment.ruleset_version
    batch.timeline.append(
        timeline_row(
            alert,
            AlertEventType.UPDATED,
            now,
            previous_level=previous.value,
            signal_id=str(signal_id),
        )
    )
    return [alert_updated(department_alert(facts, alert), previous, signal_id)]


def _resolve(batch: Batch, facts: DepartmentFacts, alert: Alert, now: datetime) -> NewEvent:
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolution = ResolutionReason.RECOVERED.value
    del batch.alerts[facts.id]
    batch.timeline.append(timeline_row(alert, AlertEventType.RESOLVED, now, reason="recovered"))
    return alert_recovered(department_alert(facts, alert))

"""The events the rules worker emits, built as the event contract's models would build them.

The worker emits about one event a signal. Through the contract's pydantic models (validate the
values, then dump them to JSON) that was about a tenth of its CPU (docs/benchmarks.md, "Rules",
sixth session); here each event's `data` is built directly from values the worker already holds,
field by field in the models' order. tests/rules/test_events.py holds every builder equal to the
model's dump, byte for byte, so the contract stays the one in `payloads.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.core.db.models import Alert
from services.core.domain import AlertKind, Level, Scope
from services.core.events.outbox import NewEvent
from services.core.events.payloads import ResolutionReason, Service, coverage_key
from services.core.events.types import EventType
from services.rules.loading import DepartmentFacts
from services.rules.reasons import for_event

if TYPE_CHECKING:
    from services.rules.coverage import Cell  # which builds its events here

_SOURCE = Service.RULES.value
# The counts of a coverage cell, which the contract holds to be 0 or more.
_COUNTS = ("departments_active", "threatened", "critical", "capacity_total", "capacity_at_risk")


def json_time(moment: datetime) -> str:
    """A time as the contract writes it (pydantic's JSON mode): ISO 8601, UTC as `Z`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an event's time must be aware of its zone, not {moment!r}")
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _maybe_time(moment: datetime | None) -> str | None:
    return None if moment is None else json_time(moment)


def _maybe_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _event(event_type: EventType, subject: str, key: str, data: dict[str, Any]) -> NewEvent:
    return NewEvent(type=event_type, source=_SOURCE, subject=subject, partition_key=key, data=data)


def assessment_changed(
    facts: DepartmentFacts,
    *,
    previous_level: Level | None,
    level: Level,
    no_alternative: bool,
    reasons: list[dict[str, Any]],
    ruleset_version: str,
    assessed_at: datetime,
    signal_id: uuid.UUID | None,
) -> NewEvent:
    """`assessment.changed` (`payloads.AssessmentChanged`)."""
    department = str(facts.id)
    data = {
        "department_id": department,
        "department": facts.code,
        "provider_agb": facts.provider_agb,
        "region": facts.region,
        "care_type": facts.care_type,
        "cluster": facts.cluster.value,
        "scope": Scope(facts.scope).value,
        "previous_level": None if previous_level is None else previous_level.value,
        "level": level.value,
        "no_alternative": no_alternative,
        "reasons": for_event(reasons),
        "ruleset_version": ruleset_version,
        "assessed_at": json_time(assessed_at),
        "signal_id": _maybe_id(signal_id),
    }
    return _event(EventType.ASSESSMENT_CHANGED, department, department, data)


def department_alert(facts: DepartmentFacts, alert: Alert) -> dict[str, Any]:
    """A department's alert as alert events carry it (`payloads.Alert`)."""
    return _alert(
        alert,
        department_id=str(facts.id),
        department=facts.code,
        provider_agb=facts.provider_agb,
        region=facts.region,
        care_type=facts.care_type,
        cluster=facts.cluster.value,
        scope=Scope(facts.scope).value,
        no_alternative=alert.no_alternative,
    )


def coverage_alert(cell: Cell, alert: Alert) -> dict[str, Any]:
    """A coverage cell's alert as alert events carry it (`payloads.Alert`)."""
    scope = Scope.REGIONAL if cell.region_id is not None else Scope.SUPRA_REGIONAL
    return _alert(
        alert,
        department_id=None,
        department=None,
        provider_agb=None,
        region=cell.region,
        care_type=cell.care_type,
        cluster=cell.cluster.value,
        scope=scope.value,
        no_alternative=True,
    )


def _alert(
    alert: Alert,
    *,
    department_id: str | None,
    department: str | None,
    provider_agb: str | None,
    region: str | None,
    care_type: str,
    cluster: str,
    scope: str,
    no_alternative: bool,
) -> dict[str, Any]:
    kind = AlertKind(alert.kind)
    if (department_id is None) != (kind is AlertKind.COVERAGE):
        raise ValueError(f"a {kind.value} alert with department {department_id!r}")
    return {
        "id": str(alert.id),
        "kind": kind.value,
        "department_id": department_id,
        "department": department,
        "provider_agb": provider_agb,
        "region": region,
        "care_type": care_type,
        "cluster": cluster,
        "scope": scope,
        "level": alert.level.value,
        "status": alert.status.value,
        "escalation": alert.escalation.value,
        "no_alternative": no_alternative,
        "reasons": for_event(alert.reasons),
        "opened_at": json_time(alert.opened_at),
        "escalated_at": _maybe_time(alert.escalated_at),
        "acknowledged_at": _maybe_time(alert.acknowledged_at),
        "resolved_at": _maybe_time(alert.resolved_at),
        "ruleset_version": alert.ruleset_version,
    }


def _alert_event(event_type: EventType, alert: dict[str, Any], **rest: Any) -> NewEvent:
    """Keyed as `AlertPayload` keys them: by the department, or by the coverage cell."""
    department_id = alert["department_id"]
    key = department_id or coverage_key(alert["region"], alert["care_type"])
    return _event(event_type, alert["id"], key, {"alert": alert, **rest})


def alert_opened(alert: dict[str, Any], signal_id: uuid.UUID | None) -> NewEvent:
    """`alert.opened` (`payloads.AlertOpened`)."""
    return _alert_event(EventType.ALERT_OPENED, alert, signal_id=_maybe_id(signal_id))


def alert_updated(
    alert: dict[str, Any], previous_level: Level, signal_id: uuid.UUID | None
) -> NewEvent:
    """`alert.updated` (`payloads.AlertUpdated`)."""
    return _alert_event(
        EventType.ALERT_UPDATED,
        alert,
        previous_level=previous_level.value,
        signal_id=_maybe_id(signal_id),
    )


def alert_recovered(alert: dict[str, Any]) -> NewEvent:
    """`alert.resolved` by the engine after the hysteresis (`payloads.AlertResolved`)."""
    return _alert_event(
        EventType.ALERT_RESOLVED,
        alert,
        reason=ResolutionReason.RECOVERED.value,
        resolved_by=None,
        note=None,
    )


def coverage_changed(
    cell: Cell,
    figures: dict[str, int],
    *,
    previous_level: Level | None,
    level: Level,
    ruleset_version: str,
    changed_at: datetime,
) -> NewEvent:
    """`coverage.changed` (`payloads.CoverageChanged`); `figures` as `coverage.follow_cell`
    counts them."""
    for name in _COUNTS:
        if figures[name] < 0:
            raise ValueError(f"{name} cannot be negative: {figures[name]}")
    data = {
        "region": cell.region,
        "care_type": cell.care_type,
        "cluster": cell.cluster.value,
        "departments": figures["departments_active"],
        "threatened": figures["threatened"],
        "critical": figures["critical"],
        "capacity_total": figures["capacity_total"],
        "capacity_at_risk": figures["capacity_at_risk"],
        "no_alternative": cell.gap,
        "previous_level": None if previous_level is None else previous_level.value,
        "level": level.value,
        "ruleset_version": ruleset_version,
        "changed_at": json_time(changed_at),
    }
    key = coverage_key(cell.region, cell.care_type)
    return _event(EventType.COVERAGE_CHANGED, key, key, data)

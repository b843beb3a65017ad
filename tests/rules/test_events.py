"""The worker builds its events by hand for speed; each must be what the contract's model makes.

The oracle is the pydantic path the worker used before (`new_event` of the payload model), with
the alert part as the notifier makes it for its own events: the same type, source, subject and
key, and the same `data` byte for byte (orjson keeps key order).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from services.core.db.models import Alert, Department
from services.core.domain import (
    AlertKind,
    AlertStatus,
    Cluster,
    EscalationStep,
    Level,
    Scope,
)
from services.core.events.outbox import NewEvent
from services.core.events.payloads import Alert as AlertPart
from services.core.events.payloads import (
    AlertOpened,
    AlertResolved,
    AlertUpdated,
    AssessmentChanged,
    CoverageChanged,
    ResolutionReason,
    Service,
    new_event,
)
from services.notify.parties import AlertContext
from services.rules import events
from services.rules.cases import run_cases
from services.rules.coverage import Cell, Member, gap_reason, no_alternative_reason
from services.rules.loading import DepartmentFacts
from services.rules.reasons import for_event, reason_document
from services.rules.ruleset import load_ruleset
from tests.rules.test_default_ruleset import CASES as CASES_FILE

SIGNAL = uuid.UUID("0b6a4a34-6c1e-4f57-9f43-6b1f1c2d3e4f")
TIMES = (
    datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 18, 0, 5, 120, tzinfo=UTC),  # microseconds
    datetime(2026, 11, 30, 19, 0, 5, 999999, tzinfo=timezone(timedelta(hours=1))),
)


def stored_reasons() -> list[list[dict[str, Any]]]:
    """Reasons as the worker stores them: every rule the expert cases fire, and the engine's own,
    in the worker's key order and in jsonb's (as an alert read back from the database has them)."""
    ruleset = load_ruleset()
    outcomes = run_cases(CASES_FILE, ruleset)
    found = [[reason_document(r) for r in o.assessment.reasons] for o in outcomes]
    cell = hic_cell(region="ijssel-vecht")
    found.append([no_alternative_reason(cell, Level.CRITICAL), *found[-1]])
    found.append([gap_reason(cell)])
    found.append([])
    as_jsonb = [[jsonb_order(r) for r in reasons] for reasons in found]
    return [r for r in found + as_jsonb if r is not None]


def jsonb_order(document: dict[str, Any]) -> dict[str, Any]:
    """The keys in the order jsonb keeps them: shorter first, then by their bytes."""
    return {k: document[k] for k in sorted(document, key=lambda k: (len(k.encode()), k.encode()))}


def hic_cell(region: str | None) -> Cell:
    members = (Member(uuid.uuid4(), Level.THREATENED, 12), Member(uuid.uuid4(), Level.OK, 30))
    return Cell(1 if region else None, region, "acute.hic", Cluster.ACUTE, members)


def facts(scope: Scope = Scope.REGIONAL) -> DepartmentFacts:
    return DepartmentFacts(
        id=uuid.uuid4(),
        code="HIC-Zwolle.2",
        provider_agb="73730123",
        region="ijssel-vecht",
        region_id=1,
        care_type="acute.hic",
        cluster=Cluster.ACUTE,
        scope=scope.value,
        capacity=12,
        active=True,
    )


def alert(kind: AlertKind, reasons: list[dict[str, Any]], moment: datetime, **more: Any) -> Alert:
    return Alert(
        id=uuid.uuid4(),
        kind=kind,
        level=more.pop("level", Level.THREATENED),
        status=more.pop("status", AlertStatus.OPEN),
        escalation=more.pop("escalation", EscalationStep.PROVIDER),
        no_alternative=more.pop("no_alternative", False),
        reasons=reasons,
        opened_at=moment,
        escalated_at=more.pop("escalated_at", None),
        acknowledged_at=more.pop("acknowledged_at", None),
        resolved_at=more.pop("resolved_at", None),
        ruleset_version="2026.11.1",
        **more,
    )


def assert_same(built: NewEvent, model: NewEvent) -> None:
    assert (built.type, built.source, built.subject, built.partition_key) == (
        model.type,
        model.source,
        model.subject,
        model.partition_key,
    )
    assert orjson.dumps(built.data) == orjson.dumps(model.data)
    assert built.cloudevent()["data"] == model.data


def department_part(department: DepartmentFacts, row: Alert) -> AlertPart:
    """The notifier's view of the same alert: what its events and the alert API carry."""
    return AlertContext(
        alert=row,
        department=Department(code=department.code),
        provider_agb=department.provider_agb,
        provider_name=None,
        region_code=department.region,
        region_name=None,
        care_type_name="",
        cluster=department.cluster.value,
        scope=Scope(department.scope),
    ).part()


def coverage_part(cell: Cell, row: Alert) -> AlertPart:
    return AlertContext(
        alert=row,
        department=None,
        provider_agb=None,
        provider_name=None,
        region_code=cell.region,
        region_name=None,
        care_type_name="",
        cluster=cell.cluster.value,
        scope=Scope.REGIONAL if cell.region_id is not None else Scope.SUPRA_REGIONAL,
    ).part()


def recovered(part: AlertPart) -> NewEvent:
    """`alert.resolved` after the hysteresis, through the contract's model."""
    return new_event(
        AlertResolved(alert=part, reason=ResolutionReason.RECOVERED, resolved_by=None, note=None),
        source=Service.RULES,
    )


def test_assessment_changed_is_what_the_contract_makes() -> None:
    every = stored_reasons()
    assert len({r["rule_id"] for reasons in every for r in reasons}) >= 12
    for number, reasons in enumerate(every):
        moment = TIMES[number % len(TIMES)]
        previous = (None, Level.WATCH, Level.CRITICAL)[number % 3]
        signal = SIGNAL if number % 4 else None
        department = facts(Scope.SUPRA_REGIONAL if number % 5 == 0 else Scope.REGIONAL)
        level = Level.THREATENED if reasons else Level.OK
        built = events.assessment_changed(
            department,
            previous_level=previous,
            level=level,
            no_alternative=number % 2 == 0,
            reasons=reasons,
            ruleset_version="2026.11.1",
            assessed_at=moment,
            signal_id=signal,
        )
        model = AssessmentChanged(
            department_id=department.id,
            department=department.code,
            provider_agb=department.provider_agb,
            region=department.region,
            care_type=department.care_type,
            cluster=department.cluster,
            scope=Scope(department.scope),
            previous_level=previous,
            level=level,
            no_alternative=number % 2 == 0,
            reasons=for_event(reasons),
            ruleset_version="2026.11.1",
            assessed_at=moment,
            signal_id=signal,
        )
        assert_same(built, new_event(model, source=Service.RULES))


def test_department_alert_events_are_what_the_contract_makes() -> None:
    department = facts()
    for number, reasons in enumerate(stored_reasons()):
        moment = TIMES[number % len(TIMES)]
        row = alert(
            AlertKind.DEPARTMENT,
            reasons,
            moment,
            department_id=department.id,
            care_type_code=department.care_type,
            no_alternative=number % 2 == 1,
            escalated_at=moment + timedelta(days=1) if number % 3 else None,
            acknowledged_at=moment + timedelta(days=2) if number % 3 == 2 else None,
            escalation=EscalationStep.REGIONAL_TABLE if number % 3 else EscalationStep.PROVIDER,
        )
        part = events.department_alert(department, row)
        signal = SIGNAL if number % 2 else None
        assert_same(
            events.alert_opened(part, signal),
            new_event(
                AlertOpened(alert=department_part(department, row), signal_id=signal),
                source=Service.RULES,
            ),
        )
        assert_same(
            events.alert_updated(part, Level.WATCH, signal),
            new_event(
                AlertUpdated(
                    alert=department_part(department, row),
                    previous_level=Level.WATCH,
                    signal_id=signal,
                ),
                source=Service.RULES,
            ),
        )
        row.status, row.resolved_at = AlertStatus.RESOLVED, moment + timedelta(days=40)
        assert_same(
            events.alert_recovered(events.department_alert(department, row)),
            recovered(department_part(department, row)),
        )


@pytest.mark.parametrize("region", ["ijssel-vecht", None], ids=["regional", "national"])
def test_coverage_events_are_what_the_contract_makes(region: str | None) -> None:
    cell = hic_cell(region)
    for number, moment in enumerate(TIMES):
        reasons = [gap_reason(cell)] if number != 1 else [jsonb_order(gap_reason(cell))]
        row = alert(
            AlertKind.COVERAGE,
            reasons,
            moment,
            region_id=cell.region_id,
            care_type_code=cell.care_type,
            level=Level.CRITICAL,
            escalation=EscalationStep.REGIONAL_TABLE if region else EscalationStep.NATIONAL_TABLE,
            no_alternative=True,
        )
        assert_same(
            events.alert_opened(events.coverage_alert(cell, row), None),
            new_event(
                AlertOpened(alert=coverage_part(cell, row), signal_id=None), source=Service.RULES
            ),
        )
        row.status, row.resolved_at = AlertStatus.RESOLVED, moment
        assert_same(
            events.alert_recovered(events.coverage_alert(cell, row)),
            recovered(coverage_part(cell, row)),
        )
        figures = {
            "departments_active": len(cell.members),
            "threatened": 1,
            "critical": number,
            "capacity_total": cell.capacity_total,
            "capacity_at_risk": 12,
        }
        previous = (None, Level.OK, Level.THREATENED)[number]
        assert_same(
            events.coverage_changed(
                cell,
                figures,
                previous_level=previous,
                level=Level.WATCH,
                ruleset_version="2026.11.1",
                changed_at=moment,
            ),
            new_event(
                CoverageChanged(
                    region=cell.region,
                    care_type=cell.care_type,
                    cluster=cell.cluster,
                    departments=figures["departments_active"],
                    threatened=1,
                    critical=number,
                    capacity_total=figures["capacity_total"],
                    capacity_at_risk=12,
                    no_alternative=cell.gap,
                    previous_level=previous,
                    level=Level.WATCH,
                    ruleset_version="2026.11.1",
                    changed_at=moment,
                ),
                source=Service.RULES,
            ),
        )


def test_what_the_contract_refuses_is_refused_here_too() -> None:
    department = facts()
    with pytest.raises(ValueError, match="aware"):
        events.assessment_changed(
            department,
            previous_level=None,
            level=Level.OK,
            no_alternative=False,
            reasons=[],
            ruleset_version="2026.11.1",
            assessed_at=datetime(2026, 11, 30, 18, 0),  # noqa: DTZ001 - naive, as under test
            signal_id=None,
        )
    incomplete = {k: v for k, v in gap_reason(hic_cell("ijssel-vecht")).items() if k != "norm"}
    with pytest.raises(KeyError, match="norm"):
        events.department_alert(
            department,
            alert(AlertKind.DEPARTMENT, [incomplete], TIMES[0], department_id=department.id),
        )
    with pytest.raises(ValueError, match="coverage alert with department"):
        events.department_alert(department, alert(AlertKind.COVERAGE, [], TIMES[0]))
    with pytest.raises(ValueError, match="cannot be negative"):
        events.coverage_changed(
            hic_cell(None),
            {
                "departments_active": 2,
                "threatened": -1,
                "critical": 0,
                "capacity_total": 42,
                "capacity_at_risk": 0,
            },
            previous_level=None,
            level=Level.OK,
            ruleset_version="2026.11.1",
            changed_at=TIMES[0],
        )

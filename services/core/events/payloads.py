"""The `data` of each event type: the public event contract, one pydantic model per type.

Producers build their events from these models (`new_event`) and consumers may read with them,
so the contract is code, not prose: docs/events.md and docs/asyncapi.yaml are checked against it.
`signal.received` is modelled exactly as `services/ingest/recording.py` emits it.

Every field is always present; a field that may be empty says so with `null`. The models refuse
unknown fields, so a producer cannot add one without changing the contract here first. Events
about one department are keyed by its id (their order holds per department); events about no
single department are keyed by what they are about (`coverage_key`, `DIGEST_KEY`).
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.core.domain import (
    AGB_PATTERN,
    SLUG_PATTERN,
    AlertKind,
    AlertStatus,
    Cluster,
    EscalationStep,
    Level,
    Role,
    Scope,
    SignalKind,
    SignalSource,
)
from services.core.events.outbox import NewEvent
from services.core.events.types import EventType

# The code formats of the registers (departments, reference data); a test keeps them the same.
DEPARTMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CARE_TYPE_PATTERN = r"^[a-z][a-z_]*\.[a-z0-9][a-z0-9_]*$"
PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
DIGEST_KEY = "digests"  # one key for all digests: they stay in order, one partition

DepartmentCode = Annotated[str, Field(pattern=DEPARTMENT_PATTERN, max_length=64)]
RegionCode = Annotated[str, Field(pattern=SLUG_PATTERN.pattern, max_length=64)]
CareTypeCode = Annotated[str, Field(pattern=CARE_TYPE_PATTERN, max_length=64)]
AgbCode = Annotated[str, Field(pattern=AGB_PATTERN.pattern)]
Count = Annotated[int, Field(ge=0)]
Figure = float | int | bool | str | None


class Service(StrEnum):
    """The services that emit events; the envelope's `source` is `/vroegsignaal/<service>`."""

    INGEST = "ingest"
    RULES = "rules"
    NOTIFY = "notify"


class EscalationReason(StrEnum):
    """Why an alert went up a step of the ladder."""

    LEVEL = "level"  # its level reached the step's threshold (critical: the regional table at once)
    TIMER = "timer"  # not acknowledged in time at its step
    COVERAGE = "coverage"  # the region has no unthreatened care of its type left


class ResolutionReason(StrEnum):
    """Why an alert was closed."""

    RECOVERED = "recovered"  # the department was judged ok for the whole hysteresis period
    MANUAL = "manual"  # a provider, insurer or table resolved it, with a note
    DEPARTMENT_CLOSED = "department_closed"  # the department no longer exists to watch


def coverage_key(region: str | None, care_type: str) -> str:
    """The partition key and subject of one coverage cell; `national/...` for supra-regional."""
    return f"{region or 'national'}/{care_type}"


class EventPayload(BaseModel):
    """Base of every event's `data`: closed, immutable, and knows its subject and key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[EventType]

    def subject(self) -> str:
        """The envelope's `subject`: what the event is about."""
        raise NotImplementedError

    def partition_key(self) -> str:
        """The `partitionkey` extension (the Kafka key): events with one key stay in order."""
        raise NotImplementedError


class Part(BaseModel):
    """Base of the objects nested in a payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the example world: FACT Zwolle-Zuid of an invented provider in IZA region IJssel-Vecht -----

_DEPARTMENT_ID = "6f1c2a9e-3b4d-4e8f-9a51-2c7d8e0b4f13"
_PROVIDER_ORG_ID = "0d6b8f3a-7c21-4b9e-8f5a-1e2d3c4b5a69"
_TABLE_ORG_ID = "8e4c1a7d-2b9f-4d63-a0e5-7f1b3c9d2e48"
_SIGNAL_ID = "c3e1f7a2-5d84-4b6c-9e0f-8a7b6c5d4e31"
_STAFFING_SIGNAL_ID = "9b2d4f6a-1c3e-4a5b-8d7f-0e1a2b3c4d5e"
_STOP_SIGNAL_ID = "e7a9c1b3-4d5f-4e60-8a1b-2c3d4e5f6a7b"
_ALERT_ID = "4a8e2c6f-9d1b-4f3a-b5c7-e9d1f3a5b7c9"
_RULESET = "2026.11"
_DEPARTMENT: dict[str, Any] = {
    "department_id": _DEPARTMENT_ID,
    "department": "FACT-ZWOLLE-ZUID",
    "provider_agb": "73990001",
    "region": "ijssel-vecht",
    "care_type": "outreach.fact",
}
_WAITING = {
    "rule_id": "waitlist.behandelwachttijd",
    "level": "threatened",
    "kind": "waitlist",
    "explanation": "Treatment waiting time is 13.5 weeks, more than 25% over the Treeknorm"
    " of 10 weeks.",
    "figures": {"behandelwachttijd_weeks": 13.5, "waiting_over_norm_count": 23},
    "thresholds": {"behandelwachttijd_weeks": 12.5},
    "norm": "treeknorm.ggz",
    "signal_ids": [_SIGNAL_ID],
}
_STAFFING = {
    "rule_id": "staffing.fte_filled",
    "level": "watch",
    "kind": "staffing",
    "explanation": "15.2 of 19.0 budgeted FTE are filled (80%); watch below 85%.",
    "figures": {"fte_budgeted": 19.0, "fte_filled": 15.2, "fte_filled_pct": 80.0},
    "thresholds": {"fte_filled_pct": 85.0},
    "norm": None,
    "signal_ids": [_STAFFING_SIGNAL_ID],
}
_STOP = {
    "rule_id": "admission_stop.active",
    "level": "critical",
    "kind": "admission_stop",
    "explanation": "The team takes no new clients since 2026-11-04 (expected until 2026-12-01).",
    "figures": {"active": True, "since": "2026-11-04", "expected_until": "2026-12-01"},
    "thresholds": {},
    "norm": None,
    "signal_ids": [_STOP_SIGNAL_ID],
}
_ALERT: dict[str, Any] = {
    "id": _ALERT_ID,
    "kind": "department",
    **_DEPARTMENT,
    "cluster": "outreach",
    "scope": "regional",
    "level": "threatened",
    "status": "open",
    "escalation": "provider",
    "no_alternative": False,
    "reasons": [_WAITING, _STAFFING],
    "opened_at": "2026-11-02T07:12:06Z",
    "escalated_at": None,
    "acknowledged_at": None,
    "resolved_at": None,
    "ruleset_version": _RULESET,
}
_CRITICAL_ALERT = {**_ALERT, "level": "critical", "reasons": [_STOP, _WAITING, _STAFFING]}
_ESCALATED_ALERT = {
    **_CRITICAL_ALERT,
    "escalation": "regional_table",
    "escalated_at": "2026-11-04T13:40:12Z",
}
_ACKNOWLEDGED_ALERT = {
    **_ESCALATED_ALERT,
    "status": "acknowledged",
    "acknowledged_at": "2026-11-04T15:05:43Z",
}
_TABLE = {
    "organisation_id": _TABLE_ORG_ID,
    "organisation": "Regionale tafel IJssel-Vecht",
    "role": "regional_table",
    "user": "Anouk Jansen",
}


def _example(data: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [data]})


# --- signals -------------------------------------------------------------------------------------


class SignalReceived(EventPayload):
    """A signal was stored: the rules judge its department again."""

    event_type: ClassVar[EventType] = EventType.SIGNAL_RECEIVED
    model_config = _example(
        {
            "signal_id": _SIGNAL_ID,
            **_DEPARTMENT,
            "kind": "waitlist",
            "observed_at": "2026-11-02T08:00:00+01:00",
            "data": {
                "waiting_count": 64,
                "aanmeldwachttijd_weeks": 6.0,
                "behandelwachttijd_weeks": 13.5,
                "waiting_over_norm_count": 23,
            },
            "source": "api",
            "submitted_by": _PROVIDER_ORG_ID,
        }
    )

    signal_id: uuid.UUID = Field(description="the stored signal's id (the client's, if it chose)")
    department_id: uuid.UUID = Field(description="the department's id; also the partition key")
    department: DepartmentCode = Field(description="the department's code within its provider")
    provider_agb: AgbCode = Field(description="the provider's AGB code (8 digits)")
    region: RegionCode = Field(description="the code of the IZA region that owns it")
    care_type: CareTypeCode = Field(description="the care type's code, e.g. outreach.fact")
    kind: SignalKind = Field(description="what the signal reports on")
    observed_at: AwareDatetime = Field(description="when the situation was observed")
    data: dict[str, Any] = Field(
        description="the fields of the kind, as validated by the Signal v1 contract (dates as text)"
    )
    source: SignalSource = Field(description="how the signal came in")
    submitted_by: uuid.UUID = Field(description="the organisation that posted it")

    def subject(self) -> str:
        """The signal."""
        return str(self.signal_id)

    def partition_key(self) -> str:
        """Its department."""
        return str(self.department_id)


# --- assessments ---------------------------------------------------------------------------------


class Reason(Part):
    """One rule that fired: what it saw, against which threshold, in plain English."""

    rule_id: str = Field(description="the rule's id in the ruleset", min_length=1, max_length=100)
    level: Level = Field(description="the level this rule alone gives")
    kind: SignalKind | None = Field(
        description="the kind of signal the rule reads; null for a rule over several kinds"
    )
    explanation: str = Field(description="what was found, in English", min_length=1)
    figures: dict[str, Figure] = Field(description="the values the rule used, by name")
    thresholds: dict[str, Figure] = Field(description="the limits they were held against")
    norm: str | None = Field(description="the norm the limits come from, e.g. treeknorm.ggz")
    signal_ids: list[uuid.UUID] = Field(description="the signals the figures come from")


class AssessmentChanged(EventPayload):
    """A department's judgement changed (its level, or the rules that fired)."""

    event_type: ClassVar[EventType] = EventType.ASSESSMENT_CHANGED
    model_config = _example(
        {
            **_DEPARTMENT,
            "cluster": "outreach",
            "scope": "regional",
            "previous_level": "watch",
            "level": "threatened",
            "no_alternative": False,
            "reasons": [_WAITING, _STAFFING],
            "ruleset_version": _RULESET,
            "assessed_at": "2026-11-02T07:12:06Z",
            "signal_id": _SIGNAL_ID,
        }
    )

    department_id: uuid.UUID = Field(description="the department's id; also the partition key")
    department: DepartmentCode = Field(description="the department's code within its provider")
    provider_agb: AgbCode = Field(description="the provider's AGB code (8 digits)")
    region: RegionCode = Field(description="the code of the IZA region that owns it")
    care_type: CareTypeCode = Field(description="the care type's code, e.g. outreach.fact")
    cluster: Cluster = Field(description="the care type's cluster")
    scope: Scope = Field(description="regional, or supra_regional (the national table's care)")
    previous_level: Level | None = Field(description="the level before; null at the first")
    level: Level = Field(description="the level now")
    no_alternative: bool = Field(description="no equivalent care of this type left in reach")
    reasons: list[Reason] = Field(description="the rules that fired, most severe first")
    ruleset_version: str = Field(description="the ruleset that judged", max_length=64)
    assessed_at: AwareDatetime = Field(description="when the engine judged")
    signal_id: uuid.UUID | None = Field(
        description="the signal that led to it; null when a timer or a new ruleset did"
    )

    def subject(self) -> str:
        """The department."""
        return str(self.department_id)

    def partition_key(self) -> str:
        """The department."""
        return str(self.department_id)


# --- alerts --------------------------------------------------------------------------------------


class Alert(Part):
    """An alert as the alert API shows it, at the moment of the event."""

    id: uuid.UUID = Field(description="the alert's id")
    kind: AlertKind = Field(description="about a department, or about a region's coverage")
    department_id: uuid.UUID | None = Field(description="the department's id; null: coverage")
    department: DepartmentCode | None = Field(description="the department's code; null: coverage")
    provider_agb: AgbCode | None = Field(description="the provider's AGB code; null: coverage")
    region: RegionCode | None = Field(description="the IZA region's code; null: national")
    care_type: CareTypeCode = Field(description="the care type at risk")
    cluster: Cluster = Field(description="the care type's cluster")
    scope: Scope = Field(description="regional, or supra_regional (the national table's care)")
    level: Level = Field(description="the current level")
    status: AlertStatus = Field(description="open, acknowledged or resolved")
    escalation: EscalationStep = Field(description="the step of the ladder it is at")
    no_alternative: bool = Field(description="no equivalent care of this type left in reach")
    reasons: list[Reason] = Field(description="the reasons of the latest assessment")
    opened_at: AwareDatetime = Field(description="when it was opened")
    escalated_at: AwareDatetime | None = Field(description="when it last went up a step")
    acknowledged_at: AwareDatetime | None = Field(description="when it was acknowledged")
    resolved_at: AwareDatetime | None = Field(description="when it was resolved")
    ruleset_version: str = Field(description="the ruleset of the latest assessment", max_length=64)


class Actor(Part):
    """Who acted on an alert: the organisation and, in the dashboard, the person."""

    organisation_id: uuid.UUID = Field(description="the organisation's id")
    organisation: str = Field(description="the organisation's name")
    role: Role = Field(description="the organisation's role")
    user: str | None = Field(description="the dashboard user's name; null for an API key")


class AlertPayload(EventPayload):
    """Base of the alert events: the alert, keyed by its department (or its coverage cell)."""

    alert: Alert = Field(description="the alert after the change")

    def subject(self) -> str:
        """The alert."""
        return str(self.alert.id)

    def partition_key(self) -> str:
        """The department; a coverage alert's cell."""
        if self.alert.department_id is not None:
            return str(self.alert.department_id)
        return coverage_key(self.alert.region, self.alert.care_type)


class AlertOpened(AlertPayload):
    """A continuity risk was found where none was open: the provider's step is told."""

    event_type: ClassVar[EventType] = EventType.ALERT_OPENED
    model_config = _example({"alert": _ALERT, "signal_id": _SIGNAL_ID})

    signal_id: uuid.UUID | None = Field(
        description="the signal whose assessment opened it; null for coverage alerts"
    )


class AlertUpdated(AlertPayload):
    """An open alert's level or reasons changed."""

    event_type: ClassVar[EventType] = EventType.ALERT_UPDATED
    model_config = _example(
        {"alert": _CRITICAL_ALERT, "previous_level": "threatened", "signal_id": _STOP_SIGNAL_ID}
    )

    previous_level: Level = Field(description="the level before the change")
    signal_id: uuid.UUID | None = Field(
        description="the signal whose assessment changed it; null for coverage alerts"
    )


class AlertEscalated(AlertPayload):
    """An alert went up the ladder: a wider circle must now act on it."""

    event_type: ClassVar[EventType] = EventType.ALERT_ESCALATED
    model_config = _example(
        {
            "alert": _ESCALATED_ALERT,
            "from_step": "provider",
            "to_step": "regional_table",
            "reason": "level",
            "explanation": "The level became critical: the regional table is told at once.",
        }
    )

    from_step: EscalationStep = Field(description="the step it was at")
    to_step: EscalationStep = Field(description="the step it is at now")
    reason: EscalationReason = Field(description="why it went up (see above)")
    explanation: str = Field(description="why, in English", min_length=1)


class AlertAcknowledged(AlertPayload):
    """Someone at the alert's step took it on: timers stop escalating it."""

    event_type: ClassVar[EventType] = EventType.ALERT_ACKNOWLEDGED
    model_config = _example(
        {
            "alert": _ACKNOWLEDGED_ALERT,
            "acknowledged_by": _TABLE,
            "note": "Besproken aan de regionale tafel; aanmeldingen gaan tijdelijk naar FACT"
            " Zwolle-Noord.",
        }
    )

    acknowledged_by: Actor = Field(description="who acknowledged it")
    note: str | None = Field(description="their note (free text, no personal data)")


class AlertResolved(AlertPayload):
    """The risk is over: the alert is closed and escalates no further."""

    event_type: ClassVar[EventType] = EventType.ALERT_RESOLVED
    model_config = _example(
        {
            "alert": {
                **_ACKNOWLEDGED_ALERT,
                "level": "watch",
                "reasons": [_STAFFING],
                "status": "resolved",
                "resolved_at": "2026-12-03T10:20:00Z",
            },
            "reason": "manual",
            "resolved_by": _TABLE,
            "note": "Cliëntenstop opgeheven per 1 december; twee vacatures vervuld.",
        }
    )

    reason: ResolutionReason = Field(description="why it was closed (see above)")
    resolved_by: Actor | None = Field(description="who resolved it; null when the engine did")
    note: str | None = Field(description="their note (free text, no personal data)")


class AlertCommented(AlertPayload):
    """Someone wrote on the alert's timeline: what was agreed, what is being done."""

    event_type: ClassVar[EventType] = EventType.ALERT_COMMENTED
    model_config = _example(
        {
            "alert": _ACKNOWLEDGED_ALERT,
            "commented_by": _TABLE,
            "note": "Zorgkantoor en aanbieder zoeken samen tijdelijke bedden in Deventer.",
        }
    )

    commented_by: Actor = Field(description="who wrote it")
    note: str = Field(description="the comment (free text, no personal data)", min_length=1)


class ReminderReason(StrEnum):
    """Why an alert was announced again to its step."""

    ACKNOWLEDGED_OPEN = "acknowledged_open"  # acknowledged, but still open long after
    SILENCE_ENDED = "silence_ended"  # its silence ended while it was still open


class AlertReminded(AlertPayload):
    """An alert is announced again to the step it is at: nothing new, but still not solved."""

    event_type: ClassVar[EventType] = EventType.ALERT_REMINDED
    model_config = _example(
        {
            "alert": _ACKNOWLEDGED_ALERT,
            "reason": "acknowledged_open",
            "explanation": "Acknowledged 20 working days ago and still open.",
        }
    )

    reason: ReminderReason = Field(description="why it is announced again (see above)")
    explanation: str = Field(description="why, in English", min_length=1)


class Silence(Part):
    """A period in which a department's alerts are recorded but not announced."""

    id: uuid.UUID = Field(description="the silence's id")
    department_id: uuid.UUID = Field(description="the department's id")
    department: DepartmentCode = Field(description="the department's code")
    starts_at: AwareDatetime = Field(description="from")
    ends_at: AwareDatetime = Field(description="until (exclusive)")
    reason: str = Field(description="why (free text, no personal data)", min_length=1)
    lifted_at: AwareDatetime | None = Field(description="when it was ended early; null: not")


class AlertSilenced(EventPayload):
    """A department's alerts were silenced for a period, or a silence was lifted early.

    Silenced alerts are still recorded and still go up the ladder when they turn critical; their
    resolution is always announced; when a silence ends on an open alert, it is announced again.
    """

    event_type: ClassVar[EventType] = EventType.ALERT_SILENCED
    model_config = _example(
        {
            "silence": {
                "id": "2b4d6f8a-1c3e-4a5b-9d7f-0e2a4c6e8a1b",
                "department_id": _DEPARTMENT_ID,
                "department": "FACT-ZWOLLE-ZUID",
                "starts_at": "2026-11-05T00:00:00Z",
                "ends_at": "2027-01-05T00:00:00Z",
                "reason": "Aangekondigde fusie met FACT Zwolle-Noord; aanmeldingen lopen door.",
                "lifted_at": None,
            },
            "alert": _ACKNOWLEDGED_ALERT,
            "silenced_by": _TABLE,
        }
    )

    silence: Silence = Field(description="the silence after the change")
    alert: Alert | None = Field(description="the department's unresolved alert; null: none")
    silenced_by: Actor = Field(description="who silenced it, or lifted the silence")

    def subject(self) -> str:
        """The silence."""
        return str(self.silence.id)

    def partition_key(self) -> str:
        """The department: in order with its alert's events."""
        return str(self.silence.department_id)


# --- coverage and digest -------------------------------------------------------------------------


class CoverageChanged(EventPayload):
    """A region's care of one type changed: how much of it is left unthreatened."""

    event_type: ClassVar[EventType] = EventType.COVERAGE_CHANGED
    model_config = _example(
        {
            "region": "ijssel-vecht",
            "care_type": "outreach.fact",
            "cluster": "outreach",
            "departments": 4,
            "threatened": 1,
            "critical": 1,
            "capacity_total": 640,
            "capacity_at_risk": 300,
            "no_alternative": False,
            "previous_level": "watch",
            "level": "threatened",
            "ruleset_version": _RULESET,
            "changed_at": "2026-11-04T13:40:11Z",
        }
    )

    region: RegionCode | None = Field(
        description="the IZA region's code; null: supra-regional care, nationally"
    )
    care_type: CareTypeCode = Field(description="the care type's code")
    cluster: Cluster = Field(description="the care type's cluster")
    departments: Count = Field(description="active departments of this type in the region")
    threatened: Count = Field(description="of those, at level threatened")
    critical: Count = Field(description="of those, at level critical")
    capacity_total: Count = Field(description="their capacity (beds, or clients for teams)")
    capacity_at_risk: Count = Field(description="the capacity of the threatened and critical")
    no_alternative: bool = Field(description="no unthreatened department of this type is left")
    previous_level: Level | None = Field(description="the cell's level before; null at the first")
    level: Level = Field(description="the cell's level now")
    ruleset_version: str = Field(description="the ruleset that judged", max_length=64)
    changed_at: AwareDatetime = Field(description="when the figures changed")

    def subject(self) -> str:
        """The cell: `<region>/<care type>`."""
        return coverage_key(self.region, self.care_type)

    def partition_key(self) -> str:
        """The cell: its changes stay in order."""
        return coverage_key(self.region, self.care_type)


class DigestLinks(Part):
    """Where to read the digest: paths under the API's base URL (the caller's role applies)."""

    # `json` would shadow a BaseModel method: the field is `json_`, called `json` on the wire.
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    html: str = Field(description="the digest as a web page (Dutch)")
    pdf: str | None = Field(description="the same as PDF; null when none was made")
    json_: str = Field(alias="json", description="the figures as JSON")


class DigestCounts(Part):
    """The headline figures of the month, for a receiver's own overview."""

    departments: Count = Field(description="active crucial departments watched")
    alerts_opened: Count = Field(description="alerts opened in the month")
    alerts_resolved: Count = Field(description="alerts resolved in the month")
    alerts_open: Count = Field(description="alerts open at the end of the month")
    critical_open: Count = Field(description="of those, at level critical")
    escalated_regional_table: Count = Field(description="escalations to a regional table")
    escalated_national_table: Count = Field(description="escalations to the national table")
    coverage_gaps: Count = Field(description="region × care type left without unthreatened care")


class DigestPublished(EventPayload):
    """The monthly escalation digest for the governance board is ready."""

    event_type: ClassVar[EventType] = EventType.DIGEST_PUBLISHED
    model_config = _example(
        {
            "period": "2026-11",
            "published_at": "2026-12-01T06:00:00Z",
            "ruleset_version": _RULESET,
            "links": {
                "html": "/v1/digests/2026-11.html",
                "pdf": "/v1/digests/2026-11.pdf",
                "json": "/v1/digests/2026-11.json",
            },
            "counts": {
                "departments": 1312,
                "alerts_opened": 37,
                "alerts_resolved": 29,
                "alerts_open": 52,
                "critical_open": 6,
                "escalated_regional_table": 11,
                "escalated_national_table": 2,
                "coverage_gaps": 1,
            },
        }
    )

    period: str = Field(pattern=PERIOD_PATTERN, description="the month, YYYY-MM")
    published_at: AwareDatetime = Field(description="when it was published")
    ruleset_version: str = Field(description="the ruleset of the month's end", max_length=64)
    links: DigestLinks = Field(description="where to read it")
    counts: DigestCounts = Field(description="the headline figures")

    def subject(self) -> str:
        """The period."""
        return self.period

    def partition_key(self) -> str:
        """One key for all digests, so they arrive in order."""
        return DIGEST_KEY


# --- the registry --------------------------------------------------------------------------------

PAYLOAD_OF: dict[EventType, type[EventPayload]] = {
    model.event_type: model
    for model in (
        SignalReceived,
        AssessmentChanged,
        AlertOpened,
        AlertUpdated,
        AlertEscalated,
        AlertAcknowledged,
        AlertResolved,
        AlertCommented,
        AlertReminded,
        AlertSilenced,
        CoverageChanged,
        DigestPublished,
    )
}

# Who may emit each type (the envelope's source); the first is the one of the examples.
SOURCES: dict[EventType, tuple[Service, ...]] = {
    EventType.SIGNAL_RECEIVED: (Service.INGEST,),
    EventType.ASSESSMENT_CHANGED: (Service.RULES,),
    EventType.ALERT_OPENED: (Service.RULES,),
    EventType.ALERT_UPDATED: (Service.RULES,),
    # The escalation policy and its timers live in the notifier.
    EventType.ALERT_ESCALATED: (Service.NOTIFY,),
    # Acknowledge and resolve are actions of the alert API (notify); the engine resolves too,
    # when a department has been ok long enough.
    EventType.ALERT_ACKNOWLEDGED: (Service.NOTIFY,),
    EventType.ALERT_RESOLVED: (Service.NOTIFY, Service.RULES),
    EventType.ALERT_COMMENTED: (Service.NOTIFY,),
    EventType.ALERT_REMINDED: (Service.NOTIFY,),
    EventType.ALERT_SILENCED: (Service.NOTIFY,),
    EventType.COVERAGE_CHANGED: (Service.RULES,),
    EventType.DIGEST_PUBLISHED: (Service.NOTIFY,),
}

# Fixed ids and times, so the examples in the docs can be compared with these exactly.
_EXAMPLE_TIMES: dict[EventType, datetime] = {
    EventType.SIGNAL_RECEIVED: datetime(2026, 11, 2, 7, 12, 5, tzinfo=UTC),
    EventType.ASSESSMENT_CHANGED: datetime(2026, 11, 2, 7, 12, 6, tzinfo=UTC),
    EventType.ALERT_OPENED: datetime(2026, 11, 2, 7, 12, 6, tzinfo=UTC),
    EventType.ALERT_UPDATED: datetime(2026, 11, 4, 13, 40, 11, tzinfo=UTC),
    EventType.ALERT_ESCALATED: datetime(2026, 11, 4, 13, 40, 12, tzinfo=UTC),
    EventType.ALERT_ACKNOWLEDGED: datetime(2026, 11, 4, 15, 5, 43, tzinfo=UTC),
    EventType.ALERT_RESOLVED: datetime(2026, 12, 3, 10, 20, 0, tzinfo=UTC),
    EventType.ALERT_COMMENTED: datetime(2026, 11, 5, 9, 30, 0, tzinfo=UTC),
    EventType.ALERT_REMINDED: datetime(2026, 12, 2, 6, 0, 0, tzinfo=UTC),
    EventType.ALERT_SILENCED: datetime(2026, 11, 5, 9, 45, 0, tzinfo=UTC),
    EventType.COVERAGE_CHANGED: datetime(2026, 11, 4, 13, 40, 11, tzinfo=UTC),
    EventType.DIGEST_PUBLISHED: datetime(2026, 12, 1, 6, 0, 0, tzinfo=UTC),
}
_EXAMPLE_IDS = uuid.UUID("5d7a3c1e-0b2f-4e6d-9c8a-7f1e2d3c4b5a")


def new_event(
    payload: EventPayload,
    *,
    source: Service,
    id: uuid.UUID | None = None,
    time: datetime | None = None,
) -> NewEvent:
    """The outbox event for a payload: its type, subject and key follow from the contract."""
    event_type = payload.event_type
    if source not in SOURCES[event_type]:
        raise ValueError(f"{source} does not emit {event_type}")
    extra: dict[str, Any] = {}
    if id is not None:
        extra["id"] = id
    if time is not None:
        extra["time"] = time
    return NewEvent(
        type=event_type,
        source=source.value,
        subject=payload.subject(),
        partition_key=payload.partition_key(),
        data=payload.model_dump(mode="json"),
        **extra,
    )


def example_data(event_type: EventType) -> dict[str, Any]:
    """The example `data` of a type (a copy), as declared on its model."""
    extra = PAYLOAD_OF[event_type].model_config.get("json_schema_extra")
    assert isinstance(extra, dict) and isinstance(extra["examples"], list)
    example = extra["examples"][0]
    assert isinstance(example, dict)
    return copy.deepcopy(example)


def example_cloudevent(event_type: EventType) -> dict[str, Any]:
    """A whole example event in CloudEvents structured JSON, as the bus carries it."""
    payload = PAYLOAD_OF[event_type].model_validate(example_data(event_type))
    event = new_event(
        payload,
        source=SOURCES[event_type][0],
        id=uuid.uuid5(_EXAMPLE_IDS, event_type.value),
        time=_EXAMPLE_TIMES[event_type],
    )
    return event.cloudevent()

"""Topics and event types of the public contract (DESIGN.md, "Events")."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    SIGNALS = "vroegsignaal.signals.v1"
    ASSESSMENTS = "vroegsignaal.assessments.v1"
    ALERTS = "vroegsignaal.alerts.v1"


class EventType(StrEnum):
    SIGNAL_RECEIVED = "nl.vroegsignaal.signal.received"
    ASSESSMENT_CHANGED = "nl.vroegsignaal.assessment.changed"
    ALERT_OPENED = "nl.vroegsignaal.alert.opened"
    ALERT_UPDATED = "nl.vroegsignaal.alert.updated"
    ALERT_ESCALATED = "nl.vroegsignaal.alert.escalated"
    ALERT_ACKNOWLEDGED = "nl.vroegsignaal.alert.acknowledged"
    ALERT_RESOLVED = "nl.vroegsignaal.alert.resolved"
    COVERAGE_CHANGED = "nl.vroegsignaal.coverage.changed"
    DIGEST_PUBLISHED = "nl.vroegsignaal.digest.published"


TOPIC_OF: dict[EventType, Topic] = {
    EventType.SIGNAL_RECEIVED: Topic.SIGNALS,
    EventType.ASSESSMENT_CHANGED: Topic.ASSESSMENTS,
    EventType.ALERT_OPENED: Topic.ALERTS,
    EventType.ALERT_UPDATED: Topic.ALERTS,
    EventType.ALERT_ESCALATED: Topic.ALERTS,
    EventType.ALERT_ACKNOWLEDGED: Topic.ALERTS,
    EventType.ALERT_RESOLVED: Topic.ALERTS,
    EventType.COVERAGE_CHANGED: Topic.ALERTS,
    EventType.DIGEST_PUBLISHED: Topic.ALERTS,
}

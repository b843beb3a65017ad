"""Topics and event types of the public contract (DESIGN.md, "Events")."""

from __future__ import annotations

import zlib
from enum import StrEnum

# Partitions of each topic in the PostgreSQL log: up to this many processes of one consumer group
# work side by side. Fixed, because a department must stay in one partition for its order to hold.
# (Kafka topics get their own count, VROEGSIGNAAL_KAFKA_PARTITIONS.)
LOG_PARTITIONS = 16


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
    ALERT_COMMENTED = "nl.vroegsignaal.alert.commented"
    ALERT_REMINDED = "nl.vroegsignaal.alert.reminded"
    ALERT_SILENCED = "nl.vroegsignaal.alert.silenced"
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
    EventType.ALERT_COMMENTED: Topic.ALERTS,
    EventType.ALERT_REMINDED: Topic.ALERTS,
    EventType.ALERT_SILENCED: Topic.ALERTS,
    EventType.COVERAGE_CHANGED: Topic.ALERTS,
    EventType.DIGEST_PUBLISHED: Topic.ALERTS,
}


def partition_of(key: str, partitions: int = LOG_PARTITIONS) -> int:
    """The partition of a key: stable across processes and releases (unlike `hash`)."""
    return zlib.crc32(key.encode()) % partitions

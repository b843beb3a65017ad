"""Prometheus metrics shared by the services; `/metrics` serves the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SIGNALS_ACCEPTED = Counter(
    "vroegsignaal_signals_accepted_total",
    "Signals stored, by kind and by how they arrived.",
    ["kind", "source"],
)
SIGNALS_REJECTED = Counter(
    "vroegsignaal_signals_rejected_total",
    "Signal requests refused, by reason (invalid, forbidden, unknown_department, conflict, ...).",
    ["reason"],
)

# The event backbone (services/core/events).
EVENTS_APPLIED = Counter(
    "vroegsignaal_events_applied_total",
    "Events a consumer group has handled (applied, or skipped as already applied).",
    ["group", "topic"],
)
EVENTS_DUPLICATE = Counter(
    "vroegsignaal_events_duplicate_total",
    "Events delivered again and skipped, because their id was already applied.",
    ["group"],
)
DEAD_LETTERS = Counter(
    "vroegsignaal_dead_letters_total",
    "Events parked as dead letters after failing every attempt.",
    ["group"],
)
EVENT_AGE = Histogram(
    "vroegsignaal_event_age_seconds",
    "From an event's time to the commit of its effect in a consumer group.",
    ["group", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "vroegsignaal_consumer_lag",
    "Events in a topic that a consumer group has not yet applied.",
    ["group", "topic"],
)
OUTBOX_BACKLOG = Gauge(
    "vroegsignaal_outbox_backlog",
    "Committed events the relay has not yet published to Kafka.",
)

# HTTP, per route template (not per URL: ids would make a series per alert).
HTTP_REQUESTS = Counter(
    "vroegsignaal_http_requests_total",
    "HTTP requests answered, by method, route and status code.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "vroegsignaal_http_request_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

# What the engine and the notifier do.
ASSESSMENTS = Counter(
    "vroegsignaal_assessments_total",
    "Assessments stored by the rules engine, by level.",
    ["level"],
)
OPEN_ALERTS = Gauge(
    "vroegsignaal_open_alerts",
    "Unresolved alerts, by level and escalation step (refreshed by the notifier).",
    ["level", "step"],
)
DELIVERY_ATTEMPTS = Counter(
    "vroegsignaal_delivery_attempts_total",
    "Webhook calls and e-mails tried, by channel and outcome (succeeded, retry, failed).",
    ["channel", "outcome"],
)

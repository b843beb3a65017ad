"""Prometheus metrics shared by the services; `/metrics` serves the default registry."""

from __future__ import annotations

from prometheus_client import Counter

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

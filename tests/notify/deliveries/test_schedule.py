"""The retry schedule: immediate, then 5 s … 10 h, over more than a day, jitter only adding."""

from __future__ import annotations

import random
from datetime import timedelta

from services.notify.deliveries.schedule import JITTER, MAX_ATTEMPTS, RETRY_DELAYS, next_delay


def test_the_schedule_spans_more_than_a_day_and_then_gives_up() -> None:
    assert MAX_ATTEMPTS == 8
    assert RETRY_DELAYS[0] == timedelta(0)  # the first attempt goes out at once
    assert sum(RETRY_DELAYS, timedelta(0)) > timedelta(days=1)
    assert next_delay(MAX_ATTEMPTS) is None


def test_jitter_stretches_each_wait_by_at_most_a_fifth() -> None:
    rng = random.Random(7)  # noqa: S311 (a seeded generator for a repeatable test)
    for attempts in range(1, MAX_ATTEMPTS):
        base = RETRY_DELAYS[attempts]
        waits = [next_delay(attempts, rng) for _ in range(200)]
        assert all(w is not None and base <= w <= base * (1 + JITTER) for w in waits)
        assert len(set(waits)) > 100  # spread, not one value for every delivery

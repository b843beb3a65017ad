"""When a failed delivery is tried again: a fixed exponential-ish table, stretched by jitter.

Attempt 1 goes out at once; after each failure the next waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
and 10 h: eight attempts over more than 27 hours, so a receiver that is down for a night still
gets everything. Each wait is stretched by a random 0-20 %: deliveries that failed together
(one outage) spread out instead of all hitting the receiver the moment it comes back. The jitter
only adds, never takes away (unlike "full" jitter, which could turn 10 h into 10 s), so the
schedule keeps its promise of "at least a day".
"""

from __future__ import annotations

import random
from datetime import timedelta

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""The wait before attempt n+1 (index n); the first attempt is immediate."""

MAX_ATTEMPTS = len(RETRY_DELAYS)
JITTER = 0.2

_random = random.Random()  # noqa: S311 (jitter spreads load; it guards nothing)


def next_delay(attempts_made: int, rng: random.Random | None = None) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` attempts, or None: give up."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[max(attempts_made, 0)]
    return base * (1 + (rng or _random).uniform(0, JITTER))

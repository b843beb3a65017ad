"""A token bucket per organisation: a runaway export cannot crowd out everyone else.

Buckets live in the process. With N API replicas an organisation gets up to N times the rate;
that is acceptable for a guard against accidents (it is not a billing meter), and it keeps the
database out of every request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """`rate` requests per second on average, bursts up to `burst`."""

    rate: float
    burst: float
    _buckets: dict[object, _Bucket] = field(default_factory=dict)

    def take(self, key: object, now: float | None = None) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """The `Retry-After` header value: whole seconds, at least one."""
        return str(max(1, math.ceil(wait)))

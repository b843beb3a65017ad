"""Trends and forecasts over a department's reports: small, exact arithmetic, no library needed.

The forecast is an ordinary least-squares line through the last reports (value against days):
with a handful of monthly reports it is as good as anything fancier, and a domain expert can
check it by hand. It says when the line reaches a limit, if it rises towards it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float


def relative_change(points: Sequence[Point]) -> float | None:
    """(last − first) / first over the points; None without two points or from zero."""
    if len(points) < 2 or points[0].value <= 0:
        return None
    return (points[-1].value - points[0].value) / points[0].value


def days_until_limit(points: Sequence[Point], limit: float) -> float | None:
    """Days from the last point until the fitted line reaches `limit`; None if it does not rise
    towards it, or if the last value is already at or past the limit (a threshold rule's job)."""
    if len(points) < 2 or points[-1].value >= limit:
        return None
    origin = points[0].at
    xs = [(p.at - origin).total_seconds() / 86400 for p in points]
    ys = [p.value for p in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None  # all reports on one day: no direction
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    if slope <= 0:
        return None
    fitted_last = mean_y + slope * (xs[-1] - mean_x)
    return max(0.0, (limit - fitted_last) / slope)

"""Trends and forecasts over a department's reports: small, exact arithmetic, no library needed.

The forecast is an ordinary least-squares line through the last reports (value against days):
with a handful of monthly reports it is as good as anything fancier, and a domain expert can
check it by hand. It says when the line reaches a limit, if it rises towards it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple


class Point(NamedTuple):
    """One report's value of a measure (a tuple: made several times per evaluation)."""

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
    return days_until_reached([p.at for p in points], [p.value for p in points], limit)


def days_until_reached(times: list[datetime], values: list[float], limit: float) -> float | None:
    """`days_until_limit` over the times and values apart (no `Point` made per report)."""
    return days_until_reached_at([micros(at) for at in times], values, limit)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - the epoch of naive times


def micros(at: datetime) -> int:
    """The time in whole microseconds since 1970: exact, so the difference of two is exactly
    the microseconds of their `timedelta`."""
    delta = at - (_EPOCH if at.tzinfo is not None else _NAIVE_EPOCH)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def days_until_reached_at(times: list[int], values: list[float], limit: float) -> float | None:
    """`days_until_reached` over times as `micros` (a report keeps its own: `Report.micros`).

    Two loops rather than five sums (it runs at every waiting-list judgement); the additions
    happen in the order `sum()` does them, and the days between two reports are their
    microseconds apart divided as `total_seconds()` divides them, so the result is the same to
    the last bit as the textbook formula over `timedelta`s (tests/rules/test_evaluate.py).
    """
    n = len(values)
    if n < 2 or values[-1] >= limit:
        return None
    if len(times) != n:
        raise ValueError("as many times as values")
    origin = times[0]
    sum_x = sum_y = 0.0
    for i in range(n):  # by index over lists: compiled (native.py), a C loop over doubles
        sum_x += (times[i] - origin) / 1e6 / 86400
        sum_y += values[i]
    mean_x, mean_y = sum_x / n, sum_y / n
    spread = covariance = 0.0
    for i in range(n):  # x once more rather than a list of boxed doubles: the same bits
        x = (times[i] - origin) / 1e6 / 86400
        spread += math.pow(x - mean_x, 2.0)  # what `** 2` computes, without boxing (native.py)
        covariance += (x - mean_x) * (values[i] - mean_y)
    if spread == 0:
        return None  # all reports on one day: no direction
    slope = covariance / spread
    if slope <= 0:
        return None
    fitted_last = mean_y + slope * ((times[-1] - origin) / 1e6 / 86400 - mean_x)
    return max(0.0, (limit - fitted_last) / slope)

"""Working days on the Dutch calendar, for the escalation timers.

"Three working days at the regional table" means three days on which a table can meet: not a
Saturday or Sunday, not a national holiday (New Year, Easter, King's Day, Ascension, Whitsun,
Christmas and, in lustrum years, Liberation Day — as the `holidays` package keeps them). A deadline
keeps the local time of day it started at, in the configured zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NL", years=year))


def is_working_day(day: date) -> bool:
    """Monday to Friday, and not a Dutch national holiday."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The moment `days` working days after `start`, at the same local time.

    Started on a weekend or holiday, the count begins at the next working day: an alert opened
    on Saturday with three working days is due on Wednesday at the same time of day.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    local = start.astimezone(zone)
    day = local.date()
    left = days
    while left > 0 or not is_working_day(day):
        day += timedelta(days=1)
        if left > 0 and is_working_day(day):
            left -= 1
    moment = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return moment.astimezone(start.tzinfo)


def working_days_between(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Whole working days from `start` to `end` (0 when `end` is not later)."""
    count = 0
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day < last:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count

"""Periods: the calendar month a digest covers, with its bounds in the service's time zone.

A month runs from its first day at 00:00 to the next month's first day at 00:00, local time
(`VROEGSIGNAAL_TIMEZONE`): the board thinks in Dutch months, not UTC ones. Bounds are half-open,
so an alert resolved at midnight belongs to the new month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.core.errors import InvalidInput
from services.core.months import MONTH_NAMES_NL

PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026-11` → Period(2026, 11); InvalidInput for anything else."""
        found = PERIOD.match(text.strip())
        if found is None or not 2000 <= int(found.group(1)) <= 2999:
            raise InvalidInput(f"period {text!r}: expected a month as YYYY-MM, e.g. 2026-11")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Period:
        """The month a moment falls in, in `zone`."""
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """`oktober 2026`, as the digest names its month."""
        return f"{MONTH_NAMES_NL[self.month - 1]} {self.year}"

    def shift(self, months: int) -> Period:
        """The month `months` later (earlier when negative)."""
        index = self.year * 12 + (self.month - 1) + months
        return Period(index // 12, index % 12 + 1)

    def previous(self) -> Period:
        return self.shift(-1)

    def starts_at(self, zone: ZoneInfo) -> datetime:
        """The first moment of the month, local midnight, as an aware UTC time."""
        return datetime(self.year, self.month, 1, tzinfo=zone).astimezone(UTC)

    def ends_at(self, zone: ZoneInfo) -> datetime:
        """The first moment after the month (exclusive end)."""
        return self.shift(1).starts_at(zone)

    def is_over(self, now: datetime, zone: ZoneInfo) -> bool:
        """Whether the whole month lies in the past: only then are its figures final."""
        return now >= self.ends_at(zone)

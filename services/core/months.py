"""The names of the calendar months in Dutch, as the digest writes them and NZa files spell them.

One list for every service: the digest names its month with it (`oktober 2026`), the NZa replay
reads remarks such as `tot 1 maart 2018` with it.
"""

from __future__ import annotations

from typing import Final

MONTH_NAMES_NL: Final = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)

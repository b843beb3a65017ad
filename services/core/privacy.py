"""Keeping personal identifiers out of signals.

Signals describe departments in aggregates (FTE, counts, percentages); they never need data about
a person. Free text is where a person's identifier slips in by accident ("opname van cliënt met BSN
123456782 geweigerd"), so free text is checked for numbers shaped like a BSN (burgerservicenummer,
the Dutch citizen service number) and refused. Refusing costs the sender one fix of their export;
storing a BSN would put special-category personal data into a service that must not hold any.

The check is deliberately a shape check, not an identification: 9 digits that pass the 11-test,
written together or in groups. About one random 9-digit number in eleven passes the test, so a
long amount or reference number can be refused too; that is the right side to err on.
"""

from __future__ import annotations

import re

# Not right after "(0)": "+31 (0)20 123 4567" is a phone number whose last 9 digits may pass.
_NOT_PHONE = r"(?<!\(0\))(?<!\(0\) )"
# 9 digits not part of a longer digit run.
_PLAIN = re.compile(_NOT_PHONE + r"(?<![0-9])[0-9]{9}(?![0-9])")
# A run of digit groups joined by single spaces, dots or dashes ("123 456 782", "1234.56.782").
# The whole run must hold exactly 9 digits: a phone number or a date with a time is longer.
_GROUPED = re.compile(_NOT_PHONE + r"(?<![0-9])[0-9]+(?:[ .\-][0-9]+)+(?![0-9])")
_SEPARATORS = str.maketrans("", "", " .-")
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def passes_eleven_test(digits: str) -> bool:
    """Whether 9 digits pass the BSN 11-test (elfproef); 000000000 does not."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit() or digits == "0" * 9:
        return False
    return (
        sum(weight * int(digit) for weight, digit in zip(_WEIGHTS, digits, strict=True)) % 11 == 0
    )


def contains_bsn(text: str) -> bool:
    """Whether the text holds a number shaped like a BSN: 9 digits passing the 11-test."""
    if any(passes_eleven_test(match.group()) for match in _PLAIN.finditer(text)):
        return True
    return any(
        passes_eleven_test(match.group().translate(_SEPARATORS))
        for match in _GROUPED.finditer(text)
    )

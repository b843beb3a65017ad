"""A number shaped like a BSN is found in free text, however it is written; others are not."""

from __future__ import annotations

import pytest

from services.core.privacy import contains_bsn, passes_eleven_test


def make_bsn(first_eight: str) -> str:
    """Complete 8 digits to a 9-digit number passing the 11-test (computed, not copied)."""
    total = sum(
        weight * int(digit) for weight, digit in zip(range(9, 1, -1), first_eight, strict=True)
    )
    check = total % 11
    assert check < 10, "this prefix has no valid check digit; pick another"
    return first_eight + str(check)


VALID = [make_bsn("12345678"), make_bsn("11122233"), make_bsn("26154893"), make_bsn("90000001")]


def test_the_computed_numbers_pass_and_are_the_known_ones() -> None:
    assert VALID[0] == "123456782"
    assert VALID[1] == "111222333"
    assert all(passes_eleven_test(number) for number in VALID)


@pytest.mark.parametrize("number", VALID)
@pytest.mark.parametrize(
    "template",
    [
        "{}",
        "BSN {} geweigerd",
        "(bsn:{})",
        "cliënt {}.",
        "regel1\n{}\nregel3",
    ],
)
def test_nine_digits_passing_the_eleven_test_are_found(number: str, template: str) -> None:
    assert contains_bsn(template.format(number))


@pytest.mark.parametrize(
    "text",
    [
        "bsn 123 456 782",
        "1234.56.782",
        "123-456-782",
        "12.34.56.782",
        "client 1-2-3-4-5-6-7-8-2 seen",
        "11 12 22 333",
    ],
)
def test_grouped_numbers_are_found(text: str) -> None:
    assert contains_bsn(text)


@pytest.mark.parametrize(
    "text",
    [
        "123456789",  # fails the 11-test
        "123 456 789",
        "000000000",  # passes the arithmetic, but is not a number anyone has
        "000 000 000",
        "12345678",  # 8 digits
        "1234567820",  # a valid BSN inside a longer digit run
        "0123456782",
        "A1234567820B",
        "12 123 456 782",  # a run of groups with 11 digits
    ],
)
def test_wrong_checksums_and_longer_runs_are_not_found(text: str) -> None:
    assert not contains_bsn(text)


def test_one_number_standing_alone_is_enough() -> None:
    assert contains_bsn("lang getal 91234567820, dan 123456782")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-01",
        "01-11-2026",
        "1.11.2026",
        "sinds 2026-11-01 09:30",
        "06-12345678",
        "0612345678",
        "020 123 4567",
        "+31 6 1234 5678",
        "+31 (0)20 123 4567",  # the last 9 digits pass the 11-test
        "+31(0)201234567",
        "088-1234567",
        "24 FTE, 12 bedden, 41 wachtenden, 13,5 weken",
        "123  456  782",  # double spaces do not join groups
        "123--456--782",
        "123_456_782",
        "١٢٣٤٥٦٧٨٢",  # other scripts' digits are not read as a BSN
        "",
    ],
)
def test_dates_phone_numbers_and_aggregates_are_not_found(text: str) -> None:
    assert not contains_bsn(text)


@pytest.mark.parametrize("digits", ["12345678", "1234567820", "12345678a", "", "١٢٣٤٥٦٧٨٢"])
def test_eleven_test_wants_nine_ascii_digits(digits: str) -> None:
    assert not passes_eleven_test(digits)

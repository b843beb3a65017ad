"""The CSV upload: rows become the same signals JSON gives, and every bad cell is named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.domain import SignalKind
from services.ingest.csv_format import (
    CSV_COLUMNS,
    DATA_COLUMNS,
    SAMPLE_CSV,
    SIGNAL_COLUMNS,
    parse_signals_csv,
)
from services.ingest.schemas import DATA_MODELS
from services.ingest.validation import BSN_MESSAGE, FieldError, SignalsRefused

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OBSERVED = "2026-11-20T09:30:00+01:00"


def parse(text: str, **options: Any) -> list[Any]:
    return parse_signals_csv(text, source="test.csv", now=NOW, **options)


def outcome(text: str, **options: Any) -> list[Any] | list[FieldError]:
    """The signals, or the errors of the refusal; nothing else may come out."""
    try:
        return parse(text, **options)
    except SignalsRefused as refused:
        return refused.errors


def problems(text: str, **options: Any) -> dict[str, str]:
    """The refusal as {path: message}; fails the test when the file passes."""
    with pytest.raises(SignalsRefused) as refused:
        parse(text, **options)
    return {error.path: error.message for error in refused.value.errors}


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


HINT = "the first line names the columns, e.g. id,department,provider_agb,kind,observed_at,note,..."
KINDS = "staffing, waitlist, capacity, admission_stop, closure, contract"
DEPARTMENT = "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
HEADER = "department,kind,observed_at,sick_leave_pct,fte_budgeted,waiting_count,active"


def test_the_columns_are_the_signal_fields_then_every_data_field_once() -> None:
    assert (
        CSV_COLUMNS[:6]
        == SIGNAL_COLUMNS
        == (
            "id",
            "department",
            "provider_agb",
            "kind",
            "observed_at",
            "note",
        )
    )
    fields = {name for model in DATA_MODELS.values() for name in model.model_fields}
    assert sorted(DATA_COLUMNS) == sorted(fields)
    assert len(set(CSV_COLUMNS)) == len(CSV_COLUMNS)


def test_the_sample_has_one_valid_row_per_kind() -> None:
    assert SAMPLE_CSV.splitlines()[0] == ",".join(CSV_COLUMNS)
    signals = parse(SAMPLE_CSV)
    assert [s.kind for s in signals] == list(SignalKind)
    staffing = signals[0]
    assert staffing.data == {"fte_budgeted": 24.0, "fte_filled": 19.5, "sick_leave_pct": 8.2}
    assert signals[3].data["active"] is True


def test_a_row_becomes_the_signal_json_would_give() -> None:
    signal_id = uuid.uuid4()
    text = csv_text(
        "id,department,provider_agb,kind,observed_at,note,waiting_count,behandelwachttijd_weeks",
        f'{signal_id},HIC-ZWOLLE,06012345,waitlist,{OBSERVED},vijf ziek,41,"13,5"',
    )
    [signal] = parse(text)
    assert signal.id == signal_id
    assert (signal.department, signal.provider_agb, signal.note) == (
        "HIC-ZWOLLE",
        "06012345",
        "vijf ziek",
    )
    assert signal.data == {"waiting_count": 41, "behandelwachttijd_weeks": 13.5}


def test_a_byte_order_mark_and_blanks_around_cells_are_fine() -> None:
    text = "\ufeff" + csv_text(
        " department , kind,observed_at ,beds_total", f" HIC ,capacity, {OBSERVED} , 12 "
    )
    [signal] = parse(text)
    assert (signal.department, signal.data) == ("HIC", {"beds_total": 12})


def test_windows_line_ends_and_dutch_excel_semicolons() -> None:
    header = "department;kind;observed_at;fte_budgeted;sick_leave_pct"
    text = f"{header}\r\nA;staffing;{OBSERVED};24;8,5\r\n"
    [signal] = parse(text)
    assert signal.data == {"fte_budgeted": 24.0, "sick_leave_pct": 8.5}


@pytest.mark.parametrize(
    ("cell", "value"),
    [("12", 12.0), ("12.5", 12.5), ('"12,5"', 12.5), ("+3", 3.0), ('"0,25"', 0.25)],
)
def test_numbers_with_a_decimal_point_or_comma(cell: str, value: float) -> None:
    text = csv_text("department,kind,observed_at,fte_budgeted", f"A,staffing,{OBSERVED},{cell}")
    assert parse(text)[0].data == {"fte_budgeted": value}


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        *[("true", True), ("TRUE", True), ("ja", True), ("Ja", True), ("1", True)],
        *[("false", False), ("nee", False), ("NEE", False), ("0", False)],
    ],
)
def test_booleans_in_english_dutch_or_digits(cell: str, value: bool) -> None:
    text = csv_text("department,kind,observed_at,active", f"A,admission_stop,{OBSERVED},{cell}")
    assert parse(text)[0].data == {"active": value}


def test_the_header_may_be_in_any_order_and_hold_only_what_is_used() -> None:
    text = csv_text(
        "beds_total,observed_at,kind,department",
        f"4,{OBSERVED},capacity,A",
        f"5,{OBSERVED},capacity,B",
    )
    assert [s.data["beds_total"] for s in parse(text)] == [4, 5]


def test_blank_lines_and_empty_rows_are_skipped() -> None:
    text = csv_text(
        HEADER, f"A,waitlist,{OBSERVED},,,3,", "", ",,,,,,", f"B,waitlist,{OBSERVED},,,x,"
    )
    # Blank lines are not counted (as csvfile numbers rows); a row of empty cells is.
    assert problems(text) == {
        "row 3 · waiting_count": "must be a number such as 12, 12.5 or 12,5, got 'x'"
    }


# --- the header --------------------------------------------------------------------------------


def test_unknown_columns_are_named_with_a_hint() -> None:
    text = csv_text("department,kind,observed_at,sick_leave,colour", f"A,staffing,{OBSERVED},1,2")
    with pytest.raises(SignalsRefused) as refused:
        parse(text)
    assert refused.value.errors == [
        FieldError("header", "unknown column 'sick_leave' (did you mean 'sick_leave_pct'?)"),
        FieldError("header", "unknown column 'colour'"),
    ]


def test_missing_required_columns() -> None:
    assert problems(csv_text("department,fte_budgeted", "A,12")) == {
        "header": f"missing column(s) kind, observed_at; {HINT}"
    }


def test_a_column_named_twice() -> None:
    text = csv_text("department,kind,kind,observed_at", f"A,waitlist,waitlist,{OBSERVED}")
    assert problems(text) == {"header": "column 'kind' appears twice"}


def test_nameless_columns_are_ignored_while_empty() -> None:
    text = csv_text("department,kind,observed_at,waiting_count,,", f"A,waitlist,{OBSERVED},3,,")
    assert parse(text)[0].data == {"waiting_count": 3}
    text = csv_text("department,kind,observed_at,waiting_count,", f"A,waitlist,{OBSERVED},3,7")
    assert problems(text) == {"row 1 · column 5": "has a value but no name in the header"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            f"test.csv is empty; {HINT}",
        ),
        (
            "\n\n",
            f"test.csv is empty; {HINT}",
        ),
    ],
)
def test_an_empty_file(text: str, message: str) -> None:
    assert problems(text) == {"header": message}


def test_a_header_without_rows() -> None:
    assert problems(csv_text(HEADER)) == {"": "test.csv has no rows after the header"}


def test_too_many_rows_names_the_limit() -> None:
    text = csv_text(HEADER, *[f"A,waitlist,{OBSERVED},,,3,"] * 4)
    assert problems(text, max_rows=3) == {"": "test.csv holds 4 rows; at most 3 per file, split it"}
    assert len(parse(text, max_rows=4)) == 4


def test_an_unreadable_file() -> None:
    text = csv_text(HEADER, "A," + "x" * 200_000)
    [(path, message)] = problems(text).items()
    assert path == ""
    assert message.startswith("test.csv is not a readable CSV file (field larger than field limit")


# --- rows --------------------------------------------------------------------------------------


def test_a_data_column_of_another_kind() -> None:
    text = csv_text(HEADER, f"A,waitlist,{OBSERVED},,12,3,")
    assert problems(text) == {"row 1 · fte_budgeted": "does not belong to a waitlist signal"}


def test_every_bad_row_and_cell_is_reported_in_row_order() -> None:
    text = csv_text(
        HEADER,
        f"A,staffing,{OBSERVED},140,12,,",
        f"A,waitlist,{OBSERVED},,,41,",
        f'A,staffing,{OBSERVED},"8,5",abc,,',
        "a b,admission_stop,2026-11-20T09:30:00,,,,misschien",
        f"A,wachtlijst,{OBSERVED},,12,3,",
        f"A,waitlist,{OBSERVED},,,,",
    )
    with pytest.raises(SignalsRefused) as refused:
        parse(text)
    assert refused.value.errors == [
        FieldError("row 1 · sick_leave_pct", "must be between 0 and 100 (percent), got 140"),
        FieldError("row 3 · fte_budgeted", "must be a number such as 12, 12.5 or 12,5, got 'abc'"),
        FieldError("row 4 · active", "must be true or false (or ja/nee, 1/0), got 'misschien'"),
        FieldError(
            "row 4 · department",
            f"{DEPARTMENT}, got 'a b'",
        ),
        FieldError(
            "row 4 · observed_at",
            "must carry a timezone offset: add one such as +01:00 or Z, got '2026-11-20T09:30:00'",
        ),
        FieldError(
            "row 5 · kind",
            f"must be one of {KINDS}, got 'wachtlijst'",
        ),
        FieldError(
            "row 6",
            "needs at least one of waiting_count, aanmeldwachttijd_weeks, behandelwachttijd_weeks",
        ),
    ]


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("fte_budgeted", "1.234,5", "must be a number such as 12, 12.5 or 12,5, got '1.234,5'"),
        ("fte_budgeted", "1e3", "must be a number such as 12, 12.5 or 12,5, got '1e3'"),
        ("fte_budgeted", "NaN", "must be a number such as 12, 12.5 or 12,5, got 'NaN'"),
        ("fte_budgeted", "12 FTE", "must be a number such as 12, 12.5 or 12,5, got '12 FTE'"),
    ],
)
def test_numbers_that_cannot_be_read(column: str, cell: str, message: str) -> None:
    text = csv_text(f"department,kind,observed_at,{column}", f'A,staffing,{OBSERVED},"{cell}"')
    # The unreadable cell is reported once, not again as "is required".
    assert problems(text) == {f"row 1 · {column}": message}


def test_whole_numbers_with_a_fraction_are_refused_as_json_would_be() -> None:
    text = csv_text("department,kind,observed_at,beds_total", f'A,capacity,{OBSERVED},"12,5"')
    assert problems(text) == {"row 1 · beds_total": "must be a whole number, got 12.5"}
    text = csv_text("department,kind,observed_at,beds_total", f"A,capacity,{OBSERVED},12.0")
    assert parse(text)[0].data == {"beds_total": 12}


def test_dates_and_codes_are_checked_as_in_json() -> None:
    text = csv_text(
        "department,kind,observed_at,effective_date,scope",
        f"A,closure,{OBSERVED},1-3-2027,full",
        f"A,closure,{OBSERVED},2027-03-01,gedeeltelijk",
        f"A,closure,{OBSERVED},2026-11-01,full",
    )
    assert problems(text) == {
        "row 1 · effective_date": "must be a date written YYYY-MM-DD, got '1-3-2027'",
        "row 2 · scope": "must be 'full' or 'partial', got 'gedeeltelijk'",
        "row 3 · effective_date": "effective_date 2026-11-01 is before the announcement"
        " (observed_at 2026-11-20)",
    }


def test_a_row_with_more_values_than_columns() -> None:
    text = csv_text("department,kind,observed_at", f"A,waitlist,{OBSERVED},3")
    assert problems(text) == {"row 1": "has 4 values but the header names 3 columns"}


def test_a_row_with_fewer_values_than_columns_leaves_the_rest_empty() -> None:
    text = csv_text("department,kind,observed_at,waiting_count,note", f"A,waitlist,{OBSERVED},3")
    assert parse(text)[0].data == {"waiting_count": 3}


def test_a_repeated_id_names_the_first_row() -> None:
    signal_id = uuid.uuid4()
    text = csv_text(
        "id,department,kind,observed_at,waiting_count",
        f"{signal_id},A,waitlist,{OBSERVED},3",
        f"{uuid.uuid4()},A,waitlist,{OBSERVED},3",
        f"{signal_id},A,waitlist,{OBSERVED},4",
    )
    assert problems(text) == {"row 3 · id": "repeats the id of row 1"}


def test_a_note_with_a_bsn_is_refused_without_echoing_it() -> None:
    text = csv_text(
        "department,kind,observed_at,waiting_count,note", f"A,waitlist,{OBSERVED},3,bsn 123456782"
    )
    assert problems(text) == {"row 1 · note": f"note {BSN_MESSAGE}"}


def test_the_age_limit_applies_and_can_be_lifted() -> None:
    old = "2020-01-01T00:00:00+01:00"
    text = csv_text("department,kind,observed_at,waiting_count", f"A,waitlist,{old},3")
    assert problems(text) == {"row 1 · observed_at": f"{old} is more than 2 years old"}
    assert len(parse(text, max_age=None)) == 1


def test_the_provider_agb_keeps_its_leading_zero_or_is_refused() -> None:
    text = csv_text(
        "department,provider_agb,kind,observed_at,waiting_count", f"A,6012345,waitlist,{OBSERVED},3"
    )
    assert problems(text) == {
        "row 1 · provider_agb": "must be an AGB code of 8 digits (as text, leading zeros kept),"
        " got '6012345'"
    }


def test_errors_are_capped_at_one_hundred() -> None:
    text = csv_text(HEADER, *[f"A,staffing,{OBSERVED},140,0,,"] * 80)
    with pytest.raises(SignalsRefused) as refused:
        parse(text)
    assert len(refused.value.errors) == 100
    assert refused.value.errors[-1] == FieldError("", "…and 61 more")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                ["", "A", "3", "12,5", "ja", OBSERVED, "waitlist", "staffing", '"', ",", "\n", "é"]
            ),
            max_size=8,
        ),
        max_size=5,
    ),
    st.lists(st.sampled_from([*CSV_COLUMNS, "", "x"]), min_size=1, max_size=8),
)
def test_any_text_is_parsed_or_refused(cells: list[list[str]], header: list[str]) -> None:
    text = "\n".join([",".join(header), *(",".join(row) for row in cells)])
    assert outcome(text, max_age=timedelta(days=3650))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_unicode_is_parsed_or_refused(text: str) -> None:
    assert outcome(text)

"""The Signal v1 contract as a sender meets it: what passes, and what each refusal says where."""

from __future__ import annotations

import copy
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.domain import SignalKind
from services.ingest.schemas import (
    COMPONENT_REF,
    DATA_MODELS,
    EXAMPLE_BATCH,
    EXAMPLE_SIGNAL,
    SignalIn,
    batch_json_schema,
    component_schemas,
    signal_json_schema,
)
from services.ingest.validation import (
    BSN_MESSAGE,
    FieldError,
    SignalsRefused,
    body_hash,
    parse_signals,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OBSERVED = "2026-11-20T09:30:00+01:00"
GOOD_DATA: dict[str, dict[str, Any]] = {
    "staffing": {"fte_budgeted": 24.0, "fte_filled": 19.5, "sick_leave_pct": 8.2},
    "waitlist": {"waiting_count": 41, "aanmeldwachttijd_weeks": 6.0},
    "capacity": {"beds_total": 12, "beds_occupied": 11},
    "admission_stop": {"active": True, "since": "2026-11-20"},
    "closure": {"effective_date": "2027-01-01", "scope": "full"},
    "contract": {"status": "at_risk"},
}


GOOD: Any = object()  # "the good data of the kind", as opposed to an explicit None


def signal(kind: Any = "waitlist", data: Any = GOOD, **fields: Any) -> Any:
    """A valid signal of a kind, with `data` and top-level fields overridden."""
    good = GOOD_DATA.get(kind, {}) if isinstance(kind, str) else {}
    made: dict[str, Any] = {
        "department": "HIC-ZWOLLE",
        "kind": kind,
        "observed_at": OBSERVED,
        "data": copy.deepcopy(good) if data is GOOD else data,
    }
    made.update(fields)
    return made


def problems(payload: Any, **options: Any) -> dict[str, str]:
    """The refusal as {path: message}; fails the test when the payload passes."""
    with pytest.raises(SignalsRefused) as refused:
        parse_signals(payload, now=NOW, **options)
    return {error.path: error.message for error in refused.value.errors}


def problem(payload: Any, **options: Any) -> tuple[str, str]:
    """The one problem of a payload expected to have exactly one."""
    found = problems(payload, **options)
    assert len(found) == 1, found
    return next(iter(found.items()))


# --- what passes -------------------------------------------------------------------------------


def test_the_documented_example_passes_as_one_signal() -> None:
    signals, batch = parse_signals(EXAMPLE_SIGNAL, now=NOW)
    assert batch is False
    [parsed] = signals
    assert parsed.id == uuid.UUID(EXAMPLE_SIGNAL["id"])
    assert parsed.kind is SignalKind.WAITLIST
    assert parsed.provider_agb == "06012345"
    assert parsed.observed_at.utcoffset() == timedelta(hours=1)
    assert parsed.data == EXAMPLE_SIGNAL["data"]


def test_the_example_batch_passes_with_every_signal_in_order() -> None:
    signals, batch = parse_signals(EXAMPLE_BATCH, now=NOW)
    assert batch is True
    assert [s.kind.value for s in signals] == [s["kind"] for s in EXAMPLE_BATCH["signals"]]


@pytest.mark.parametrize("kind", [kind.value for kind in SignalKind])
def test_every_kind_passes_and_its_data_is_json_ready(kind: str) -> None:
    [parsed], _ = parse_signals(signal(kind), now=NOW)
    assert json.loads(json.dumps(parsed.data)) == parsed.data
    assert parsed.data == GOOD_DATA[kind]


def test_data_is_dumped_without_absent_fields_and_with_dates_as_text() -> None:
    data = {"active": False, "since": "2026-11-01", "expected_until": None, "reason": None}
    [parsed], _ = parse_signals(signal("admission_stop", data), now=NOW)
    assert parsed.data == {"active": False, "since": "2026-11-01"}


def test_integers_pass_as_floats_and_whole_floats_as_counts() -> None:
    [staffing], _ = parse_signals(signal("staffing", {"fte_budgeted": 24}), now=NOW)
    [capacity], _ = parse_signals(signal("capacity", {"beds_total": 12.0}), now=NOW)
    assert staffing.data == {"fte_budgeted": 24.0}
    assert type(staffing.data["fte_budgeted"]) is float
    assert capacity.data == {"beds_total": 12}
    assert type(capacity.data["beds_total"]) is int


def test_bounds_themselves_pass() -> None:
    data = {"fte_budgeted": 10_000, "sick_leave_pct": 100, "temp_staff_pct": 0, "fte_filled": 0}
    parse_signals(signal("staffing", data), now=NOW)
    parse_signals(signal("waitlist", {"behandelwachttijd_weeks": 520}), now=NOW)


@pytest.mark.parametrize(
    "stamp", ["2026-11-20T09:30:00Z", "2026-11-20T08:30:00+00:00", "2026-11-20 09:30:00+01:00"]
)
def test_observed_at_with_any_offset_passes(stamp: str) -> None:
    [parsed], _ = parse_signals(signal(observed_at=stamp), now=NOW)
    assert parsed.observed_at.tzinfo is not None


@pytest.mark.parametrize("department", ["HIC-ZWOLLE", "a", "7.2_b-c", "X" * 64])
def test_department_codes_that_pass(department: str) -> None:
    parse_signals(signal(department=department), now=NOW)


def test_nulls_for_optional_fields_mean_absent() -> None:
    payload = signal(id=None, provider_agb=None, note=None)
    [parsed], _ = parse_signals(payload, now=NOW)
    assert parsed.id is None and parsed.note is None


# --- the shape of the payload ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "got"),
    [([signal()], "a list"), ("x", "'x'"), (None, "null"), (3, "3"), (True, "true")],
)
def test_a_payload_that_is_not_an_object(payload: Any, got: str) -> None:
    path, message = problem(payload)
    assert path == ""
    assert message == (
        f'must be a JSON object: one signal, or {{"signals": [...]}} for a batch, got {got}'
    )


def test_an_empty_batch() -> None:
    assert problem({"signals": []}) == ("signals", "is empty; send at least one signal")


def test_a_batch_over_the_limit_names_the_limit() -> None:
    path, message = problem({"signals": [signal()] * 3}, max_batch=2)
    assert path == "signals"
    assert message == "holds 3 signals; a batch holds at most 2, split it"


def test_a_batch_at_the_limit_passes() -> None:
    signals, _ = parse_signals({"signals": [signal()] * 500}, now=NOW)
    assert len(signals) == 500


def test_a_batch_that_is_not_a_list_and_has_other_fields() -> None:
    assert problems({"signals": {"kind": "waitlist"}, "source": "x"}) == {
        "source": "unknown field 'source'; a batch holds only 'signals'",
        "signals": "must be a list of signals, got an object",
    }


def test_a_batch_item_that_is_not_an_object() -> None:
    assert problems({"signals": [signal(), "x", [1]]}) == {
        "signals[1]": "must be an object (one signal), got 'x'",
        "signals[2]": "must be an object (one signal), got a list",
    }


# --- kind and data -----------------------------------------------------------------------------

KINDS = "staffing, waitlist, capacity, admission_stop, closure, contract"


def test_an_unknown_kind_lists_the_kinds() -> None:
    assert problem(signal(kind="wait_list", data={"x": 1})) == (
        "kind",
        f"must be one of {KINDS}, got 'wait_list'",
    )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (["waitlist"], f"must be one of {KINDS}, got a list"),
        ("WAITLIST", f"must be one of {KINDS}, got 'WAITLIST'"),
    ],
)
def test_a_kind_of_the_wrong_form(kind: Any, message: str) -> None:
    assert problem(signal(kind=kind)) == ("kind", message)


def test_missing_fields_are_required() -> None:
    assert problems({"data": {}}) == {
        "department": "is required",
        "kind": "is required",
        "observed_at": "is required",
    }


def test_missing_data_is_required() -> None:
    payload = signal()
    del payload["data"]
    assert problem(payload) == ("data", "is required")


@pytest.mark.parametrize(("data", "got"), [([1], "a list"), ("{}", "'{}'"), (None, "null")])
def test_data_that_is_not_an_object(data: Any, got: str) -> None:
    assert problem(signal(data=data)) == ("data", f"must be an object, got {got}")


def test_unknown_fields_are_named_with_a_hint() -> None:
    data = {"fte_budgeted": 12, "sick_leave": 4.0, "zzz": 1}
    assert problems(signal("staffing", data)) == {
        "data.sick_leave": "unknown field 'sick_leave' (did you mean 'sick_leave_pct'?)",
        "data.zzz": "unknown field 'zzz'",
    }


def test_a_field_of_another_kind_says_which_kind_it_belongs_to() -> None:
    assert problem(signal("waitlist", {"waiting_count": 3, "fte_budgeted": 12})) == (
        "data.fte_budgeted",
        "unknown field 'fte_budgeted': it belongs to a staffing signal, not waitlist",
    )


def test_unknown_top_level_fields_are_refused() -> None:
    assert problems(signal(observedAt="x", extra=1)) == {
        "observedAt": "unknown field 'observedAt' (did you mean 'observed_at'?)",
        "extra": "unknown field 'extra'",
    }


def test_a_data_field_at_the_top_level_is_pointed_into_data() -> None:
    payload = signal("capacity", {"beds_total": 3}, beds_occupied=2)
    assert problem(payload) == (
        "beds_occupied",
        "unknown field 'beds_occupied': the fields of a capacity signal go inside 'data'",
    )


def test_an_absurdly_long_field_name_is_cut_short() -> None:
    path, message = problem(signal("waitlist", {"waiting_count": 1, "x" * 5000: 1}))
    assert path == "data." + "x" * 40 + "…"
    assert len(message) < 100


# --- types -------------------------------------------------------------------------------------

NOT_TEXT = "not text (leave out the quotes)"
DATE = "must be a date written YYYY-MM-DD, got"
STATUSES = "'contracted', 'at_risk', 'not_renewed' or 'budget_ceiling_reached'"


@pytest.mark.parametrize(
    ("kind", "field", "value", "message"),
    [
        ("staffing", "fte_budgeted", "12", f"must be a number, {NOT_TEXT}, got '12'"),
        ("staffing", "fte_budgeted", True, "must be a number, got true"),
        ("staffing", "fte_budgeted", None, "must be a number, got null"),
        ("staffing", "fte_budgeted", [1], "must be a number, got a list"),
        ("staffing", "sick_leave_pct", {"v": 1}, "must be a number, got an object"),
        ("capacity", "beds_total", 3.5, "must be a whole number, got 3.5"),
        ("capacity", "beds_total", False, "must be a whole number, got false"),
        ("capacity", "beds_total", "3", f"must be a whole number, {NOT_TEXT}, got '3'"),
        ("waitlist", "waiting_count", 1e-9, "must be a whole number, got 1e-09"),
        ("admission_stop", "active", "yes", "must be true or false, got 'yes'"),
        ("admission_stop", "active", 1, "must be true or false, got 1"),
        ("admission_stop", "since", "01-11-2026", f"{DATE} '01-11-2026'"),
        ("admission_stop", "since", "2026-02-30", f"{DATE} '2026-02-30'"),
        ("admission_stop", "since", 20261101, f"{DATE} 20261101"),
        ("admission_stop", "since", "2026-11-01T00:00:00Z", f"{DATE} '2026-11-01T00:00:00Z'"),
        ("admission_stop", "reason", 5, "must be text"),
        ("closure", "scope", "half", "must be 'full' or 'partial', got 'half'"),
        ("contract", "status", "ok", f"must be {STATUSES}, got 'ok'"),
        ("contract", "effective_date", "2027", f"{DATE} '2027'"),
    ],
)
def test_wrong_types_say_what_is_wanted_and_what_came(
    kind: str, field: str, value: Any, message: str
) -> None:
    data = {**GOOD_DATA[kind], field: value}
    assert problem(signal(kind, data)) == (f"data.{field}", message)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("kind", "field"),
    [("staffing", "fte_budgeted"), ("staffing", "sick_leave_pct"), ("capacity", "beds_total")],
)
def test_nan_and_infinity_are_refused_explicitly(kind: str, field: str, value: float) -> None:
    data = {**GOOD_DATA[kind], field: value}
    path, message = problem(signal(kind, data))
    shown = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    assert (path, message) == (f"data.{field}", f"must be a finite number, got {shown}")


@pytest.mark.parametrize(
    ("kind", "field"), [("capacity", "beds_total"), ("staffing", "fte_budgeted")]
)
def test_huge_numbers_are_refused_without_being_echoed(kind: str, field: str) -> None:
    path, message = problem(signal(kind, {**GOOD_DATA[kind], field: 10**400}))
    assert path == f"data.{field}"
    assert message.endswith("got a number of more than 20 digits")
    assert message.startswith("must be")


# --- ranges ------------------------------------------------------------------------------------

PERCENT = "must be between 0 and 100 (percent), got"
FTE = "must be between 0 and 10000 (FTE), got"
BUDGET = "must be more than 0 and at most 10000 (FTE), got"
PEOPLE = "must be between 0 and 1000000 (people), got"
BEDS = "must be between 0 and 10000 (beds), got"


@pytest.mark.parametrize(
    ("kind", "field", "value", "message"),
    [
        ("staffing", "sick_leave_pct", 140, f"{PERCENT} 140"),
        ("staffing", "temp_staff_pct", -0.5, f"{PERCENT} -0.5"),
        ("staffing", "unfilled_shifts_pct", 100.5, f"{PERCENT} 100.5"),
        ("staffing", "fte_budgeted", 0, f"{BUDGET} 0"),
        ("staffing", "fte_budgeted", 10_001, f"{BUDGET} 10001"),
        ("staffing", "fte_filled", -1, f"{FTE} -1"),
        ("staffing", "vacancies_fte", -0.1, f"{FTE} -0.1"),
        ("staffing", "psychiatrist_fte", -2, f"{FTE} -2"),
        ("waitlist", "aanmeldwachttijd_weeks", 521, "must be between 0 and 520 (weeks), got 521"),
        ("waitlist", "behandelwachttijd_weeks", -1, "must be between 0 and 520 (weeks), got -1"),
        ("waitlist", "waiting_count", 1_000_001, f"{PEOPLE} 1000001"),
        ("waitlist", "waiting_over_norm_count", -1, f"{PEOPLE} -1"),
        ("capacity", "beds_total", -1, f"{BEDS} -1"),
        ("capacity", "beds_occupied", 10_001, f"{BEDS} 10001"),
        ("capacity", "beds_closed", -3, f"{BEDS} -3"),
        ("capacity", "out_of_area_placements", -2, f"{PEOPLE} -2"),
        ("closure", "capacity_lost", -4, f"{BEDS} -4"),
    ],
)
def test_out_of_range_values_quote_the_bounds_and_unit(
    kind: str, field: str, value: Any, message: str
) -> None:
    assert problem(signal(kind, {**GOOD_DATA[kind], field: value})) == (f"data.{field}", message)


@pytest.mark.parametrize(("field", "limit"), [("note", 2000)])
def test_too_long_text_says_the_limit_and_the_length(field: str, limit: int) -> None:
    assert problem(signal(**{field: "x" * (limit + 1)})) == (
        field,
        f"must be at most {limit} characters, got {limit + 1}",
    )


def test_a_reason_too_long() -> None:
    data = {"active": True, "reason": "x" * 501}
    assert problem(signal("admission_stop", data)) == (
        "data.reason",
        "must be at most 500 characters, got 501",
    )


# --- rules across fields -----------------------------------------------------------------------

AT_LEAST_ONE = (
    "needs at least one of waiting_count, aanmeldwachttijd_weeks, behandelwachttijd_weeks"
)


@pytest.mark.parametrize(
    ("kind", "data", "path", "message"),
    [
        (
            "staffing",
            {"fte_budgeted": 10, "fte_filled": 15.5},
            "data.fte_filled",
            "fte_filled 15.5 is far beyond fte_budgeted 10 (more than 1.5 times); check the units",
        ),
        (
            "staffing",
            {"fte_budgeted": 10, "vacancies_fte": 11},
            "data.vacancies_fte",
            "vacancies_fte 11 is more than fte_budgeted 10",
        ),
        (
            "staffing",
            {"fte_budgeted": 2.5, "psychiatrist_fte": 3},
            "data.psychiatrist_fte",
            "psychiatrist_fte 3 is more than fte_budgeted 2.5",
        ),
        (
            "capacity",
            {"beds_total": 10, "beds_occupied": 11},
            "data.beds_occupied",
            "beds_occupied 11 is more than beds_total 10",
        ),
        (
            "capacity",
            {"beds_total": 10, "beds_closed": 12},
            "data.beds_closed",
            "beds_closed 12 is more than beds_total 10",
        ),
        (
            "waitlist",
            {"waiting_count": 10, "waiting_over_norm_count": 11},
            "data.waiting_over_norm_count",
            "waiting_over_norm_count 11 is more than waiting_count 10",
        ),
        ("waitlist", {}, "data", AT_LEAST_ONE),
        ("waitlist", {"waiting_over_norm_count": 3}, "data", AT_LEAST_ONE),
        (
            "admission_stop",
            {"active": True, "since": "2026-11-20", "expected_until": "2026-11-19"},
            "data.expected_until",
            "expected_until 2026-11-19 is before since 2026-11-20",
        ),
    ],
)
def test_fields_that_contradict_each_other(
    kind: str, data: dict[str, Any], path: str, message: str
) -> None:
    assert problem(signal(kind, data)) == (path, message)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("staffing", {"fte_budgeted": 10, "fte_filled": 15, "vacancies_fte": 10}),
        ("staffing", {"fte_budgeted": 10, "psychiatrist_fte": 10}),
        ("capacity", {"beds_total": 10, "beds_occupied": 10, "beds_closed": 10}),
        ("waitlist", {"waiting_count": 10, "waiting_over_norm_count": 10}),
        ("waitlist", {"behandelwachttijd_weeks": 0}),
        ("admission_stop", {"active": True, "since": "2026-11-20", "expected_until": "2026-11-20"}),
    ],
)
def test_fields_at_the_edge_of_agreement_pass(kind: str, data: dict[str, Any]) -> None:
    parse_signals(signal(kind, data), now=NOW)


def test_a_closure_before_its_announcement() -> None:
    payload = signal(
        "closure",
        {"effective_date": "2026-01-01", "scope": "partial"},
        observed_at="2026-02-01T10:00:00+01:00",
    )
    assert problem(payload, max_age=None) == (
        "data.effective_date",
        "effective_date 2026-01-01 is before the announcement (observed_at 2026-02-01)",
    )


def test_a_closure_on_the_day_of_its_announcement_passes() -> None:
    # 00:30 on 1 February in Amsterdam is still 31 January in UTC: the local date counts.
    payload = signal(
        "closure",
        {"effective_date": "2026-02-01", "scope": "full"},
        observed_at="2026-02-01T00:30:00+01:00",
    )
    parse_signals(payload, now=NOW)


# --- observed_at -------------------------------------------------------------------------------


def test_a_naive_observed_at_asks_for_an_offset() -> None:
    assert problem(signal(observed_at="2026-11-20T09:30:00")) == (
        "observed_at",
        "must carry a timezone offset: add one such as +01:00 or Z, got '2026-11-20T09:30:00'",
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (1763630000, "1763630000"),
        ("1763630000", "'1763630000'"),
        ("2026-11-20", "'2026-11-20'"),
        ("20-11-2026 09:30", "'20-11-2026 09:30'"),
        ("2026-11-31T09:30:00+01:00", "'2026-11-31T09:30:00+01:00'"),
        (None, "null"),
    ],
)
def test_observed_at_must_be_iso_text(value: Any, got: str) -> None:
    assert problem(signal(observed_at=value)) == (
        "observed_at",
        f"must be a date and time such as 2026-11-01T00:00:00+01:00, got {got}",
    )


def test_observed_at_in_the_future_is_refused_beyond_the_clock_skew() -> None:
    ahead = (NOW + timedelta(minutes=6)).isoformat()
    assert problem(signal(observed_at=ahead)) == (
        "observed_at",
        f"{ahead} is in the future (received at 2026-11-22T12:00:00+00:00)",
    )
    parse_signals(signal(observed_at=(NOW + timedelta(minutes=4)).isoformat()), now=NOW)
    parse_signals(signal(observed_at=ahead), now=NOW, clock_skew=timedelta(minutes=10))


def test_observed_at_older_than_the_maximum_age() -> None:
    old = "2024-11-01T00:00:00+01:00"
    assert problem(signal(observed_at=old)) == ("observed_at", f"{old} is more than 2 years old")
    assert problem(signal(observed_at=OBSERVED), max_age=timedelta(hours=6)) == (
        "observed_at",
        f"{OBSERVED} is more than 6 hours old",
    )
    parse_signals(signal(observed_at=old), now=NOW, max_age=None)
    parse_signals(signal(observed_at=old), now=NOW, max_age=timedelta(days=800))


def test_timing_is_checked_even_when_other_fields_are_bad() -> None:
    payload = signal(department="no spaces", observed_at="2031-01-01T00:00:00Z")
    assert set(problems(payload)) == {"department", "observed_at"}


# --- identity fields ---------------------------------------------------------------------------

DEPARTMENT = "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
AGB = "must be an AGB code of 8 digits (as text, leading zeros kept)"


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"department": "HIC ZWOLLE"}, "department", f"{DEPARTMENT}, got 'HIC ZWOLLE'"),
        ({"department": "-HIC"}, "department", f"{DEPARTMENT}, got '-HIC'"),
        ({"department": ""}, "department", "must not be empty"),
        ({"department": "X" * 65}, "department", "must be at most 64 characters, got 65"),
        ({"department": 12}, "department", "must be text, got 12"),
        ({"provider_agb": "6012345"}, "provider_agb", f"{AGB}, got '6012345'"),
        ({"provider_agb": "0601234a"}, "provider_agb", f"{AGB}, got '0601234a'"),
        ({"provider_agb": 6012345}, "provider_agb", "must be text, got 6012345"),
        (
            {"id": "not-a-uuid"},
            "id",
            "must be a UUID such as 0b6f2c1e-8f4e-4a57-9a7e-3f1d2c9b7a10, got 'not-a-uuid'",
        ),
        ({"id": 7}, "id", "must be a UUID such as 0b6f2c1e-8f4e-4a57-9a7e-3f1d2c9b7a10, got 7"),
    ],
)
def test_identity_fields_of_the_wrong_form(fields: dict[str, Any], path: str, message: str) -> None:
    assert problem(signal(**fields)) == (path, message)


def test_a_repeated_client_id_within_a_batch() -> None:
    first = str(uuid.uuid4())
    payload = {
        "signals": [
            signal(id=first),
            signal(id=str(uuid.uuid4())),
            signal(id=first.upper()),
            signal(id=first, kind="capacity"),
        ]
    }
    assert problems(payload) == {
        "signals[2].id": "repeats signals[0].id",
        "signals[3].id": "repeats signals[0].id",
    }


# --- personal data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "note", ["cliënt 123456782 geweigerd", "bsn 123 456 782", "BSN: 1234.56.782", "123-456-782"]
)
def test_a_note_with_a_bsn_is_refused_without_echoing_it(note: str) -> None:
    path, message = problem(signal(note=note))
    assert path == "note"
    assert message == f"note {BSN_MESSAGE}"
    assert "782" not in message and "cliënt" not in message


def test_a_reason_with_a_bsn_is_refused_too() -> None:
    data = {"active": True, "reason": "opname 123456782 geweigerd"}
    assert problem(signal("admission_stop", data)) == ("data.reason", f"reason {BSN_MESSAGE}")


def test_a_note_is_never_echoed_whatever_is_wrong_with_it() -> None:
    messages = problems({"signals": [signal(note=123456782), signal(note="123456782" * 300)]})
    assert set(messages) == {"signals[0].note", "signals[1].note"}
    assert not any("123456782" in message for message in messages.values())


def test_a_note_with_aggregates_and_dates_passes() -> None:
    note = "2 verpleegkundigen ziek sinds 2026-11-01; bel 06-12345678 of 020 123 4567"
    [parsed], _ = parse_signals(signal(note=note), now=NOW)
    assert parsed.note == note


# --- every problem at once ---------------------------------------------------------------------


def test_every_problem_of_every_signal_is_reported() -> None:
    payload = {
        "signals": [
            signal("staffing", {"fte_budgeted": 12, "sick_leave_pct": 140}),
            signal(),
            signal("capacity", {"beds_total": "ten"}, department="a b", note="123456782"),
        ]
    }
    assert sorted(problems(payload)) == [
        "signals[0].data.sick_leave_pct",
        "signals[2].data.beds_total",
        "signals[2].department",
        "signals[2].note",
    ]


def test_errors_are_capped_at_one_hundred_with_a_count_of_the_rest() -> None:
    payload = {"signals": [signal(department="a b", note="x" * 2001)] * 150}
    with pytest.raises(SignalsRefused) as refused:
        parse_signals(payload, now=NOW)
    errors = refused.value.errors
    assert len(errors) == 100
    assert errors[0] == FieldError("signals[0].department", f"{DEPARTMENT}, got 'a b'")
    assert errors[-1] == FieldError("", "…and 201 more")


def test_the_refusal_reads_as_one_line_per_problem_in_its_text() -> None:
    refused = SignalsRefused([FieldError("kind", "is required"), FieldError("", "oops")])
    assert str(refused) == "kind: is required; oops"


# --- never anything but SignalsRefused ---------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [*{name for model in DATA_MODELS.values() for name in model.model_fields}, "x"]
)
signal_like = st.fixed_dictionaries(
    {
        "department": st.sampled_from(["HIC-ZWOLLE", "", None, "a b"]) | json_values,
        "kind": st.sampled_from([kind.value for kind in SignalKind]) | json_values,
        "observed_at": st.sampled_from([OBSERVED, "2026-11-20T09:30:00", ""]) | json_values,
        "data": st.dictionaries(field_names, json_values | st.sampled_from(["2026-11-20", 3.0])),
    },
    optional={
        "id": st.uuids().map(str) | json_values,
        "note": st.text(alphabet="0123456789 .-ab", max_size=40) | json_values,
        "provider_agb": st.sampled_from(["06012345", "6012345"]) | json_values,
    },
)


def _outcome(payload: Any) -> list[SignalIn] | list[FieldError]:
    """The signals, or the errors of the refusal; nothing else may come out."""
    try:
        return parse_signals(payload, now=NOW)[0]
    except SignalsRefused as refused:
        return refused.errors


def _parse_or_refuse(payload: Any) -> None:
    """Signals that are JSON-ready, or a refusal with a message for each problem."""
    result = _outcome(payload)
    assert result
    for item in result:
        if isinstance(item, FieldError):
            assert item.message
        else:
            json.dumps(item.data, allow_nan=False)
            assert len(body_hash(item)) == 64


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_parsed_or_refused(payload: Any) -> None:
    _parse_or_refuse(payload)


@settings(max_examples=500, deadline=None)
@given(st.lists(signal_like, min_size=1, max_size=3), st.booleans())
def test_any_signal_like_object_is_parsed_or_refused(items: list[Any], batch: bool) -> None:
    _parse_or_refuse({"signals": items} if batch else items[0])


@pytest.mark.parametrize(
    "payload",
    [
        {"signals": [[[[[]]]]]},
        {"signals": None},
        {1: 2, None: 3},
        signal(data={1: 2}),
        signal(data={"waiting_count": object()}),
        signal(kind={"a": 1}, data=None),
        signal(id=b"\x00" * 16),
        signal(observed_at=datetime(2026, 11, 20, 9, 30)),  # noqa: DTZ001 - naive on purpose
        signal(department=None, kind=None, observed_at=None, data=None, note=None),
        {"signals": [None, None]},
        {"signals": ({"kind": "waitlist"},)},
        float("nan"),
    ],
)
def test_odd_python_values_are_refused_not_raised(payload: Any) -> None:
    with pytest.raises(SignalsRefused):
        parse_signals(payload, now=NOW)


# --- body hash ---------------------------------------------------------------------------------


def _one(payload: Any) -> Any:
    return parse_signals(payload, now=NOW)[0][0]


def test_the_body_hash_ignores_the_id_and_how_the_instant_is_written() -> None:
    base = body_hash(_one(signal()))
    assert body_hash(_one(signal(id=str(uuid.uuid4())))) == base
    assert body_hash(_one(signal(observed_at="2026-11-20T08:30:00Z"))) == base
    assert (
        body_hash(_one(signal(data={"aanmeldwachttijd_weeks": 6, "waiting_count": 41.0}))) == base
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"department": "HIC-DEVENTER"},
        {"provider_agb": "06012345"},
        {"kind": "capacity", "data": {"beds_total": 3}},
        {"observed_at": "2026-11-20T09:31:00+01:00"},
        {"data": {"waiting_count": 42, "aanmeldwachttijd_weeks": 6.0}},
        {"note": "anders"},
    ],
)
def test_the_body_hash_changes_with_the_content(changed: dict[str, Any]) -> None:
    assert body_hash(_one({**signal(), **changed})) != body_hash(_one(signal()))


# --- the JSON schema for the docs --------------------------------------------------------------


def test_the_signal_schema_is_self_contained_and_has_every_kind() -> None:
    schema = signal_json_schema()
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    kinds = [variant["properties"]["kind"]["const"] for variant in schema["oneOf"]]
    assert kinds == [kind.value for kind in SignalKind]
    staffing = schema["oneOf"][0]
    assert staffing["additionalProperties"] is False
    assert staffing["properties"]["data"]["required"] == ["fte_budgeted"]
    assert "sick_leave_pct" in staffing["properties"]["data"]["properties"]


def test_the_batch_schema_limits_the_batch() -> None:
    signals = batch_json_schema()["properties"]["signals"]
    assert (signals["minItems"], signals["maxItems"]) == (1, 500)
    assert "$ref" not in json.dumps(signals)


def test_the_schemas_can_refer_to_named_components_instead() -> None:
    schema = signal_json_schema(ref_template=COMPONENT_REF)
    components = component_schemas()
    assert schema["discriminator"]["mapping"]["waitlist"] == "#/components/schemas/WaitlistSignal"
    refs = [variant["$ref"].rsplit("/", 1)[-1] for variant in schema["oneOf"]]
    assert set(refs) <= set(components)
    assert "WaitlistData" in components
    assert '"#/$defs' not in json.dumps([schema, batch_json_schema(ref_template=COMPONENT_REF)])

"""The pure part of the NZa replay: reading the file, the remarks, the mapping, the plan.

The rows are real: copied from the NZa file (tests/replay/data/README.md), odd ones included.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime

import pytest

from services.core.domain import SignalKind
from services.core.errors import InvalidInput
from services.core.reference.files import packaged_regions
from services.ingest.replay_nza import (
    CARE_FACT,
    CARE_PAAZ_PUK,
    CARE_SPECIALISED,
    CARE_VIP,
    PlannedSignal,
    ReplayPlan,
    Stop,
    care_type_of,
    department_code,
    parse_observed_on,
    parse_weeks,
    plan_replay,
    read_nza_file,
    read_remark,
)
from services.ingest.schemas import DEPARTMENT_PATTERN
from services.ingest.validation import check_signal
from tests.replay.conftest import SAMPLE

MARCH_7 = date(2018, 3, 7)


def _find(plan: ReplayPlan, name_part: str, kind: SignalKind) -> list[PlannedSignal]:
    """The plan's signals of one kind for the departments whose name holds `name_part`."""
    codes = {d.code for d in plan.departments if name_part in d.name}
    return [s for s in plan.signals if s.department in codes and s.kind is kind]


def _row(sample_rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    return next(r for r in sample_rows if all(r[k] == v for k, v in match.items()))


# --- the file -----------------------------------------------------------------------------------


def test_another_file_is_refused_in_one_line() -> None:
    nza_2016 = "Zorgaanbieder,AGB-code,Vestiging,Wachttijd aanmelding (weken)\nX,06290101,A,3\n"
    with pytest.raises(InvalidInput) as refused:
        read_nza_file(nza_2016, "wachttijden_2016.csv")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("wachttijden_2016.csv is not an NZa ggz waiting-time file")
    assert "missing column(s) Type_aanbieder" in message


@pytest.mark.parametrize("text", ["", SAMPLE.read_text(encoding="utf-8").splitlines()[0] + "\n"])
def test_an_empty_file_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"no rows after the header|missing column"):
        read_nza_file(text, "leeg.csv")


def test_the_sample_reads_as_400_rows_with_stripped_values(
    sample_rows: list[dict[str, str]],
) -> None:
    assert len(sample_rows) == 400
    # the file has an AGB code with a trailing blank ("73732907 "); stripped, it is valid
    assert _row(sample_rows, Naam_zorgaanbieder="Apanta GGZ")["AGBcode 1"] == "73732907"


# --- waits and remarks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weeks"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("62", 62.0),
        ("-", None),
        ("", None),
        ("Onbekend", None),
        ("N.v.t.", None),
        ("Stop", Stop.ACTIVE),
    ],
)
def test_waits_as_published(text: str, weeks: float | Stop | None) -> None:
    assert parse_weeks(text) == weeks


@pytest.mark.parametrize(
    ("remark", "meaning", "since", "until"),
    [
        ("Aanmeldstop", "admission_stop", None, None),
        ("Clientenstop", "admission_stop", None, None),
        ("Intakestop", "admission_stop", None, None),
        ("Patientenstop", "admission_stop", None, None),
        ("Langer dan een jaar: aanmeldstop", "admission_stop", None, None),
        ("Nemen geen nieuwe patiënten op", "admission_stop", None, None),
        ("Geen nieuwe clienten meer ingeschreven", "admission_stop", None, None),
        ("Op dit moment geen intake mogelijk", "admission_stop", None, None),
        ("Tijdelijk geen BGGZ verwijzingen", "admission_stop", None, None),
        (
            "Geen nieuwe aanmeldingen vanwege verplichte spreiding van het budget",
            "admission_stop",
            None,
            None,
        ),
        (
            "Per 03-10-2017 geldt een clientenstop voor: Zorgverzekeraars die onder de koepel van"
            " VGZ, Menzis, CZ vallen.",
            "admission_stop",
            date(2017, 10, 3),
            None,
        ),
        ("Opname stop per 1 maart 2018 voor volwassen", "admission_stop", date(2018, 3, 1), None),
        ("Aanmeldstop tot 1 april 2018", "admission_stop", None, date(2018, 3, 31)),
        # read in March, a stop "until February" is over
        ("Stop bij ADHD/ASS tot februari 2018", "admission_stop_ended", None, date(2018, 2, 28)),
        ("PsyQ vestiging is gesloten", "closure", None, None),
        ("Permanent gesloten", "closure", None, None),
        (
            "Tot onze spijt hebben we moeten besluiten om de vestiging in Amsterdam te sluiten",
            "closure",
            None,
            None,
        ),
        ("Geen aanbod", "no_offering", None, None),
        ("Geen wachttijdinfo", "other", None, None),
        ("Faillissement", "other", None, None),
        ("4 IHT", "other", None, None),
        ("Start 3 maal per jaar", "other", None, None),
    ],
)
def test_remarks_as_the_file_has_them(
    remark: str, meaning: str, since: date | None, until: date | None
) -> None:
    read = read_remark(remark, MARCH_7)
    assert (read.meaning, read.since, read.until) == (meaning, since, until)


def test_a_stop_until_a_later_day_is_still_on() -> None:
    read = read_remark("Stop bij ADHD/ASS tot februari 2018", date(2018, 2, 10))
    assert read.stop is Stop.ACTIVE and read.until == date(2018, 2, 28)


# --- care types and codes -----------------------------------------------------------------------


def test_care_types_of_real_rows(sample_rows: list[dict[str, str]]) -> None:
    by_kind = Counter(care_type_of(row) for row in sample_rows)
    assert by_kind[None] == sum(1 for row in sample_rows if row["Type_zorg"] == "BGGZ")
    fact = next(r for r in sample_rows if re.search(r"\bFACT\b", r["Diagnosegroep_letterlijk"]))
    assert care_type_of(fact) == CARE_FACT
    vip = next(r for r in sample_rows if "VIP" in r["Diagnosegroep_letterlijk"])
    assert care_type_of(vip) == CARE_VIP
    puk = next(
        r for r in sample_rows if r["Type_aanbieder"] == "PUK/PAAZ" and r["Type_zorg"] != "BGGZ"
    )
    assert care_type_of(puk) == CARE_PAAZ_PUK
    plain = _row(sample_rows, Naam_zorgaanbieder="GGNet", Vestigingslocatie="Apeldoorn")
    assert care_type_of(plain) == CARE_SPECIALISED


def test_department_codes_keep_the_rules_and_tell_identities_apart() -> None:
    base: Mapping[str, str] = {
        "agb": "06290605",
        "municipality": "0344",
        "location": "Kindcentrum de Klim dagklinische behandelgroepen (Fluitekruid)",
        "circuit": "Adolescenten",
        "diagnosis": "Complexe en Gezinsproblematiek Adolescent; klinisch",
        "care_type": CARE_SPECIALISED,
    }
    code = department_code(**base)
    assert re.fullmatch(DEPARTMENT_PATTERN, code) and len(code) <= 64
    assert code.startswith("nza-0344-ado-kindcentrum-de-kli-complexe-en-gezi-")
    assert department_code(**base) == code
    assert department_code(**{**base, "diagnosis": "Eetstoornissen"}) != code
    assert department_code(**{**base, "diagnosis": ""}).count("-") < code.count("-")


# --- the plan -----------------------------------------------------------------------------------


def test_the_plan_of_the_sample(sample_rows: list[dict[str, str]]) -> None:
    plan = plan_replay(sample_rows)
    assert (plan.rows, plan.used) == (400, 239)
    assert plan.skipped == {
        "basic_ggz": 70,
        "no_waiting_times": 52,
        "ambiguous_region": 25,
        "no_offering": 8,
        "unknown_municipality": 5,
        "no_agb": 1,
    }
    assert plan.used + sum(plan.skipped.values()) == plan.rows
    assert (len(plan.providers), len(plan.departments)) == (81, 227)
    assert Counter(s.kind.value for s in plan.signals) == {
        "waitlist": 192,
        "admission_stop": 34,
        "closure": 12,
    }
    regions = {region.code for region in packaged_regions()}
    assert {d.region for d in plan.departments} <= regions
    assert all(re.fullmatch(DEPARTMENT_PATTERN, d.code) for d in plan.departments)
    assert len({(d.provider_agb, d.code) for d in plan.departments}) == len(plan.departments)
    assert len({s.id for s in plan.signals}) == len(plan.signals)


def test_every_planned_signal_passes_the_api_validation(sample_rows: list[dict[str, str]]) -> None:
    now = datetime.now(UTC)
    for planned in plan_replay(sample_rows).signals:
        signal, problems = check_signal(
            planned.payload(), now=now, max_age=None, clock_skew=now - now
        )
        assert problems == [] and signal is not None, (planned, problems)


def test_a_second_plan_of_the_same_file_has_the_same_ids(
    sample_rows: list[dict[str, str]],
) -> None:
    first, second = plan_replay(sample_rows), plan_replay(list(reversed(sample_rows)))
    assert {s.id for s in first.signals} == {s.id for s in second.signals}


def test_odd_rows_map_as_a_user_would_expect(sample_rows: list[dict[str, str]]) -> None:
    plan = plan_replay(sample_rows)
    # treatment wait of 23 weeks: a waitlist signal with that figure, observed on the Peildatum
    (altrecht,) = _find(plan, "Centrum Jongvolwassenen", SignalKind.WAITLIST)
    assert altrecht.data == {"aanmeldwachttijd_weeks": 6.0, "behandelwachttijd_weeks": 23.0}
    assert altrecht.observed_at.isoformat() == "2018-02-27T12:00:00+01:00"
    # "Aanmeldstop" with waits "Stop": an admission stop and no waitlist signal
    stops = _find(plan, "MoleMann Mental Health Hilversum", SignalKind.ADMISSION_STOP)
    assert stops and all(s.data == {"active": True, "reason": "Aanmeldstop"} for s in stops)
    assert not _find(plan, "MoleMann Mental Health Hilversum", SignalKind.WAITLIST)
    # one row per insurer, one department: one stop, since the date in the remark
    (ijmuiden,) = _find(plan, "De Praktijk IJmond Ijmuiden – Jeugd", SignalKind.ADMISSION_STOP)
    assert ijmuiden.data["since"] == "2017-10-03"
    assert "3 row(s); insurers CZ, Menzis, VGZ" in ijmuiden.note
    # a stop that ended before the Peildatum: only the wait counts
    twente = _find(plan, "at. zorg Regio Twente", SignalKind.WAITLIST)
    assert twente and twente[0].data == {"aanmeldwachttijd_weeks": 5.0}
    assert not _find(plan, "at. zorg Regio Twente", SignalKind.ADMISSION_STOP)
    # a closed location in Nissewaard (1930, formed 2015): a closure in region ZHE-BAR
    (closed,) = _find(plan, "PsyQ Spijkenisse – Volwassenen – Persoonlijkheid", SignalKind.CLOSURE)
    assert closed.data == {
        "effective_date": "2018-03-07",
        "scope": "full",
        "reason": "PsyQ vestiging is gesloten",
    }
    department = next(d for d in plan.departments if d.code == closed.department)
    assert department.region == "zhe-bar"
    # municipality "Onbekend" and AGB "Onbekend" give no department
    assert not any("HSK Groep Onbekend" in d.name for d in plan.departments)
    assert not any(d.provider_agb == "Onbekend" for d in plan.departments)


def test_observed_at_puts_every_signal_on_one_day(sample_rows: list[dict[str, str]]) -> None:
    usual, moved = plan_replay(sample_rows), plan_replay(sample_rows, observed_on=date(2025, 6, 2))
    assert {s.observed_at.date() for s in moved.signals} == {date(2025, 6, 2)}
    assert len(moved.signals) == len(usual.signals)
    assert not {s.id for s in moved.signals} & {s.id for s in usual.signals}


def test_observed_at_option() -> None:
    today = date(2026, 1, 10)
    assert parse_observed_on(None, today=today) is None
    assert parse_observed_on("2018-03-07", today=today) == MARCH_7
    with pytest.raises(InvalidInput, match="is in the future"):
        parse_observed_on("2026-01-11", today=today)
    with pytest.raises(InvalidInput, match="is not a date"):
        parse_observed_on("7 maart", today=today)


def test_damaged_rows_are_skipped_with_a_reason_never_a_crash(
    sample_rows: list[dict[str, str]],
) -> None:
    base = _row(sample_rows, Naam_zorgaanbieder="GGNet", Vestigingslocatie="Apeldoorn")
    nameless = {"Naam_zorgaanbieder": "", "Vestigingslocatie": "", "Diagnosegroep_letterlijk": ""}
    damaged = [
        {**base, "Peildatum": "7 maart 2018"},
        {**base, "Gemeentecodes": "99999"},
        {**base, "Aanmeldwachttijd": "zie website", "Behandelwachttijd": ""},
        {**base, **nameless, "Circuit": ""},
        {**base, "Behandelwachttijd": "600"},  # weeks: a unit mistake the validation refuses
    ]
    plan = plan_replay(damaged)
    assert plan.skipped == {"bad_peildatum": 1, "unknown_municipality": 1, "no_waiting_times": 1}
    assert plan.used == 2
    assert plan.providers == {"06290509": "GGNet"}
    assert "NZa location without a name" in {d.name for d in plan.departments}
    now = datetime.now(UTC)
    refused = [
        problems
        for planned in plan.signals
        if (
            problems := check_signal(
                planned.payload(), now=now, max_age=None, clock_skew=now - now
            )[1]
        )
    ]
    assert len(refused) == 1 and refused[0][0][0] == ("data", "behandelwachttijd_weeks")

"""Replay the NZa waiting-time collection (ggz, February–March 2018): the pure part.

The NZa file lists, per provider, location, circuit and diagnosis group, the waiting times that
the provider published, with remarks such as `Aanmeldstop`. This module reads such a file and
maps it to what Vroegsignaal knows: providers (by AGB code), departments and Signal v1 payloads,
with every row it cannot use counted under a reason. Nothing here touches the database; storing
the plan is `replay_nza_store.py`. Every mapping decision is argued in docs/replay.md.

Why a plan first: the whole file is checked and mapped before the first write, so a wrong file is
refused with nothing changed, and `--dry-run` can report exactly what a replay would do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from services.core.domain import SignalKind, is_agb, slugify
from services.core.errors import InvalidInput
from services.core.months import MONTH_NAMES_NL
from services.ingest.replay_nza_regions import Placement, municipality_regions
from services.ingest.schemas import MAX_NOTE, MAX_REASON

# The columns the replay reads; a file without all of them is another file and is refused.
COLUMNS: Final = (
    "Type_aanbieder",
    "Naam_zorgaanbieder",
    "AGBcode 1",
    "Vestigingslocatie",
    "Plaatsnaam",
    "Gemeentecodes",
    "Circuit",
    "Diagnosegroep_letterlijk",
    "Type_zorg",
    "Peildatum",
    "Opmerking",
    "Aanmeldwachttijd",
    "Behandelwachttijd",
    "Zorgverzekeraar",
)
# Fixed for good: the ids of replayed signals are uuid5 in this namespace, so a second replay of
# the same file finds its signals already stored instead of storing them again.
SIGNAL_NAMESPACE: Final = uuid.UUID("5d0c6e1a-3b0f-5c47-9a51-6b0e2f1d7c42")
SOURCE_TAG: Final = "nza-wachttijden-ggz"
OBSERVED_TIME: Final = time(12, 0)  # noon of the peildatum: the same calendar day in every zone

CARE_FACT: Final = "outreach.fact"
CARE_VIP: Final = "outreach.vip"
CARE_MPU: Final = "clinical.mpu"
CARE_PAAZ_PUK: Final = "clinical.paaz_puk"
CARE_SPECIALISED: Final = "highly_specialised.hclv"  # the weak one: docs/replay.md
CARE_TYPES: Final = (CARE_FACT, CARE_VIP, CARE_MPU, CARE_PAAZ_PUK, CARE_SPECIALISED)

_CIRCUITS: Final = {
    "volwassenen": "vol",
    "jeugd": "jgd",
    "adolescenten": "ado",
    "ouderen": "oud",
    "verslavingszorg": "vsl",
    "forensisch": "for",
    "onbekend": "onb",
}
_FACT = re.compile(r"\bf-?act\b", re.IGNORECASE)
_VIP = re.compile(r"vroege?\s+(?:interventie\s+)?psychose|\bvip\b", re.IGNORECASE)
_MPU = re.compile(r"medisch\s+psychiatrische\s+unit|\bmpu\b", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?")
_NO_FIGURE = frozenset({"", "-", "onbekend", "n.v.t.", "nvt"})

_STOP = re.compile(
    r"(?:aanmeld|cli[eë]nten|pati[eë]nten|intake|opname)\s*stop|\bstop\b"
    r"|geen nieuwe (?:pati[eë]nten|cli[eë]nten|aanmeldingen)|nemen geen nieuwe"
    r"|geen intake mogelijk|aanmelding niet meer mogelijk|tijdelijk geen \w+ ?verwijzingen",
    re.IGNORECASE,
)
_CLOSURE = re.compile(r"gesloten|\bsluiten\b|\bsluiting\b", re.IGNORECASE)
_NO_OFFERING = re.compile(r"^geen aanbod$", re.IGNORECASE)
_MONTH = "|".join(MONTH_NAMES_NL)
# 03-10-2017 | 1 maart 2018 | februari 2018
_DAY_TEXT = (
    rf"(?:(\d{{1,2}})-(\d{{1,2}})-(\d{{4}})"
    rf"|(\d{{1,2}})\s+({_MONTH})\s+(\d{{4}})"
    rf"|({_MONTH})\s+(\d{{4}}))"
)
_SINCE = re.compile(rf"\bper\s+{_DAY_TEXT}", re.IGNORECASE)
_UNTIL = re.compile(rf"\btot\s+{_DAY_TEXT}", re.IGNORECASE)


class Skip(StrEnum):
    """Why a row of the file gives no signal; checked in this order, a row counts once."""

    NO_OFFERING = "no_offering"  # remark "Geen aanbod": nothing offered there
    NO_WAITING_TIMES = "no_waiting_times"  # no wait, no stop, no closure to report
    BAD_PEILDATUM = "bad_peildatum"  # no date to observe the figures at
    BASIC_GGZ = "basic_ggz"  # generalist basic ggz (BGGZ): not crucial care
    NO_AGB = "no_agb"  # no valid AGB code: no provider to hang the department on
    UNKNOWN_MUNICIPALITY = "unknown_municipality"  # code missing or not in the table
    AMBIGUOUS_REGION = "ambiguous_region"  # municipality not placed in one IZA region


class Stop(StrEnum):
    """What a remark or a wait of "Stop" says about admissions."""

    ACTIVE = "admission_stop"
    ENDED = "admission_stop_ended"  # "Stop ... tot februari 2018", read in March: over


@dataclass(frozen=True)
class Remark:
    """What a row's remark (and its "Stop" waits) says, beyond the waiting times."""

    stop: Stop | None = None
    since: date | None = None
    until: date | None = None  # the expected last day of the stop
    closure: bool = False
    no_offering: bool = False

    @property
    def meaning(self) -> str:
        """The remark's class, for the summary."""
        if self.closure:
            return "closure"
        if self.stop is not None:
            return self.stop.value
        return "no_offering" if self.no_offering else "other"


@dataclass(frozen=True)
class PlannedDepartment:
    """A department the replay needs: created when missing, left alone when it exists."""

    provider_agb: str
    code: str
    name: str
    care_type: str
    region: str


@dataclass(frozen=True)
class PlannedSignal:
    """One Signal v1 payload for one department on one day, with its deterministic id."""

    id: uuid.UUID
    provider_agb: str
    department: str
    kind: SignalKind
    observed_at: datetime
    data: Mapping[str, Any]
    note: str

    def payload(self) -> dict[str, Any]:
        """The signal as a provider system would post it (validated as such before storing)."""
        return {
            "id": str(self.id),
            "department": self.department,
            "kind": self.kind.value,
            "observed_at": self.observed_at.isoformat(),
            "data": dict(self.data),
            "note": self.note,
        }


@dataclass
class ReplayPlan:
    """Everything a replay would create and record, and what it skipped, before any write."""

    rows: int
    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    remarks: Counter[str] = field(default_factory=Counter)
    providers: dict[str, str] = field(default_factory=dict)  # AGB code → name
    departments: list[PlannedDepartment] = field(default_factory=list)
    signals: list[PlannedSignal] = field(default_factory=list)


@dataclass
class _Day:
    """The rows of one department on one day, merged (insurer variants, SGGZ and Combi rows)."""

    rows: int = 0
    aanmeld: float | None = None
    behandel: float | None = None
    stops: list[tuple[str, Remark]] = field(default_factory=list)
    closures: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    insurers: set[str] = field(default_factory=set)

    def add_wait(self, aanmeld: float | None, behandel: float | None) -> None:
        """Keep the longest wait: the department fails the norm for whoever waits longest."""
        if aanmeld is not None:
            self.aanmeld = aanmeld if self.aanmeld is None else max(self.aanmeld, aanmeld)
        if behandel is not None:
            self.behandel = behandel if self.behandel is None else max(self.behandel, behandel)


# --- reading the file ---------------------------------------------------------------------------


def read_nza_file(text: str, source: str) -> list[dict[str, str]]:
    """The rows of an NZa waiting-time file, stripped; another file is refused in one line."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            shown = ", ".join(missing[:4]) + (
                f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            )
            raise InvalidInput(
                f"{source} is not an NZa ggz waiting-time file (2018 layout): missing column(s)"
                f" {shown}; see docs/replay.md"
            )
        reader.fieldnames = header
        rows = [
            {key: (value or "").strip() for key, value in row.items() if key is not None}
            for row in reader
        ]
    except csv.Error as exc:
        raise InvalidInput(f"{source}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InvalidInput(f"{source}: no rows after the header")
    return rows


def parse_weeks(text: str) -> float | Stop | None:
    """A wait in weeks; `Stop.ACTIVE` for a published "Stop"; None when none was published."""
    value = text.strip()
    if value.lower() in _NO_FIGURE:
        return None
    if value.lower() == "stop":
        return Stop.ACTIVE
    if _NUMBER.fullmatch(value):
        return float(value.replace(",", "."))
    return None  # free text where a figure belongs: no figure


def _day(match: re.Match[str], *, end_of_month: bool) -> date | None:
    """A date from one of the three forms of `_DAY_TEXT`; a bare month is its first or last day."""
    numeric, textual, month_only = match.groups()[0:3], match.groups()[3:6], match.groups()[6:8]
    try:
        if numeric[0]:
            return date(int(numeric[2]), int(numeric[1]), int(numeric[0]))
        if textual[0]:
            return date(
                int(textual[2]), MONTH_NAMES_NL.index(textual[1].lower()) + 1, int(textual[0])
            )
        month, year = MONTH_NAMES_NL.index(month_only[0].lower()) + 1, int(month_only[1])
    except ValueError:
        return None
    if not end_of_month:
        return date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def read_remark(text: str, observed_on: date) -> Remark:
    """What a remark says about admissions or a closure, judged on the day it was observed."""
    if not text:
        return Remark()
    if _NO_OFFERING.match(text):
        return Remark(no_offering=True)
    if _CLOSURE.search(text):
        return Remark(closure=True)
    if not _STOP.search(text):
        return Remark()
    since = until = None
    if found := _SINCE.search(text):
        since = _day(found, end_of_month=False)
    if found := _UNTIL.search(text):
        # "tot 1 april" ends on 31 March; "tot februari" on the last day of February
        last = _day(found, end_of_month=True)
        until = last - timedelta(days=1) if last and (found.group(1) or found.group(4)) else last
    if until is not None and until < observed_on:
        return Remark(stop=Stop.ENDED, since=since, until=until)
    if since is not None and until is not None and until < since:
        until = None
    return Remark(stop=Stop.ACTIVE, since=since, until=until)


# --- mapping ------------------------------------------------------------------------------------


def care_type_of(row: Mapping[str, str]) -> str | None:
    """The closest crucial care type of a row; None for basic ggz (BGGZ), which is not crucial."""
    if row["Type_zorg"].strip().upper() == "BGGZ":
        return None
    words = " ".join(
        row[column]
        for column in ("Diagnosegroep_letterlijk", "Vestigingslocatie", "Naam_zorgaanbieder")
    )
    if _FACT.search(words):
        return CARE_FACT
    if _VIP.search(words):
        return CARE_VIP
    if _MPU.search(words):
        return CARE_MPU
    if row["Type_aanbieder"].strip().upper() == "PUK/PAAZ":
        return CARE_PAAZ_PUK
    return CARE_SPECIALISED


def _short(text: str, limit: int) -> str:
    return slugify(text)[:limit].strip("-")


def department_code(
    *, agb: str, municipality: str, location: str, circuit: str, diagnosis: str, care_type: str
) -> str:
    """A readable code, unique per identity: `nza-0363-vol-de-meren-angst-1a2b3c4d5e` (≤ 64)."""
    identity = "|".join((agb, municipality, location, circuit, diagnosis, care_type))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    circuit_part = _CIRCUITS.get(circuit.lower()) or _short(circuit, 3) or "onb"
    parts = ["nza", municipality, circuit_part, _short(location, 18), _short(diagnosis, 16), digest]
    return "-".join(part for part in parts if part)


def department_name(provider: str, location: str, circuit: str, diagnosis: str) -> str:
    """What a person reads: provider, location, circuit and diagnosis group as published."""
    name = " – ".join(
        part for part in (f"{provider} {location}".strip(), circuit, diagnosis) if part
    )
    name = name or "NZa location without a name"
    return name if len(name) <= 200 else name[:199] + "…"


def signal_id(agb: str, department: str, kind: SignalKind, observed_at: datetime) -> uuid.UUID:
    """The same department, kind and moment give the same id: a second replay stores nothing."""
    return uuid.uuid5(
        SIGNAL_NAMESPACE, f"{SOURCE_TAG}/{agb}/{department}/{kind.value}/{observed_at.isoformat()}"
    )


def _placement(code: str, table: Mapping[str, Placement]) -> Placement | Skip:
    code = code.strip()
    if code.isdigit() and len(code) <= 4:
        code = code.zfill(4)
    found = table.get(code)
    if found is None:
        return Skip.UNKNOWN_MUNICIPALITY
    return found if found.region else Skip.AMBIGUOUS_REGION


def _observed_on(row: Mapping[str, str], fixed: date | None) -> date | None:
    if fixed is not None:
        return fixed
    try:
        return date.fromisoformat(row["Peildatum"])
    except ValueError:
        return None


def plan_replay(
    rows: Sequence[Mapping[str, str]],
    *,
    observed_on: date | None = None,
    tz: ZoneInfo | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> ReplayPlan:
    """Map the rows to providers, departments and signals; count each unusable row's reason.

    `observed_on` puts every signal on that day instead of the row's Peildatum (a replay on
    another day is a new report, with new ids).
    """
    zone = tz or ZoneInfo("Europe/Amsterdam")
    table = placements if placements is not None else municipality_regions()
    plan = ReplayPlan(rows=len(rows))
    names: dict[str, Counter[str]] = {}
    departments: dict[tuple[str, str], PlannedDepartment] = {}
    days: dict[tuple[str, str, date], _Day] = {}
    for row in rows:
        day = _observed_on(row, observed_on)
        remark_text = row["Opmerking"]
        remark = read_remark(remark_text, day or date.max)
        if remark_text:
            plan.remarks[remark.meaning] += 1
        aanmeld, behandel = (
            parse_weeks(row["Aanmeldwachttijd"]),
            parse_weeks(row["Behandelwachttijd"]),
        )
        stopped = Stop.ACTIVE in (aanmeld, behandel)
        waits = [value for value in (aanmeld, behandel) if isinstance(value, float)]
        skip = _skip(row, remark, bool(waits) or stopped, day)
        placement = None
        if skip is None:
            found = _placement(row["Gemeentecodes"], table)
            placement, skip = (None, found) if isinstance(found, Skip) else (found, None)
        care_type = care_type_of(row)
        if skip is not None or placement is None or care_type is None or day is None:
            plan.skipped[(skip or Skip.BASIC_GGZ).value] += 1
            continue
        plan.used += 1
        agb = row["AGBcode 1"].strip()
        published = names.setdefault(agb, Counter())
        if row["Naam_zorgaanbieder"]:
            published[row["Naam_zorgaanbieder"]] += 1
        municipality = placement.municipality_code
        code = department_code(
            agb=agb,
            municipality=municipality,
            location=row["Vestigingslocatie"],
            circuit=row["Circuit"],
            diagnosis=row["Diagnosegroep_letterlijk"],
            care_type=care_type,
        )
        if (agb, code) not in departments:
            departments[(agb, code)] = PlannedDepartment(
                provider_agb=agb,
                code=code,
                name=department_name(
                    row["Naam_zorgaanbieder"],
                    row["Vestigingslocatie"],
                    row["Circuit"],
                    row["Diagnosegroep_letterlijk"],
                ),
                care_type=care_type,
                region=str(placement.region),
            )
        merged = days.setdefault((agb, code, day), _Day())
        merged.rows += 1
        merged.add_wait(
            aanmeld if isinstance(aanmeld, float) else None,
            behandel if isinstance(behandel, float) else None,
        )
        if remark.stop is Stop.ACTIVE:
            merged.stops.append((remark_text, remark))
        elif stopped:
            merged.stops.append(("Wachttijd gepubliceerd als 'Stop'", Remark(stop=Stop.ACTIVE)))
        if remark.closure:
            merged.closures.append(remark_text)
        if remark_text and remark_text not in merged.remarks:
            merged.remarks.append(remark_text)
        if row["Zorgverzekeraar"]:
            merged.insurers.add(row["Zorgverzekeraar"])
    plan.providers = {
        agb: _most_common(counter) if counter else f"AGB {agb}"
        for agb, counter in sorted(names.items())
    }
    plan.departments = list(departments.values())
    for (agb, code, day), merged in days.items():
        plan.signals.extend(_signals(agb, code, datetime.combine(day, OBSERVED_TIME, zone), merged))
    return plan


def _skip(
    row: Mapping[str, str], remark: Remark, reportable: bool, day: date | None
) -> Skip | None:
    """The first reason, in `Skip`'s order, why a row cannot be used; region checks come after."""
    if not reportable and not remark.closure:
        return Skip.NO_OFFERING if remark.no_offering else Skip.NO_WAITING_TIMES
    if day is None:
        return Skip.BAD_PEILDATUM
    if row["Type_zorg"].strip().upper() == "BGGZ":
        return Skip.BASIC_GGZ
    if not is_agb(row["AGBcode 1"].strip()):
        return Skip.NO_AGB
    return None


def _most_common(counter: Counter[str]) -> str:
    """The name a provider uses most often in the file; ties go to the first one seen."""
    return max(counter, key=lambda name: counter[name])


def _signals(agb: str, code: str, observed_at: datetime, merged: _Day) -> Iterable[PlannedSignal]:
    note = _note(observed_at.date(), merged)

    def planned(kind: SignalKind, data: dict[str, Any]) -> PlannedSignal:
        return PlannedSignal(
            id=signal_id(agb, code, kind, observed_at),
            provider_agb=agb,
            department=code,
            kind=kind,
            observed_at=observed_at,
            data=data,
            note=note,
        )

    waits = {
        "aanmeldwachttijd_weeks": merged.aanmeld,
        "behandelwachttijd_weeks": merged.behandel,
    }
    if any(value is not None for value in waits.values()):
        yield planned(SignalKind.WAITLIST, {k: v for k, v in waits.items() if v is not None})
    if merged.stops:
        # the stop that says when it began, else the first: its text is the reason
        text, stop = min(merged.stops, key=lambda item: item[1].since or date.max)
        data: dict[str, Any] = {"active": True, "reason": text[:MAX_REASON]}
        if stop.since:
            data["since"] = stop.since.isoformat()
        if stop.until:
            data["expected_until"] = stop.until.isoformat()
        yield planned(SignalKind.ADMISSION_STOP, data)
    if merged.closures:
        # The file says only that the location was closed when the NZa looked: closed by then.
        yield planned(
            SignalKind.CLOSURE,
            {
                "effective_date": observed_at.date().isoformat(),
                "scope": "full",
                "reason": merged.closures[0][:MAX_REASON],
            },
        )


def _note(day: date, merged: _Day) -> str:
    parts = [
        f"Replay of the NZa ggz waiting times, peildatum {day.isoformat()}: {merged.rows} row(s)"
    ]
    if merged.insurers:
        parts.append(f"insurers {', '.join(sorted(merged.insurers))}")
    if merged.remarks:
        parts.append("remark: " + " | ".join(merged.remarks))
    note = "; ".join(parts)
    return note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 1] + "…"


def parse_observed_on(text: str | None, *, today: date) -> date | None:
    """The `--observed-at` date: ISO, not in the future."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"--observed-at {text!r} is not a date (YYYY-MM-DD)") from exc
    if day > today:
        raise InvalidInput(f"--observed-at {day} is in the future")
    return day


__all__ = [
    "CARE_TYPES",
    "COLUMNS",
    "PlannedDepartment",
    "PlannedSignal",
    "Remark",
    "ReplayPlan",
    "Skip",
    "Stop",
    "care_type_of",
    "department_code",
    "parse_observed_on",
    "parse_weeks",
    "plan_replay",
    "read_nza_file",
    "read_remark",
]

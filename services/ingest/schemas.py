"""The Signal v1 contract as pydantic models: what a department signal may hold, per kind.

Strict on purpose. A provider's export that sends `"12"` for a number, `true` for a count or
`NaN` for a percentage has a bug the sender should see now, not a value we guess at and the rules
then judge. Two leniencies are kept because JSON writers produce them for honest data: a whole
number written as `3.0` counts as 3, and an integer is a valid float.

The models are built once, at import: validation runs per signal at thousands per second, so no
model is ever created per request. The error messages are made in `validation.py`; the bounds and
units they quote come from the fields declared here (`Field(ge=..., le=...)` and `x-unit`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from contextlib import suppress
from copy import copy
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union, cast, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.config import JsonDict

from services.core.domain import SignalKind

MAX_FTE = 10_000
MAX_BEDS = 10_000
MAX_PEOPLE = 1_000_000
MAX_WEEKS = 520  # ten years: anything longer is a unit mistake (days, not weeks)
MAX_NOTE = 2000
MAX_REASON = 500
DEPARTMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
AGB_PATTERN = r"^[0-9]{8}$"

FTE: JsonDict = {"x-unit": "FTE"}
PERCENT: JsonDict = {"x-unit": "percent"}
WEEKS: JsonDict = {"x-unit": "weeks"}
BEDS: JsonDict = {"x-unit": "beds"}
PEOPLE: JsonDict = {"x-unit": "people"}

Fte = Annotated[float | None, Field(ge=0, le=MAX_FTE, json_schema_extra=FTE)]
Percent = Annotated[float | None, Field(ge=0, le=100, json_schema_extra=PERCENT)]
Weeks = Annotated[float | None, Field(ge=0, le=MAX_WEEKS, json_schema_extra=WEEKS)]
Beds = Annotated[int | None, Field(ge=0, le=MAX_BEDS, json_schema_extra=BEDS)]
People = Annotated[int | None, Field(ge=0, le=MAX_PEOPLE, json_schema_extra=PEOPLE)]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]")


def _admits(annotation: Any, kind: type) -> bool:
    return annotation is kind or kind in get_args(annotation)


def _num(value: float) -> str:
    """12.0 as 12, 12.5 as 12.5: numbers in messages as a person writes them."""
    return str(int(value)) if float(value).is_integer() else repr(value)


class SignalData(BaseModel):
    """The `data` of one kind of signal; subclasses declare the fields of their kind."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)

    _whole_fields: ClassVar[frozenset[str]] = frozenset()
    _date_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields.items()
        cls._whole_fields = frozenset(n for n, f in fields if _admits(f.annotation, int))
        cls._date_fields = frozenset(n for n, f in fields if _admits(f.annotation, date))

    @model_validator(mode="before")
    @classmethod
    def _from_json_values(cls, value: Any) -> Any:
        """3.0 → 3 for whole-number fields, 'YYYY-MM-DD' → date; anything else stays as sent."""
        if not isinstance(value, dict):
            return value
        fixed: dict[str, Any] = {}
        for name in cls._whole_fields.intersection(value):
            number = value[name]
            if type(number) is float and number.is_integer():
                fixed[name] = int(number)
        for name in cls._date_fields.intersection(value):
            text = value[name]
            if type(text) is str and _DATE.fullmatch(text):
                # 2026-02-30 stays text, and is refused as "must be a date"
                with suppress(ValueError):
                    fixed[name] = date.fromisoformat(text)
        return {**value, **fixed} if fixed else value

    def inconsistencies(self) -> list[tuple[str, str]]:
        """Rules across fields, as (field, message); empty when the values agree."""
        return []


class StaffingData(SignalData):
    """Staff of the department: formation, filled posts, absence, temporary staff."""

    fte_budgeted: Annotated[float, Field(gt=0, le=MAX_FTE, json_schema_extra=FTE)] = Field(
        description="budgeted formation (FTE)"
    )
    fte_filled: Fte = Field(None, description="filled posts (FTE)")
    vacancies_fte: Fte = Field(None, description="open vacancies (FTE)")
    sick_leave_pct: Percent = Field(None, description="sick leave (percent)")
    temp_staff_pct: Percent = Field(None, description="hours worked by temporary staff (percent)")
    psychiatrist_fte: Fte = Field(None, description="psychiatrists (FTE)")
    unfilled_shifts_pct: Percent = Field(None, description="shifts left unfilled (percent)")

    def inconsistencies(self) -> list[tuple[str, str]]:
        """Filled posts far beyond the budget, or vacancies or psychiatrists above it."""
        found = []
        budget = _num(self.fte_budgeted)
        if self.fte_filled is not None and self.fte_filled > 1.5 * self.fte_budgeted:
            found.append(
                (
                    "fte_filled",
                    f"fte_filled {_num(self.fte_filled)} is far beyond fte_budgeted {budget}"
                    " (more than 1.5 times); check the units",
                )
            )
        for name in ("vacancies_fte", "psychiatrist_fte"):
            value = getattr(self, name)
            if value is not None and value > self.fte_budgeted:
                found.append((name, f"{name} {_num(value)} is more than fte_budgeted {budget}"))
        return found


class WaitlistData(SignalData):
    """The waiting list: people waiting and the waiting times against the Treeknorm."""

    AT_LEAST_ONE: ClassVar[tuple[str, ...]] = (
        "waiting_count",
        "aanmeldwachttijd_weeks",
        "behandelwachttijd_weeks",
    )
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": [name]} for name in AT_LEAST_ONE]}
    )

    waiting_count: People = Field(None, description="people waiting")
    aanmeldwachttijd_weeks: Weeks = Field(None, description="referral to intake (weeks; norm 4)")
    behandelwachttijd_weeks: Weeks = Field(None, description="intake to treatment (weeks; norm 10)")
    waiting_over_norm_count: People = Field(None, description="people waiting beyond the norm")

    def inconsistencies(self) -> list[tuple[str, str]]:
        """At least one measure; no more people over the norm than waiting."""
        if all(getattr(self, name) is None for name in self.AT_LEAST_ONE):
            return [("", f"needs at least one of {', '.join(self.AT_LEAST_ONE)}")]
        over, waiting = self.waiting_over_norm_count, self.waiting_count
        if over is not None and waiting is not None and over > waiting:
            message = f"waiting_over_norm_count {over} is more than waiting_count {waiting}"
            return [("waiting_over_norm_count", message)]
        return []


class CapacityData(SignalData):
    """Beds: the total, how many are occupied or closed, and placements elsewhere."""

    beds_total: Annotated[int, Field(ge=0, le=MAX_BEDS, json_schema_extra=BEDS)] = Field(
        description="beds of the department"
    )
    beds_occupied: Beds = Field(None, description="beds occupied")
    beds_closed: Beds = Field(None, description="beds closed (no staff, building)")
    out_of_area_placements: People = Field(None, description="people placed outside the region")

    def inconsistencies(self) -> list[tuple[str, str]]:
        """No more beds occupied or closed than there are."""
        return [
            (name, f"{name} {value} is more than beds_total {self.beds_total}")
            for name in ("beds_occupied", "beds_closed")
            if (value := getattr(self, name)) is not None and value > self.beds_total
        ]


class AdmissionStopData(SignalData):
    """An admission stop (opnamestop or cliëntenstop) starting or ending."""

    active: bool = Field(description="whether the department admits no one new")
    since: date | None = Field(None, description="first day of the stop")
    expected_until: date | None = Field(None, description="expected last day of the stop")
    reason: str | None = Field(None, max_length=MAX_REASON, description="why; no personal data")

    def inconsistencies(self) -> list[tuple[str, str]]:
        """The expected end is not before the start."""
        start, end = self.since, self.expected_until
        if start and end and end < start:
            return [("expected_until", f"expected_until {end} is before since {start}")]
        return []


class ClosureData(SignalData):
    """An announced closure of the department, fully or partly."""

    effective_date: date = Field(description="the day the closure takes effect")
    scope: Literal["full", "partial"] = Field(description="the whole department or a part")
    capacity_lost: int | None = Field(
        None, ge=0, le=MAX_BEDS, description="places or beds lost", json_schema_extra=BEDS
    )
    reason: str | None = Field(None, max_length=MAX_REASON, description="why; no personal data")


class ContractData(SignalData):
    """The department's contract with the insurer: in place, at risk, ended or exhausted."""

    status: Literal["contracted", "at_risk", "not_renewed", "budget_ceiling_reached"]
    effective_date: date | None = Field(None, description="the day the status applies from")


DATA_MODELS: Mapping[SignalKind, type[SignalData]] = {
    SignalKind.STAFFING: StaffingData,
    SignalKind.WAITLIST: WaitlistData,
    SignalKind.CAPACITY: CapacityData,
    SignalKind.ADMISSION_STOP: AdmissionStopData,
    SignalKind.CLOSURE: ClosureData,
    SignalKind.CONTRACT: ContractData,
}


class SignalIn(BaseModel):
    """A validated signal; `data` holds its kind's validated fields, JSON-ready (dates as text)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)

    id: uuid.UUID | None = Field(None, description="client-chosen UUID; makes retries safe")
    department: str = Field(
        min_length=1,
        max_length=64,
        pattern=DEPARTMENT_PATTERN,
        description="the department's code, unique within its provider",
    )
    provider_agb: str | None = Field(
        None,
        pattern=AGB_PATTERN,
        description="the provider's AGB code (8 digits); needed only when an insurer posts",
    )
    kind: SignalKind = Field(strict=False, description="what the signal reports on")
    observed_at: AwareDatetime = Field(
        description="when the situation was observed, with a timezone offset"
    )
    data: dict[str, Any] = Field(description="the fields of the signal's kind")
    note: str | None = Field(None, max_length=MAX_NOTE, description="free text; no personal data")

    @model_validator(mode="before")
    @classmethod
    def _from_json_text(cls, value: Any) -> Any:
        """The id and observed_at from text; a number is not read as a Unix timestamp."""
        if not isinstance(value, dict):
            return value
        fixed: dict[str, Any] = {}
        raw_id, observed_at = value.get("id"), value.get("observed_at")
        if type(raw_id) is str:
            with suppress(ValueError):  # left as text, refused as "must be a UUID"
                fixed["id"] = uuid.UUID(raw_id)
        if type(observed_at) is str and _DATETIME.match(observed_at):
            with suppress(ValueError):  # left as text, refused as "must be a date and time"
                fixed["observed_at"] = datetime.fromisoformat(observed_at)
        return {**value, **fixed} if fixed else value


EXAMPLE_SIGNAL: dict[str, Any] = {
    "id": "0b6f2c1e-8f4e-4a57-9a7e-3f1d2c9b7a10",
    "department": "HIC-ZWOLLE",
    "provider_agb": "06012345",
    "kind": "waitlist",
    "observed_at": "2026-11-01T00:00:00+01:00",
    "data": {"waiting_count": 41, "aanmeldwachttijd_weeks": 6.0, "behandelwachttijd_weeks": 13.5},
    "note": "two intake staff on long-term sick leave",
}

EXAMPLE_BATCH: dict[str, Any] = {
    "signals": [
        {
            "department": "HIC-ZWOLLE",
            "kind": "staffing",
            "observed_at": "2026-11-01T00:00:00+01:00",
            "data": {"fte_budgeted": 24.0, "fte_filled": 19.5, "sick_leave_pct": 8.2},
        },
        {
            "department": "HIC-ZWOLLE",
            "kind": "capacity",
            "observed_at": "2026-11-01T00:00:00+01:00",
            "data": {"beds_total": 12, "beds_occupied": 12, "beds_closed": 2},
        },
        {
            "department": "HIC-ZWOLLE",
            "kind": "admission_stop",
            "observed_at": "2026-11-02T09:30:00+01:00",
            "data": {"active": True, "since": "2026-11-02", "expected_until": "2026-12-01"},
            "note": "no new admissions until the team is complete again",
        },
    ]
}

# --- JSON schema for the OpenAPI document -------------------------------------------------------

COMPONENT_REF = "#/components/schemas/{model}"


@cache
def _adapters() -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
    """One schema model per kind (kind fixed, data typed), the union, and the batch."""
    variants = []
    for kind, data_model in DATA_MODELS.items():
        fields: dict[str, Any] = {
            name: (info.annotation, copy(info)) for name, info in SignalIn.model_fields.items()
        }
        fields["kind"] = (
            cast(Any, Literal)[kind.value],
            Field(description="what the signal reports on"),
        )
        fields["data"] = (data_model, Field(description=f"the fields of a {kind} signal"))
        name = data_model.__name__.removesuffix("Data") + "Signal"
        variants.append(_schema_model(name, fields))
    signal: Any = Annotated[cast(Any, Union)[tuple(variants)], Field(discriminator="kind")]
    batch = _schema_model(
        "SignalBatch",
        {"signals": (list[signal], Field(min_length=1, max_length=500))},
    )
    return TypeAdapter(signal), TypeAdapter(batch)


def _schema_model(name: str, fields: dict[str, Any]) -> type[BaseModel]:
    config = ConfigDict(extra="forbid", title=name)
    return cast(type[BaseModel], create_model(name, __config__=config, **fields))


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**target, **rest}, defs)
    return {
        key: _inline(value, defs)
        for key, value in node.items()
        if key not in ("$defs", "discriminator")  # a discriminator mapping needs named schemas
    }


def _schema(adapter: TypeAdapter[Any], ref_template: str | None) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=ref_template or COMPONENT_REF)
    defs = schema.pop("$defs", {})
    return schema if ref_template else cast(dict[str, Any], _inline(schema, defs))


def signal_json_schema(*, ref_template: str | None = None) -> dict[str, Any]:
    """JSON schema of one signal: a oneOf over the kinds, each with the data schema of its kind.

    Without `ref_template` the schema is self-contained (no `$ref`), to embed anywhere in an
    OpenAPI document as is. With one, e.g. `COMPONENT_REF`, kinds and data are `$ref`s built
    from the template (plus a `discriminator` on `kind`); the caller then adds
    `component_schemas(ref_template=...)` under `components.schemas`.
    """
    return _schema(_adapters()[0], ref_template)


def batch_json_schema(*, ref_template: str | None = None) -> dict[str, Any]:
    """JSON schema of a batch, `{"signals": [...]}` with 1–500 signals; see `signal_json_schema`."""
    return _schema(_adapters()[1], ref_template)


def component_schemas(*, ref_template: str = COMPONENT_REF) -> dict[str, Any]:
    """The named schemas the `$ref`s of the two schemas above point to, by name."""
    found: dict[str, Any] = {}
    for adapter in _adapters():
        found.update(adapter.json_schema(ref_template=ref_template).get("$defs", {}))
    return found

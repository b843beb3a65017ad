"""What the engine knows of a department when it judges it: its reports, and its memory.

Pure data, built by the worker from the database. `figures()` turns the newest report of each
kind into what a CEL condition sees (docs/rules.md, "What a condition sees"): numbers as doubles
(CEL does not mix int and double), figures a provider did not report left out, and derived
figures (vacancy rate, bed occupancy, days until a closure) worked out once here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from services.core.domain import Cluster, SignalKind
from services.rules.series import micros

# Care that cannot run without a psychiatrist (the rules may ask `department.needs_psychiatrist`).
PSYCHIATRIST_CLUSTERS: Final = frozenset({Cluster.ACUTE, Cluster.CLINICAL, Cluster.SECURE})
PSYCHIATRIST_CARE_TYPES: Final = frozenset({"outreach.fact"})
_NUMBER: Final = (int, float)  # a tuple, not `int | float`: that builds a new union at every call
# Enum members and their values looked up once: `SignalKind.STAFFING` and `.value` are descriptor
# calls, each about as dear as building a small dict, and `figures` runs at every evaluation.
_CLUSTER_NAMES: Final = {cluster: cluster.value for cluster in Cluster}
_STAFFING: Final = SignalKind.STAFFING
_WAITLIST: Final = SignalKind.WAITLIST
_CAPACITY: Final = SignalKind.CAPACITY
_ADMISSION_STOP: Final = SignalKind.ADMISSION_STOP
_CLOSURE: Final = SignalKind.CLOSURE
_CONTRACT: Final = SignalKind.CONTRACT


@dataclass(init=False)
class Report:
    """One signal as the engine sees it.

    The worker makes one per stored report of each department it judges (about fifteen a
    judgement): an `__init__` of plain assignments, as `RuleMemory`. Nothing changes its fields.
    """

    id: uuid.UUID
    kind: SignalKind
    observed_at: datetime
    data: dict[str, Any]  # a dict (JSON): compiled (native.py), `.get` is a dict lookup

    def __init__(
        self, id: uuid.UUID, kind: SignalKind, observed_at: datetime, data: dict[str, Any]
    ) -> None:
        self.id = id
        self.kind = kind
        self.observed_at = observed_at
        self.data = data
        # Not dataclass fields (not compared, not shown): what `measured` and `micros` worked out.
        self._measured: dict[str, Any] | None = None
        self._micros = -1  # not worked out yet (an int, not `int | None`: compiled, unboxed)

    def forget_measured(self) -> None:
        """Let go of the figures `measured` kept, once a newer report of the kind is held: a
        worker keeps a year of reports per department, and only each kind's newest is judged."""
        self._measured = None

    def micros(self) -> int:
        """`observed_at` in whole microseconds since 1970 (`series.micros`), worked out once:
        a forecast reads the times of the last six reports at every judgement."""
        found = self._micros
        if found < 0:
            found = self._micros = micros(self.observed_at)
        return found

    def measured(self) -> dict[str, Any]:
        """The figures a condition sees in this report, for the kinds whose figures do not
        depend on the day (staffing, waiting list, capacity): worked out at its first judgement
        and kept, since the worker keeps a department's reports between judgements and the
        newest of a kind is judged again at every signal of another kind. Read-only."""
        found = self._measured
        if found is None:
            found = self._measured = _measured(self.kind, self.data)
        return found


@dataclass(init=False)
class RuleMemory:
    """How long a rule's condition has held: reports in a row, and since when.

    Made at every judgement: an `__init__` of plain assignments, which mypyc compiles to stores
    (see `evaluate.Reason`). Nothing changes one once made.
    """

    consecutive: int
    since: datetime

    def __init__(self, consecutive: int, since: datetime) -> None:
        self.consecutive = consecutive
        self.since = since


@dataclass(init=False)  # an __init__ of plain assignments: see `evaluate.Reason`
class DepartmentState:
    department_id: uuid.UUID
    care_type: str
    cluster: Cluster
    scope: str
    capacity: int | None
    registered_at: datetime
    norms: dict[str, float] | None  # {"aanmeld_weeks": 4.0, "behandel_weeks": 10.0}
    # Dicts, not Mappings: compiled (native.py), `.get` on a dict is a C lookup, on a Mapping a
    # method call through Python (a fifth of an evaluation's instructions, docs/benchmarks.md).
    reports: dict[SignalKind, tuple[Report, ...]]  # oldest first, per kind
    memory: dict[str, RuleMemory]

    def __init__(
        self,
        department_id: uuid.UUID,
        care_type: str,
        cluster: Cluster,
        scope: str,
        capacity: int | None,
        registered_at: datetime,
        norms: dict[str, float] | None,
        reports: dict[SignalKind, tuple[Report, ...]],
        memory: dict[str, RuleMemory] | None = None,
    ) -> None:
        self.department_id = department_id
        self.care_type = care_type
        self.cluster = cluster
        self.scope = scope
        self.capacity = capacity
        self.registered_at = registered_at
        self.norms = norms
        self.reports = reports
        self.memory = {} if memory is None else memory

    def with_reports(self, reports: dict[SignalKind, tuple[Report, ...]]) -> DepartmentState:
        """This state with newer reports (`dataclasses.replace` cost 3 µs a judgement)."""
        return self._with(reports, self.memory)

    def with_memory(self, memory: dict[str, RuleMemory]) -> DepartmentState:
        """This state with the rules' memory of a newer judgement."""
        return self._with(self.reports, memory)

    def _with(
        self, reports: dict[SignalKind, tuple[Report, ...]], memory: dict[str, RuleMemory]
    ) -> DepartmentState:
        return DepartmentState(
            self.department_id,
            self.care_type,
            self.cluster,
            self.scope,
            self.capacity,
            self.registered_at,
            self.norms,
            reports,
            memory,
        )

    def latest(self, kind: SignalKind) -> Report | None:
        series = self.reports.get(kind)
        return series[-1] if series else None

    def last_report_at(self) -> datetime | None:
        times = [series[-1].observed_at for series in self.reports.values() if series]
        return max(times) if times else None

    @property
    def needs_psychiatrist(self) -> bool:
        return self.cluster in PSYCHIATRIST_CLUSTERS or self.care_type in PSYCHIATRIST_CARE_TYPES


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, _NUMBER):
        return float(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _numbers(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a report as doubles (as `_number`, inlined), in the report's order.

    Most figures are doubles already: the report is copied whole (a copy of a dict is a copy of
    its table), then an int made a double in its place and anything else taken out. JSON gives
    exact floats and ints, checked by type first; `isinstance` is left for the odd subclass
    (never a bool)."""
    numbers = data.copy()
    dropped: list[str] = []
    for k, v in data.items():
        if type(v) is float:
            continue
        if type(v) is int:  # noqa: SIM114 - apart, so `v` is an int: `float()` a C conversion
            numbers[k] = float(v)
        elif type(v) is not bool and type(v) is not str and isinstance(v, _NUMBER):
            numbers[k] = float(v)
        else:
            dropped.append(k)
    for k in dropped:
        del numbers[k]
    return numbers


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole * 100.0


def _measured(kind: SignalKind, data: dict[str, Any]) -> dict[str, Any]:
    """A staffing, waiting-list or capacity report's numbers as doubles, with the figures
    derived from them (vacancy rate, bed occupancy, closed beds)."""
    numbers = _numbers(data)
    if kind is _STAFFING:
        vacancy = _share(numbers.get("vacancies_fte"), numbers.get("fte_budgeted"))
        if vacancy is not None:
            numbers["vacancy_pct"] = vacancy
    elif kind is _CAPACITY:
        total, closed = numbers.get("beds_total"), numbers.get("beds_closed", 0.0)
        open_beds = total - closed if total is not None else None
        occupancy = _share(numbers.get("beds_occupied"), open_beds)
        if occupancy is not None:
            numbers["occupancy_pct"] = occupancy
        closed_share = _share(numbers.get("beds_closed"), total)
        if closed_share is not None:
            numbers["closed_pct"] = closed_share
    return numbers


# A group with no report, shared by every evaluation: nothing writes into the figures.
_NOTHING: Final[dict[str, Any]] = {}
_GROUPS: Final = dict.fromkeys(
    (
        *("department", "norm", "staffing", "waitlist", "capacity"),
        *("admission_stop", "closure", "contract"),
    ),
    _NOTHING,
)


def figures(state: DepartmentState, today: date) -> dict[str, Any]:
    """The variables of a CEL condition for this department today (every evaluation makes them:
    each kind's newest report is looked up once, and its figures are kept with the report).

    What it gives is read-only: groups are shared with the reports, the norms and other
    evaluations."""
    department: dict[str, Any] = {
        "care_type": state.care_type,
        "cluster": _CLUSTER_NAMES.get(state.cluster) or state.cluster.value,
        "scope": state.scope,
        "needs_psychiatrist": state.needs_psychiatrist,
    }
    if state.capacity is not None:
        department["capacity"] = float(state.capacity)
    norms = state.norms
    reports = state.reports
    series = reports.get(_STAFFING)
    staffing = series[-1].measured() if series else _NOTHING
    series = reports.get(_WAITLIST)
    waitlist = series[-1].measured() if series else _NOTHING
    series = reports.get(_CAPACITY)
    capacity = series[-1].measured() if series else _NOTHING
    seen = _GROUPS.copy()  # a copy of a dict with these keys is a copy of its table
    seen["department"] = department
    if norms:
        seen["norm"] = norms
    seen["staffing"] = staffing
    seen["waitlist"] = waitlist
    seen["capacity"] = capacity
    if series := reports.get(_ADMISSION_STOP):
        seen["admission_stop"] = _admission_stop(state, series[-1], today)
    if series := reports.get(_CLOSURE):
        data = series[-1].data
        closure: dict[str, Any] = {"scope": str(data.get("scope", "full"))}
        if (when := _day(data.get("effective_date"))) is not None:
            closure["days_until"] = float((when - today).days)
        if (lost := _number(data.get("capacity_lost"))) is not None:
            closure["capacity_lost"] = lost
        seen["closure"] = closure
    if series := reports.get(_CONTRACT):
        data = series[-1].data
        contract: dict[str, Any] = {"status": str(data.get("status", ""))}
        if (when := _day(data.get("effective_date"))) is not None:
            contract["days_until_effective"] = float((when - today).days)
        seen["contract"] = contract
    return seen


def _admission_stop(state: DepartmentState, report: Report, today: date) -> dict[str, Any]:
    """Active or not, and for how many days: from `since`, or from the first active report."""
    active = bool(report.data.get("active"))
    stop: dict[str, Any] = {"active": active}
    if not active:
        return stop
    start = _day(report.data.get("since"))
    if start is None:
        start = report.observed_at.date()
        for earlier in reversed(state.reports.get(_ADMISSION_STOP, ())):
            if not earlier.data.get("active"):
                break
            start = earlier.observed_at.date()
    stop["days_active"] = float(max(0, (today - start).days))
    return stop

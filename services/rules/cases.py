"""Test cases for a ruleset, written by domain experts: given these signals, this level and rules.

```yaml
cases:
  - name: "HIC: de psychiaters vertrekken"
    department: {care_type: acute.hic, capacity: 24}
    now: 2026-11-01
    signals:
      - {kind: staffing, observed_at: 2026-09-01, data: {fte_budgeted: 30, psychiatrist_fte: 1}}
      - {kind: staffing, observed_at: 2026-10-01, data: {fte_budgeted: 30, psychiatrist_fte: 0}}
    expect:
      levels: [ok, critical]        # optional: after each signal
      level: critical                # at `now`
      rules: [staffing.no_psychiatrist]
```

The signals are judged one after another at their own time (so `for` counts reports as the worker
would), then once more at `now` (data silence, the days until a closure). `rules` lists exactly the
rule ids that must fire at `now`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.domain import Level, Scope, SignalKind
from services.core.errors import InvalidInput
from services.core.reference.files import packaged_care_types, packaged_norms
from services.core.yamlfile import LineIndex, parse_yaml, read_text
from services.rules.evaluate import Assessment, evaluate
from services.rules.ruleset import Ruleset
from services.rules.state import DepartmentState, Report, RuleMemory

LevelName = Literal["ok", "watch", "threatened", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseDepartment(_Strict):
    care_type: str
    capacity: int | None = Field(None, ge=0)
    scope: Scope | None = None
    registered: date | None = None


class CaseSignal(_Strict):
    kind: SignalKind
    observed_at: datetime | date
    data: dict[str, Any]


class Expectation(_Strict):
    level: LevelName
    rules: tuple[str, ...] = ()
    levels: tuple[LevelName, ...] | None = None


class Case(_Strict):
    name: str = Field(min_length=1)
    department: CaseDepartment
    now: datetime | date
    signals: tuple[CaseSignal, ...] = ()
    expect: Expectation


class CaseFile(_Strict):
    cases: tuple[Case, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Outcome:
    name: str
    line: int | None
    passed: bool
    failures: tuple[str, ...]
    assessment: Assessment


def _moment(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(9, 0), tzinfo=UTC)


def load_cases(path: Path) -> tuple[CaseFile, LineIndex]:
    """Read and validate a case file; problems come with their line."""
    text = read_text(path, "case file")
    try:
        document, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc
    try:
        return CaseFile.model_validate(document), lines
    except ValidationError as exc:
        listing = "; ".join(
            f"line {lines.line(tuple(e['loc']))}: {'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors()
        )
        raise InvalidInput(f"{path}: {listing}") from exc


def department_state(
    case: Case, reports: Sequence[Report], memory: dict[str, RuleMemory]
) -> DepartmentState:
    """The department of a case, with the reference data of its care type."""
    care_types = {row.code: row for row in packaged_care_types()}
    row = care_types.get(case.department.care_type)
    if row is None:
        raise InvalidInput(f"case {case.name!r}: unknown care type {case.department.care_type!r}")
    norms = None
    if row.waiting_norms_apply:
        norm = packaged_norms()[-1]
        norms = {
            "aanmeld_weeks": float(norm.aanmeldwachttijd_weeks),
            "behandel_weeks": float(norm.behandelwachttijd_weeks),
        }
    by_kind: dict[SignalKind, list[Report]] = {}
    for report in reports:
        by_kind.setdefault(report.kind, []).append(report)
    first = min((r.observed_at for r in reports), default=_moment(case.now))
    registered = _moment(case.department.registered) if case.department.registered else first
    return DepartmentState(
        department_id=uuid.uuid5(uuid.NAMESPACE_URL, f"case:{case.name}"),
        care_type=row.code,
        cluster=row.cluster,
        scope=(case.department.scope or row.default_scope).value,
        capacity=case.department.capacity,
        registered_at=registered,
        norms=norms,
        reports={kind: tuple(items) for kind, items in by_kind.items()},
        memory=dict(memory),
    )


def run_case(case: Case, ruleset: Ruleset, line: int | None = None) -> Outcome:
    """Judge the case's signals one by one, then at `now`, and compare with what is expected."""
    reports: list[Report] = []
    memory: dict[str, RuleMemory] = {}
    levels: list[str] = []
    for index, signal in enumerate(sorted(case.signals, key=lambda s: _moment(s.observed_at))):
        at = _moment(signal.observed_at)
        reports.append(
            Report(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{case.name}:{index}"), signal.kind, at, signal.data
            )
        )
        step = evaluate(department_state(case, reports, memory), ruleset, at, trigger=signal.kind)
        memory = dict(step.memory)
        levels.append(step.level.value)
    final = evaluate(department_state(case, reports, memory), ruleset, _moment(case.now))
    failures = []
    expect = case.expect
    if final.level is not Level(expect.level):
        failures.append(f"level {final.level.value}, expected {expect.level}")
    fired = sorted(reason.rule_id for reason in final.reasons)
    if sorted(expect.rules) != fired:
        failures.append(f"rules {fired or 'none'}, expected {sorted(expect.rules) or 'none'}")
    if expect.levels is not None and list(expect.levels) != levels:
        failures.append(f"levels after each signal {levels}, expected {list(expect.levels)}")
    return Outcome(case.name, line, not failures, tuple(failures), final)


def run_cases(path: Path, ruleset: Ruleset) -> list[Outcome]:
    """Every case of the file against the ruleset."""
    cases, lines = load_cases(path)
    return [
        run_case(case, ruleset, lines.line(("cases", index)))
        for index, case in enumerate(cases.cases)
    ]

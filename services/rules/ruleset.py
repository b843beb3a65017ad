"""The ruleset file: what a domain expert writes, validated and compiled before it is used.

A ruleset is YAML. Each rule names the signal kinds and the care types or clusters it applies to,
a condition in CEL (Common Expression Language: compiled once, evaluated without `eval`, with no
access to anything but the figures it is given), the level it raises, how long it must hold, and
an explanation in Dutch and English. `load_ruleset` reports every problem with its line number,
so a threshold can be changed without a developer and without surprises at run time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import cel
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import RulesetVersion
from services.core.domain import Cluster, Level, SignalKind
from services.core.errors import InvalidInput
from services.core.reference.files import packaged_care_types
from services.core.yamlfile import LineIndex, parse_yaml, read_text, yaml_error_line
from services.rules.conditions import Condition, compile_condition

PACKAGED = Path(__file__).with_name("default_ruleset.yaml")

# What a condition may refer to (see docs/rules.md, "What a condition sees").
VARIABLES = frozenset(
    {
        "department",
        "norm",
        "staffing",
        "waitlist",
        "capacity",
        "admission_stop",
        "closure",
        "contract",
    }
)
_FIGURE_NAME = re.compile(r"\b([a-z_]+\.[a-z_][a-z0-9_]*)\b")


def _cited_names(rule: Rule) -> tuple[str, ...]:
    """Dotted figure names in the rule's texts, cited with its reason (worked out once)."""
    names: set[str] = set()
    for text in (rule.when or "", rule.limit or "", rule.measure or "", rule.explain.nl):
        names.update(n for n in _FIGURE_NAME.findall(text) if n.split(".")[0] in VARIABLES)
    return tuple(sorted(names))


# What a rule kind adds for its explanation: the measured value, the limit, days, change, kinds.
TEMPLATE_EXTRAS = frozenset({"value", "limit", "days", "change", "kinds"})
_TEMPLATE_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(?::[^}]*)?\}")


class RuleKind(StrEnum):
    THRESHOLD = "threshold"  # the condition holds on the newest figures
    SUSTAINED = "sustained"  # ... and has held for `for`
    TREND = "trend"  # a measure rose by a share over a window
    FORECAST = "forecast"  # a measure is forecast to cross a limit within a horizon
    EVENT = "event"  # an admission stop, closure or contract state
    SILENCE = "silence"  # no signal of any kind for a number of days
    COMPOSITE = "composite"  # independent reasons of different kinds together


RAISED_LEVELS = (Level.WATCH, Level.THREATENED, Level.CRITICAL)
CONDITIONAL = frozenset({RuleKind.THRESHOLD, RuleKind.SUSTAINED, RuleKind.EVENT})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Explanation(_Strict):
    """A sentence per language; `{waitlist.behandelwachttijd_weeks}` puts in a figure."""

    nl: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Hold(_Strict):
    """How long a condition must hold before the rule fires: consecutive reports or days."""

    reports: int | None = Field(None, ge=1, le=52)
    days: int | None = Field(None, ge=1, le=366)

    @model_validator(mode="after")
    def _one_of(self) -> Hold:
        if (self.reports is None) == (self.days is None):
            raise ValueError("give either reports or days")
        return self


class Rule(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=80)]
    kind: RuleKind
    level: Literal["watch", "threatened", "critical"]
    signals: tuple[SignalKind, ...] = Field(default=(), description="kinds whose arrival runs it")
    clusters: tuple[Cluster, ...] = ()
    care_types: tuple[str, ...] = ()
    when: str | None = Field(None, description="CEL condition (threshold, sustained, event)")
    hold: Hold | None = Field(None, alias="for")
    measure: str | None = Field(None, description="figure of a series, e.g. waitlist.waiting_count")
    window_days: int | None = Field(None, ge=7, le=730)
    rise: float | None = Field(None, gt=0, le=10, description="relative rise, 0.25 = 25 %")
    limit: str | None = Field(None, description="CEL value the forecast is compared with")
    horizon_days: int | None = Field(None, ge=1, le=730)
    min_reports: int = Field(3, ge=2, le=52)
    days: int | None = Field(None, ge=1, le=366, description="silence: days without a signal")
    min_kinds: int | None = Field(None, ge=2, le=6, description="composite: distinct kinds")
    from_level: Level | None = Field(None, description="composite: reasons at or above this")
    explain: Explanation
    source: str = Field(min_length=1, description="where the norm or threshold comes from")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Rule:
        needs: dict[RuleKind, tuple[str, ...]] = {
            RuleKind.THRESHOLD: ("when", "signals"),
            RuleKind.SUSTAINED: ("when", "signals", "hold"),
            RuleKind.TREND: ("measure", "window_days", "rise", "signals"),
            RuleKind.FORECAST: ("measure", "limit", "horizon_days", "signals"),
            RuleKind.EVENT: ("when", "signals"),
            RuleKind.SILENCE: ("days",),
            RuleKind.COMPOSITE: ("min_kinds", "from_level"),
        }
        missing = [name for name in needs[self.kind] if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} rule needs {', '.join(missing)}")
        if self.when is not None and self.kind not in CONDITIONAL:
            raise ValueError(f"a {self.kind} rule has no `when` (it would be ignored)")
        if self.measure is not None and self.measure.split(".")[0] not in {
            kind.value for kind in SignalKind
        }:
            raise ValueError(f"measure {self.measure!r} must be <signal kind>.<figure>")
        return self


class RulesetFile(_Strict):
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,39}$")]
    name: str = Field(min_length=1, max_length=80)
    hysteresis_reports: int = Field(2, ge=1, le=12, description="ok reports before resolving")
    no_alternative_share: float = Field(
        0.5, gt=0, le=1, description="share of regional capacity whose loss has no alternative"
    )
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RulesetFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id} is used twice")
            seen.add(rule.id)
        return self


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    condition: cel.Program | None
    limit: cel.Program | None
    cites: tuple[str, ...] = ()  # the figures its condition, limit, measure and text mention
    # The same as closures over the figures, when the expression keeps to what they do (below).
    fast_condition: Condition | None = None
    fast_limit: Condition | None = None


@dataclass(frozen=True)
class Ruleset:
    """A checked, compiled ruleset and what identifies it (version and content hash)."""

    file: RulesetFile
    rules: tuple[CompiledRule, ...]
    sha256: str
    path: Path
    _scoped: dict[tuple[str, str], tuple[CompiledRule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # What evaluate.py works out once per ruleset: its plan per (cluster, care type, kinds
    # reported) and each rule's step, kept with the ruleset so a reload starts afresh.
    plans: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def for_department(self, cluster: str, care_type: str) -> tuple[CompiledRule, ...]:
        """The rules that judge departments of this cluster and care type (worked out once)."""
        key = (cluster, care_type)
        found = self._scoped.get(key)
        if found is None:
            found = tuple(
                c
                for c in self.rules
                if (not c.rule.clusters or cluster in c.rule.clusters)
                and (not c.rule.care_types or care_type in c.rule.care_types)
            )
            self._scoped[key] = found
        return found

    @property
    def version(self) -> str:
        return self.file.version

    def cel_only(self) -> Ruleset:
        """The same ruleset with every condition and limit run by its CEL program alone (no
        closures): the tests and bench/rules.py hold the two to the same answers."""
        return replace(
            self,
            rules=tuple(replace(c, fast_condition=None, fast_limit=None) for c in self.rules),
            _scoped={},
            plans={},
        )


@dataclass(frozen=True)
class Problem:
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line else "file"
        return f"{at}: {self.where}: {self.message}" if self.where else f"{at}: {self.message}"


class RulesetInvalid(InvalidInput):
    """Every problem found in a ruleset file, each with its line."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.problems = problems
        listing = "; ".join(str(p) for p in problems[:20])
        super().__init__(f"{path}: {len(problems)} problem(s): {listing}")


def load_ruleset(path: Path | None = None) -> Ruleset:
    """Read, validate and compile a ruleset (the packaged one when no path is given)."""
    path = path or PACKAGED
    text = read_text(path, "ruleset")
    try:
        document, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        problem = Problem(yaml_error_line(exc), "", f"not valid YAML: {exc}")
        raise RulesetInvalid(path, [problem]) from exc
    try:
        parsed = RulesetFile.model_validate(document)
    except ValidationError as exc:
        raise RulesetInvalid(path, _validation_problems(exc, lines)) from exc
    compiled, problems = _compile(parsed, lines)
    if problems:
        raise RulesetInvalid(path, problems)
    return Ruleset(parsed, compiled, hashlib.sha256(text.encode()).hexdigest(), path)


def _compile(
    parsed: RulesetFile, lines: LineIndex
) -> tuple[tuple[CompiledRule, ...], list[Problem]]:
    compiled: list[CompiledRule] = []
    problems: list[Problem] = []
    for index, rule in enumerate(parsed.rules):
        programs: dict[str, cel.Program | None] = {}
        for name in ("when", "limit"):
            source = getattr(rule, name)
            where = ("rules", index, name)
            if source is None:
                programs[name] = None
                continue
            try:
                program = cel.compile(source)
            except (ValueError, RuntimeError) as exc:
                problems.append(Problem(lines.line(where), f"{rule.id}.{name}", _first(exc)))
                continue
            unknown = _unknown_name(program)
            if unknown:
                problems.append(
                    Problem(
                        lines.line(where),
                        f"{rule.id}.{name}",
                        f"unknown name {unknown!r}; a condition can use "
                        + ", ".join(sorted(VARIABLES)),
                    )
                )
            programs[name] = program
        for language in ("nl", "en"):
            template = getattr(rule.explain, language)
            for name in _TEMPLATE_FIELD.findall(template):
                if name.split(".")[0] not in VARIABLES | TEMPLATE_EXTRAS:
                    problems.append(
                        Problem(
                            lines.line(("rules", index, "explain", language)),
                            f"{rule.id}.explain.{language}",
                            f"unknown figure {{{name}}} in the explanation",
                        )
                    )
        when, limit = programs.get("when"), programs.get("limit")
        compiled.append(
            CompiledRule(
                rule,
                when,
                limit,
                _cited_names(rule),
                fast_condition=compile_condition(when),
                fast_limit=compile_condition(limit),
            )
        )
    known_care_types = {row.code for row in packaged_care_types()}
    for index, rule in enumerate(parsed.rules):
        for position, code in enumerate(rule.care_types):
            if code not in known_care_types:
                problems.append(
                    Problem(
                        lines.line(("rules", index, "care_types", position)),
                        f"{rule.id}.care_types",
                        f"unknown care type {code!r} (see `vroegsignaal care-type list`)",
                    )
                )
    composite_ids = {r.id for r in parsed.rules if r.kind is RuleKind.COMPOSITE}
    if len(composite_ids) > 3:
        problems.append(Problem(None, "", "at most three composite rules"))
    return tuple(compiled), problems


_LOOP_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


# CEL's standard functions and macros that a condition may call.
FUNCTIONS = frozenset(
    {
        *("size", "has", "matches", "startsWith", "endsWith", "contains", "in"),
        *("int", "uint", "double", "string", "bool", "bytes", "timestamp", "duration"),
        *("exists", "exists_one", "all", "map", "filter", "abs", "max", "min"),
    }
)


def _unknown_name(program: cel.Program) -> str | None:
    """A name or function the expression uses that no condition is given (loop variables aside)."""
    loop_variables = set(_LOOP_VARIABLE.findall(program.source))
    references = program.references()
    for name in references["variables"]:
        root = str(name).split(".")[0]
        if root not in VARIABLES and root not in loop_variables:
            return root
    for function in references["functions"]:
        if function[:1].isalpha() and function not in FUNCTIONS:
            return f"{function}()"
    return None


def _first(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _validation_problems(exc: ValidationError, lines: LineIndex) -> list[Problem]:
    problems = []
    errors = exc.errors()
    rule_errors = any(len(e["loc"]) > 1 and e["loc"][0] == "rules" for e in errors)
    for error in errors:
        if error["type"] == "too_short" and error["loc"] == ("rules",) and rule_errors:
            continue  # "no rules left" only because each rule has a problem of its own
        path = tuple(
            step for step in error["loc"] if not str(step).startswith(("function-", "literal"))
        )
        where = ".".join(str(step) for step in path)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(lines.line(path), where, message))
    return problems


async def record_ruleset(session: AsyncSession, ruleset: Ruleset) -> None:
    """Note that this ruleset (version and content hash) was loaded, once per distinct file."""
    await session.execute(
        pg_insert(RulesetVersion)
        .values(version=ruleset.version, sha256=ruleset.sha256)
        .on_conflict_do_nothing()
    )

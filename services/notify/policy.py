"""The escalation policy file: who hears of what, when an alert moves up, who may act on it.

YAML, packaged (`default_policy.yaml`) and replaceable with `VROEGSIGNAAL_ESCALATION_POLICY`, so
a table can change "three working days" without a developer. `load_policy` refuses a broken file
with the line of every problem, as the ruleset loader does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.core.domain import AlertKind, EscalationStep, Level, Scope
from services.core.errors import InvalidInput
from services.core.yamlfile import parse_yaml, read_text

PACKAGED = Path(__file__).with_name("default_policy.yaml")
LADDER = (EscalationStep.PROVIDER, EscalationStep.REGIONAL_TABLE, EscalationStep.NATIONAL_TABLE)


class Audience(StrEnum):
    """A party an alert concerns, worked out per alert (whose department, which region)."""

    PROVIDER = "provider"
    COORDINATING_INSURER = "coordinating_insurer"
    REGIONAL_TABLE = "regional_table"
    NATIONAL_TABLE = "national_table"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    tell: tuple[Audience, ...] = Field(min_length=1)
    acknowledged_by: tuple[Audience, ...] = Field(min_length=1)
    acknowledge_within_working_days: int | None = Field(ge=1, le=60)


class StartAt(_Strict):
    watch: EscalationStep
    threatened: EscalationStep
    critical: EscalationStep
    no_alternative: EscalationStep
    coverage: EscalationStep
    supra_regional: EscalationStep


class Acknowledged(_Strict):
    remind_after_working_days: int = Field(ge=1, le=250)
    escalate_after_working_days: int = Field(ge=1, le=250)


class PolicyFile(_Strict):
    version: str = Field(min_length=1, max_length=64)
    ladder: dict[EscalationStep, Step]
    start_at: StartAt
    acknowledged: Acknowledged
    resolve_by: tuple[Audience, ...] = Field(min_length=1)
    silence_by: tuple[Audience, ...] = Field(min_length=1)
    email_to: tuple[Audience, ...] = ()

    @model_validator(mode="after")
    def _every_step(self) -> PolicyFile:
        missing = [step.value for step in LADDER if step not in self.ladder]
        if missing:
            raise ValueError(f"the ladder needs every step; missing: {', '.join(missing)}")
        told: set[Audience] = set()
        for step in LADDER:
            now_told = set(self.ladder[step].tell)
            if not told <= now_told:
                lost = ", ".join(sorted(a.value for a in told - now_told))
                raise ValueError(f"step {step.value} stops telling {lost}: a ladder only widens")
            told = now_told
        return self


@dataclass(frozen=True)
class AlertShape:
    """What decides where an alert belongs on the ladder."""

    kind: AlertKind
    level: Level
    no_alternative: bool
    scope: Scope


def rank(step: EscalationStep) -> int:
    return LADDER.index(step)


@dataclass(frozen=True)
class Policy:
    file: PolicyFile
    sha256: str
    path: Path

    @property
    def version(self) -> str:
        return self.file.version

    def start_step(self, alert: AlertShape) -> EscalationStep:
        """The lowest step the alert belongs at: the highest that any of its traits asks for."""
        start = self.file.start_at
        wanted = [EscalationStep.PROVIDER]
        if alert.level in (Level.WATCH, Level.THREATENED, Level.CRITICAL):
            wanted.append(getattr(start, alert.level.value))
        if alert.no_alternative:
            wanted.append(start.no_alternative)
        if alert.kind is AlertKind.COVERAGE:
            wanted.append(start.coverage)
        if alert.scope is Scope.SUPRA_REGIONAL:
            wanted.append(start.supra_regional)
        return max(wanted, key=rank)

    def step(self, step: EscalationStep) -> Step:
        return self.file.ladder[step]

    def told_at(self, step: EscalationStep) -> tuple[Audience, ...]:
        return self.file.ladder[step].tell


class PolicyInvalid(InvalidInput):
    """A policy file that cannot be used; the message lists every problem with its line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the packaged one when no path is given)."""
    path = path or PACKAGED
    text = read_text(path, "escalation policy")
    try:
        document, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid(path, [f"not valid YAML: {exc}"]) from exc
    try:
        parsed = PolicyFile.model_validate(document)
    except ValidationError as exc:
        problems = [
            f"line {lines.line(tuple(error['loc']))}: "
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise PolicyInvalid(path, problems) from exc
    return Policy(parsed, hashlib.sha256(text.encode()).hexdigest(), path)

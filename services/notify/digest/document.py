"""The digest as a document: the figures of one month, as stored, served as JSON and rendered.

One pydantic model per part, so the JSON has a schema (`/docs`) and the page reads typed fields.
Lists hold every row; the HTML and the PDF show the first few of each.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.core.domain import AlertKind, Cluster, EscalationStep, Level
from services.core.events.payloads import DigestCounts

Status = Literal["open", "acknowledged", "resolved"]


# --- the document --------------------------------------------------------------------------------


class Change(BaseModel):
    """A headline figure this month and the month before."""

    value: int
    previous: int


class Headline(BaseModel):
    departments: Change = Field(description="crucial departments watched at the month's end")
    opened: Change = Field(description="alerts opened in the month")
    escalated: Change = Field(description="escalations in the month (to either table)")
    escalated_national_table: Change = Field(description="escalations to the national table")
    resolved: Change = Field(description="alerts resolved in the month")
    open: Change = Field(description="alerts open at the month's end")
    national_open: Change = Field(description="of those, at the national table")
    critical_open: Change = Field(description="of those, at level critical")
    coverage_gaps: Change = Field(description="coverage gaps open at the month's end")


class MonthFigures(BaseModel):
    """One month of the trend."""

    period: str
    label: str
    departments: int
    opened: int
    escalated_regional_table: int
    escalated_national_table: int
    resolved: int
    open: int
    national_open: int
    critical_open: int
    coverage_gaps: int


class AreaFigures(BaseModel):
    """The month in one region or one cluster."""

    code: str
    name: str
    departments: int
    opened: int
    escalated_regional_table: int
    escalated_national_table: int
    resolved: int
    open: int
    national_open: int
    critical_open: int
    coverage_gaps: int
    silent_departments: int


class AlertLine(BaseModel):
    """One alert as a list in the digest shows it, at the month's end."""

    id: uuid.UUID
    kind: AlertKind
    what: str = Field(description="the department and its provider, or the coverage cell")
    department: str | None
    provider: str | None
    provider_agb: str | None
    region: str | None
    region_name: str
    care_type: str
    care_type_name: str
    cluster: Cluster
    level: Level
    step: EscalationStep
    status: Status
    opened_at: datetime
    age_days: int = Field(description="days open at the month's end (or until resolved)")
    reasons: list[str] = Field(description="in Dutch, most severe first")


class NationalLine(AlertLine):
    escalated_at: datetime = Field(description="when it reached the national table")
    escalation_reason: str = Field(description="level, timer or coverage")
    escalated_in_period: bool


class ResolvedLine(AlertLine):
    resolved_at: datetime
    resolution: str | None = Field(description="recovered, manual or department_closed")
    resolved_by: str | None = Field(description="the organisation that closed it; null: engine")
    note: str | None


class DepartmentLine(BaseModel):
    id: uuid.UUID
    department: str
    name: str
    provider: str
    provider_agb: str | None
    region: str
    region_name: str
    care_type: str
    care_type_name: str


class NoAlternativeLine(DepartmentLine):
    level: Level
    reasons: list[str]


class SilentLine(DepartmentLine):
    last_observed_at: datetime | None = Field(description="its last signal; null: never")


class SilentProvider(BaseModel):
    name: str
    agb: str | None
    departments: int
    last_observed_at: datetime | None


class Completeness(BaseModel):
    """Who reported in the month: silence is a risk too."""

    departments: int
    reporting: int
    silent: int
    providers: int
    silent_departments: list[SilentLine]
    silent_providers: list[SilentProvider] = Field(description="none of their departments reported")


class DigestFigures(BaseModel):
    """The whole digest as figures; the HTML and the PDF show this and nothing else."""

    period: str
    label: str
    zone: str
    starts_at: datetime
    ends_at: datetime
    made_at: datetime
    ruleset_version: str
    long_open_days: int
    empty: bool = Field(description="nothing opened, escalated, resolved or open this month")
    counts: DigestCounts
    headline: Headline
    trend: list[MonthFigures] = Field(description="oldest first, ending with this month")
    regions: list[AreaFigures]
    clusters: list[AreaFigures]
    national_table: list[NationalLine]
    coverage_gaps: list[AlertLine]
    no_alternative: list[NoAlternativeLine]
    long_open: list[AlertLine]
    resolved: list[ResolvedLine]
    resolved_by_reason: dict[str, int]
    completeness: Completeness

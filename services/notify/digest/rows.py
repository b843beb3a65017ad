"""What a digest is made from, read from the database in a handful of set-wise queries.

The figures themselves are a pure function of these rows (`figures.py`), so they can be checked
number by number without a database and made again from the same rows. Everything is read as it
stood at the month's end: alerts and their timelines up to then, each department's latest
judgement before then, and the signals observed during the month. Reading history rather than
the current state is what lets a digest be remade later (`--force`) with the same figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.core.db.models import (
    Alert,
    AlertEvent,
    Assessment,
    CareType,
    Department,
    Organisation,
    Region,
    RulesetVersion,
    Signal,
)
from services.core.domain import AlertEventType, AlertKind, Cluster, EscalationStep, Level, Scope
from services.notify.digest.period import Period

TREND_MONTHS = 12


@dataclass(frozen=True)
class RegionRow:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class CareTypeRow:
    code: str
    name: str  # Dutch
    cluster: Cluster
    sort_order: int


@dataclass(frozen=True)
class DepartmentRow:
    id: uuid.UUID
    code: str
    name: str
    provider_id: uuid.UUID
    provider_name: str
    provider_agb: str | None
    region_id: int
    care_type: str
    scope: Scope
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class AlertRow:
    id: uuid.UUID
    kind: AlertKind
    department_id: uuid.UUID | None
    region_id: int | None
    care_type: str
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    level: Level  # now; the level at a month's end comes from the timeline
    escalation: EscalationStep
    reasons: list[dict[str, Any]]


@dataclass(frozen=True)
class TimelineRow:
    alert_id: uuid.UUID
    type: AlertEventType
    at: datetime
    level: Level
    escalation: EscalationStep
    details: dict[str, Any]
    note: str | None
    organisation: str | None  # who acted; None: the engine


@dataclass(frozen=True)
class JudgementRow:
    """A department's latest assessment before the month's end."""

    department_id: uuid.UUID
    level: Level
    no_alternative: bool
    reasons: list[dict[str, Any]]
    ruleset_version: str
    assessed_at: datetime


@dataclass(frozen=True)
class ReportingRow:
    """How a department reported: signals observed in the month, and its last one before the end."""

    department_id: uuid.UUID
    in_period: int
    last_observed_at: datetime | None


@dataclass(frozen=True)
class DigestRows:
    """Everything one digest is made from."""

    period: Period
    zone: ZoneInfo
    regions: Sequence[RegionRow]
    care_types: Sequence[CareTypeRow]
    departments: Sequence[DepartmentRow]
    alerts: Sequence[AlertRow]
    timeline: Sequence[TimelineRow]  # of those alerts, before the month's end, oldest first
    judgements: Sequence[JudgementRow]
    reporting: Sequence[ReportingRow]
    ruleset_fallback: str | None  # the newest loaded ruleset, when no judgement names one


async def load_rows(
    session: AsyncSession, period: Period, zone: ZoneInfo, *, trend_months: int = TREND_MONTHS
) -> DigestRows:
    """Read the rows for the digest of `period` and the trend of the months before it."""
    end = period.ends_at(zone)
    start = period.starts_at(zone)
    window_start = period.shift(1 - trend_months).starts_at(zone)

    regions = [
        RegionRow(r.id, r.code, r.name)
        for r in (await session.execute(select(Region.id, Region.code, Region.name))).all()
    ]
    care_types = [
        CareTypeRow(c.code, c.name_nl, c.cluster, c.sort_order)
        for c in (
            await session.execute(
                select(CareType.code, CareType.name_nl, CareType.cluster, CareType.sort_order)
            )
        ).all()
    ]
    provider = aliased(Organisation)
    departments = [
        DepartmentRow(
            d.id,
            d.code,
            d.name,
            d.provider_id,
            d.provider_name,
            d.agb_code,
            d.region_id,
            d.care_type_code,
            d.scope,
            d.created_at,
            d.closed_at,
        )
        for d in (
            await session.execute(
                select(
                    Department.id,
                    Department.code,
                    Department.name,
                    Department.provider_id,
                    provider.name.label("provider_name"),
                    provider.agb_code,
                    Department.region_id,
                    Department.care_type_code,
                    Department.scope,
                    Department.created_at,
                    Department.closed_at,
                )
                .join(provider, provider.id == Department.provider_id)
                # Registered before the month ended and not closed before the trend began.
                .where(
                    Department.created_at < end,
                    or_(Department.closed_at.is_(None), Department.closed_at >= window_start),
                )
            )
        ).all()
    ]
    # Alerts alive at some moment of the trend window.
    alert_filter = and_(
        Alert.opened_at < end,
        or_(Alert.resolved_at.is_(None), Alert.resolved_at >= window_start),
    )
    alerts = [
        AlertRow(
            a.id,
            a.kind,
            a.department_id,
            a.region_id,
            a.care_type_code,
            a.opened_at,
            a.resolved_at if a.resolved_at is not None and a.resolved_at < end else None,
            a.resolution if a.resolved_at is not None and a.resolved_at < end else None,
            a.level,
            a.escalation,
            a.reasons,
        )
        for a in (
            await session.execute(
                select(
                    Alert.id,
                    Alert.kind,
                    Alert.department_id,
                    Alert.region_id,
                    Alert.care_type_code,
                    Alert.opened_at,
                    Alert.resolved_at,
                    Alert.resolution,
                    Alert.level,
                    Alert.escalation,
                    Alert.reasons,
                ).where(alert_filter)
            )
        ).all()
    ]
    actor = aliased(Organisation)
    timeline = [
        TimelineRow(
            e.alert_id, e.type, e.at, e.level, e.escalation, e.details or {}, e.note, e.actor
        )
        for e in (
            await session.execute(
                select(
                    AlertEvent.alert_id,
                    AlertEvent.type,
                    AlertEvent.at,
                    AlertEvent.level,
                    AlertEvent.escalation,
                    AlertEvent.details,
                    AlertEvent.note,
                    actor.name.label("actor"),
                )
                .join(Alert, Alert.id == AlertEvent.alert_id)
                .outerjoin(actor, actor.id == AlertEvent.actor_organisation_id)
                .where(alert_filter, AlertEvent.at < end)
                .order_by(AlertEvent.at, AlertEvent.id)
            )
        ).all()
    ]
    judgements = [
        JudgementRow(
            j.department_id, j.level, j.no_alternative, j.reasons, j.ruleset_version, j.assessed_at
        )
        for j in (
            await session.execute(
                select(
                    Assessment.department_id,
                    Assessment.level,
                    Assessment.no_alternative,
                    Assessment.reasons,
                    Assessment.ruleset_version,
                    Assessment.assessed_at,
                )
                .where(Assessment.assessed_at < end)
                .ext(distinct_on(Assessment.department_id))
                .order_by(
                    Assessment.department_id, Assessment.assessed_at.desc(), Assessment.id.desc()
                )
            )
        ).all()
    ]
    # One pass over the signals before the end: the month's count and the last report.
    reporting = [
        ReportingRow(r.department_id, int(r.in_period), r.last_observed_at)
        for r in (
            await session.execute(
                select(
                    Signal.department_id,
                    func.count().filter(Signal.observed_at >= start).label("in_period"),
                    func.max(Signal.observed_at).label("last_observed_at"),
                )
                .where(Signal.observed_at < end)
                .group_by(Signal.department_id)
            )
        ).all()
    ]
    fallback = await session.scalar(
        select(RulesetVersion.version).order_by(RulesetVersion.loaded_at.desc()).limit(1)
    )
    return DigestRows(
        period=period,
        zone=zone,
        regions=regions,
        care_types=care_types,
        departments=departments,
        alerts=alerts,
        timeline=timeline,
        judgements=judgements,
        reporting=reporting,
        ruleset_fallback=fallback,
    )

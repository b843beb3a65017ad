"""`/v1/departments/{id}/assessment(s)`: the engine's judgement of a department, and its history.

Scoped like the departments themselves (a provider its own, an insurer the regions it coordinates,
a table its region, the national table supra-regional care); every read is audited, because an
assessment is what alerts are made of.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, visible_departments
from services.core.audit import audit_call
from services.core.coverage import cell_level, scoped_coverage
from services.core.db.models import Assessment, CareType, Department, Region, RegionalCoverage
from services.core.domain import Cluster, Level
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.ingest.openapi import ERROR_RESPONSES

router = APIRouter(prefix="/v1/departments", tags=["assessments"])


class ReasonRead(BaseModel):
    """One rule that fired: why, from which figures, against which limit, from which signals."""

    rule_id: str
    level: Level
    kind: str | None = Field(description="the signal kind the figures come from")
    explanation: str = Field(description="in English")
    explanation_nl: str = Field(description="in Dutch")
    figures: dict[str, Any]
    thresholds: dict[str, Any]
    signal_ids: list[uuid.UUID]


class AssessmentRead(BaseModel):
    department_id: uuid.UUID
    level: Level
    score: float
    reasons: list[ReasonRead] = Field(description="most severe first")
    ruleset_version: str
    assessed_at: datetime
    signal_id: uuid.UUID | None = Field(description="the signal that led to it; null: a schedule")


class AssessmentPage(BaseModel):
    items: list[AssessmentRead] = Field(description="newest first")
    next_before: datetime | None = Field(description="pass as `before` for the next, older page")


def _read(row: Assessment) -> AssessmentRead:
    return AssessmentRead(
        department_id=row.department_id,
        level=row.level,
        score=float(row.score),
        reasons=[ReasonRead.model_validate(reason) for reason in row.reasons],
        ruleset_version=row.ruleset_version,
        assessed_at=row.assessed_at,
        signal_id=row.signal_id,
    )


async def _allowed(session: AsyncSession, caller: Caller, department_id: uuid.UUID) -> None:
    """404 for a department that does not exist, 403 for one outside the caller's scope."""
    visible = await session.scalar(
        select(visible_departments(caller)).where(Department.id == department_id)
    )
    if visible is None:
        raise HTTPException(404, f"No department with id {department_id}.")
    if not visible:
        raise HTTPException(403, "This department is not one your organisation may see.")


@router.get(
    "/{department_id}/assessment",
    summary="The department's current assessment",
    responses={**ERROR_RESPONSES, 404: {"description": "No such department, or not judged yet."}},
)
async def current_assessment(
    request: Request, caller: CallerDep, department_id: uuid.UUID
) -> AssessmentRead:
    """The newest judgement, with its reasons in Dutch and English."""
    async with sessions_of(request)() as session, session.begin():
        await _allowed(session, caller, department_id)
        await audit_call(
            session,
            request,
            caller,
            "assessment.read",
            object_type="department",
            object_id=department_id,
        )
        row = (
            await session.execute(
                select(Assessment)
                .where(Assessment.department_id == department_id)
                .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if row is None:
            raise HTTPException(404, "This department has not been judged yet: no signal so far.")
        return _read(row)


@router.get(
    "/{department_id}/assessments",
    summary="The department's assessments, newest first",
    responses=ERROR_RESPONSES,
)
async def assessment_history(
    request: Request,
    caller: CallerDep,
    department_id: uuid.UUID,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AssessmentPage:
    """Every judgement (one per signal, and the scheduled ones), to page back through."""
    if before is not None and before.tzinfo is None:
        raise HTTPException(422, "`before` needs a time zone, e.g. 2026-11-01T09:00:00Z.")
    async with sessions_of(request)() as session, session.begin():
        await _allowed(session, caller, department_id)
        await audit_call(
            session,
            request,
            caller,
            "assessment.history.read",
            object_type="department",
            object_id=department_id,
        )
        query = select(Assessment).where(Assessment.department_id == department_id)
        if before is not None:
            query = query.where(Assessment.assessed_at < before)
        rows = list(
            (
                await session.execute(
                    query.order_by(Assessment.assessed_at.desc(), Assessment.id.desc()).limit(
                        limit + 1
                    )
                )
            ).scalars()
        )
    items = [_read(row) for row in rows[:limit]]
    more = len(rows) > limit
    return AssessmentPage(items=items, next_before=items[-1].assessed_at if more else None)


coverage_router = APIRouter(prefix="/v1/coverage", tags=["coverage"])
DEFAULT_SHARE = 0.5  # the ruleset's `no_alternative_share` when the app was not told another


class CoverageCell(BaseModel):
    """One region × care type (region null: national, for supra-regional care)."""

    region: str | None
    care_type: str
    cluster: Cluster
    departments: int = Field(description="active departments of this care type here")
    threatened: int
    critical: int
    capacity_total: int
    capacity_at_risk: int = Field(description="capacity of the threatened and critical ones")
    no_alternative: bool = Field(description="a gap: not one unthreatened department left")
    level: Level
    updated_at: datetime


@coverage_router.get("", summary="Regional coverage of crucial care", responses=ERROR_RESPONSES)
async def coverage(
    request: Request,
    caller: CallerDep,
    region: Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,64}$")] = None,
    care_type: Annotated[str | None, Query(pattern=r"^[a-z0-9_.]{1,64}$")] = None,
    cluster: Cluster | None = None,
    gaps_only: bool = False,
) -> list[CoverageCell]:
    """Per region and care type: departments, how many are threatened or critical, capacity at
    risk, and gaps. Scoped: a table its region (the national table everything), an insurer the
    regions it coordinates, a provider the regions it works in and the national cells."""
    query = scoped_coverage(
        select(RegionalCoverage, Region.code, CareType.cluster), caller
    ).order_by(Region.code.nulls_first(), CareType.sort_order)
    if region:
        query = query.where(Region.code == region)
    if care_type:
        query = query.where(RegionalCoverage.care_type_code == care_type)
    if cluster:
        query = query.where(CareType.cluster == cluster)
    if gaps_only:
        query = query.where(RegionalCoverage.no_alternative > 0)
    async with sessions_of(request)() as session, session.begin():
        await audit_call(session, request, caller, "coverage.read", object_type="coverage")
        rows = (await session.execute(query)).all()
    share = float(getattr(request.app.state, "no_alternative_share", DEFAULT_SHARE))
    return [
        CoverageCell(
            region=code,
            care_type=cell.care_type_code,
            cluster=cell_cluster,
            departments=cell.departments_active,
            threatened=cell.threatened,
            critical=cell.critical,
            capacity_total=cell.capacity_total,
            capacity_at_risk=cell.capacity_at_risk,
            no_alternative=bool(cell.no_alternative),
            level=cell_level(cell, share),
            updated_at=cell.updated_at,
        )
        for cell, code, cell_cluster in rows
    ]


def routers() -> list[APIRouter]:
    return [router, coverage_router]

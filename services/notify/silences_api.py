"""Silences: a table or insurer quiets a department's alerts for a period, with a reason.

For a planned, announced change (a merger, a move) that would otherwise ring the ladder every
week. Silenced alerts are still recorded and still go up the ladder when they turn critical; a
resolution is always announced; when the silence ends on an open alert, everyone concerned is
told again (the timer sweep does that). Who may silence is in the escalation policy.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, visible_departments
from services.core.db.models import Alert, Department, Silence
from services.core.domain import AlertKind, AlertStatus
from services.core.events.outbox import record_events
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.ingest.openapi import ERROR_RESPONSES
from services.notify import actions
from services.notify.api import Note, StrictBody, acting_user_name, record_alert_audit
from services.notify.parties import context_of, department_audiences
from services.notify.runtime import runtime_of

router = APIRouter(tags=["silences"])
LONGEST = timedelta(days=366)


class SilenceBody(StrictBody):
    starts_at: AwareDatetime | None = Field(default=None, description="from; default: now")
    ends_at: AwareDatetime = Field(description="until (exclusive), at most a year on")
    reason: Note = Field(description="why, e.g. the announced reorganisation (no personal data)")


class SilenceRead(BaseModel):
    id: uuid.UUID
    department_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str
    organisation_id: uuid.UUID = Field(description="who silenced it")
    lifted_at: datetime | None
    active: bool


def _read(silence: Silence, now: datetime) -> SilenceRead:
    return SilenceRead(
        id=silence.id,
        department_id=silence.department_id,
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        reason=silence.reason,
        organisation_id=silence.organisation_id,
        lifted_at=silence.lifted_at,
        active=silence.lifted_at is None and silence.starts_at <= now < silence.ends_at,
    )


async def _department(
    session: AsyncSession, caller: Caller, department_id: uuid.UUID
) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise HTTPException(404, f"No department with id {department_id}.")
    visible = await session.scalar(
        select(visible_departments(caller)).where(Department.id == department_id)
    )
    if not visible:
        raise HTTPException(403, "This department is not one your organisation may see.")
    return department


def _may_silence(request: Request, caller: Caller, department: Department) -> None:
    allowed = set(runtime_of(request).policy().file.silence_by)
    if not department_audiences(caller, department) & allowed:
        who = ", ".join(a.value for a in sorted(allowed))
        raise HTTPException(403, f"Only {who} may silence this department's alerts.")


async def _open_alert(session: AsyncSession, department_id: uuid.UUID) -> Alert | None:
    return (
        await session.execute(
            select(Alert)
            .where(
                Alert.department_id == department_id,
                Alert.kind == AlertKind.DEPARTMENT,
                Alert.status != AlertStatus.RESOLVED,
            )
            .with_for_update(key_share=True)
        )
    ).scalar_one_or_none()


async def _announce(
    session: AsyncSession,
    request: Request,
    caller: Caller,
    silence: Silence,
    department: Department,
    action: str,
    details: dict[str, str],
    now: datetime,
) -> None:
    """A silence set or lifted: on the open alert's timeline (if any), in the audit log (against
    that alert) and as an event, all in the caller's transaction."""
    alert = await _open_alert(session, department.id)
    context = await context_of(session, alert) if alert is not None else None
    name = await acting_user_name(session, caller)
    event = actions.silenced(session, silence, department, context, caller, name, now)
    await record_alert_audit(session, request, caller, action, alert.id if alert else None, details)
    await session.flush()
    await record_events(session, [event])


@router.post(
    "/v1/departments/{department_id}/silences",
    status_code=201,
    summary="Silence a department's alerts for a period",
    responses={**ERROR_RESPONSES, 404: {"description": "No such department."}},
)
async def create_silence(
    request: Request, caller: CallerDep, department_id: uuid.UUID, body: SilenceBody
) -> SilenceRead:
    now = runtime_of(request).clock()
    starts_at = body.starts_at or now
    if body.ends_at <= starts_at:
        raise HTTPException(422, "ends_at: must be after starts_at")
    if body.ends_at <= now:
        raise HTTPException(422, "ends_at: must be in the future")
    if body.ends_at - starts_at > LONGEST:
        raise HTTPException(422, "ends_at: a silence lasts at most a year; set a new one after")
    async with sessions_of(request)() as session, session.begin():
        department = await _department(session, caller, department_id)
        _may_silence(request, caller, department)
        silence = Silence(
            id=uuid.uuid4(),
            department_id=department.id,
            organisation_id=caller.organisation_id,
            created_by_user_id=caller.user_id,
            reason=body.reason,
            starts_at=starts_at,
            ends_at=body.ends_at,
        )
        session.add(silence)
        details = {"silence_id": str(silence.id), "department_id": str(department.id)}
        await _announce(
            session, request, caller, silence, department, "silence.create", details, now
        )
        return _read(silence, now)


@router.get("/v1/silences", summary="Silences of departments the caller may see")
async def list_silences(
    request: Request,
    caller: CallerDep,
    department: uuid.UUID | None = None,
    active: Annotated[bool, Query(description="only those in force now")] = False,
) -> list[SilenceRead]:
    now = runtime_of(request).clock()
    async with sessions_of(request)() as session, session.begin():
        query = (
            select(Silence)
            .join(Department, Department.id == Silence.department_id)
            .where(visible_departments(caller))
            .order_by(Silence.starts_at.desc())
            .limit(500)
        )
        if department is not None:
            query = query.where(Silence.department_id == department)
        if active:
            query = query.where(
                Silence.lifted_at.is_(None), Silence.starts_at <= now, Silence.ends_at > now
            )
        rows = list((await session.execute(query)).scalars())
        await record_alert_audit(
            session, request, caller, "silence.list", None, {"count": len(rows)}
        )
        return [_read(s, now) for s in rows]


@router.delete(
    "/v1/silences/{silence_id}",
    summary="Lift a silence early",
    responses={**ERROR_RESPONSES, 404: {"description": "No such silence."}},
)
async def lift_silence(request: Request, caller: CallerDep, silence_id: uuid.UUID) -> SilenceRead:
    now = runtime_of(request).clock()
    async with sessions_of(request)() as session, session.begin():
        silence = (
            await session.execute(
                select(Silence).where(Silence.id == silence_id).with_for_update(key_share=True)
            )
        ).scalar_one_or_none()
        if silence is None:
            raise HTTPException(404, f"No silence with id {silence_id}.")
        department = await _department(session, caller, silence.department_id)
        _may_silence(request, caller, department)
        if silence.lifted_at is not None or silence.ends_at <= now:
            raise HTTPException(409, "This silence has already ended.")
        silence.lifted_at = now
        details = {"silence_id": str(silence.id)}
        await _announce(session, request, caller, silence, department, "silence.lift", details, now)
        return _read(silence, now)

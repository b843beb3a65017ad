"""`/v1/alerts`: the alerts a caller may see, and acknowledging, commenting and resolving them.

Scoped by role as DESIGN.md says (parties.visible_alerts). Who may act follows from the escalation
policy: at each step some audiences may acknowledge; some may resolve. Every read and every
action is written to the audit log in the same transaction; every action is an alert event.
Another organisation's alert answers `403` (it exists, but it is not yours), a missing one `404`,
acting on a resolved one `409`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
from services.core.audit import audit_call
from services.core.db.errors import in_transaction_retrying
from services.core.db.models import (
    Alert,
    AlertEvent,
    CareType,
    Department,
    Organisation,
    Region,
    Signal,
    User,
)
from services.core.domain import (
    AlertEventType,
    AlertKind,
    AlertStatus,
    Cluster,
    EscalationStep,
    Level,
    Scope,
)
from services.core.events.outbox import record_events
from services.core.events.payloads import ResolutionReason
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.core.privacy import contains_bsn
from services.ingest.openapi import ERROR_RESPONSES
from services.notify import actions
from services.notify.messages import LEVEL_NL
from services.notify.nza import NzaNotification, draft
from services.notify.parties import (
    AlertContext,
    audiences_of,
    context_of,
    load_context,
    silenced_now,
    visible_alerts,
)
from services.notify.policy import Audience
from services.notify.runtime import runtime_of

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
NOTE_MAX = 2000
AlertAction = Literal["acknowledge", "comment", "resolve"]


def _clean_note(value: str) -> str:
    """Free text for people: trimmed, printable, and never something shaped like a BSN."""
    value = value.strip()
    if not value:
        raise ValueError("the note is empty (only whitespace)")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError("control characters are not allowed")
    if contains_bsn(value):
        raise ValueError(
            "looks like a citizen service number (BSN): notes must not hold personal data"
        )
    return value


Note = Annotated[str, Field(min_length=1, max_length=NOTE_MAX), AfterValidator(_clean_note)]


class StrictBody(BaseModel):
    """A request body that refuses unknown fields: a misspelt `note` is a 422, not lost.

    The base of every body people send about alerts, here and in `/v1/silences`."""

    model_config = ConfigDict(extra="forbid")


class AcknowledgeBody(StrictBody):
    note: Note | None = Field(default=None, description="what you will do (no personal data)")


class CommentBody(StrictBody):
    note: Note = Field(description="the comment (no personal data)")


class ResolveBody(StrictBody):
    reason: Literal["manual", "department_closed"] = Field(
        default="manual", description="why it is closed"
    )
    note: Note = Field(description="how it was solved (no personal data)")


class ReasonRead(BaseModel):
    rule_id: str
    level: Level
    kind: str | None
    explanation: str
    explanation_nl: str | None = None
    figures: dict[str, Any]
    thresholds: dict[str, Any]
    signal_ids: list[uuid.UUID]


class AlertRead(BaseModel):
    id: uuid.UUID
    kind: AlertKind
    department_id: uuid.UUID | None
    department: str | None
    department_name: str | None
    provider_agb: str | None
    region: str | None
    care_type: str
    cluster: Cluster
    scope: Scope
    level: Level
    status: AlertStatus
    escalation: EscalationStep
    no_alternative: bool
    silenced: bool
    reasons: list[ReasonRead]
    opened_at: datetime
    escalated_at: datetime | None
    step_due_at: datetime | None = Field(description="when it moves up if not acknowledged")
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    ruleset_version: str


class TimelineEntry(BaseModel):
    type: AlertEventType
    at: datetime
    level: Level
    escalation: EscalationStep
    organisation_id: uuid.UUID | None = Field(description="who acted; null: the engine")
    note: str | None
    details: dict[str, Any]


class SignalRead(BaseModel):
    id: uuid.UUID
    kind: str
    observed_at: datetime
    data: dict[str, Any]


class AlertDetail(AlertRead):
    timeline: list[TimelineEntry] = Field(description="oldest first")
    signals: list[SignalRead] = Field(description="the signals behind its reasons")
    may: list[AlertAction] = Field(description="what the caller may do with it now")


class AlertPage(BaseModel):
    items: list[AlertRead] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


def _read(context: AlertContext, silenced: bool) -> dict[str, Any]:
    alert = context.alert
    return {
        "id": alert.id,
        "kind": alert.kind,
        "department_id": alert.department_id,
        "department": context.department.code if context.department else None,
        "department_name": context.department.name if context.department else None,
        "provider_agb": context.provider_agb,
        "region": context.region_code,
        "care_type": alert.care_type_code,
        "cluster": context.cluster,
        "scope": context.scope,
        "level": alert.level,
        "status": alert.status,
        "escalation": alert.escalation,
        "no_alternative": alert.no_alternative,
        "silenced": silenced,
        "reasons": alert.reasons,
        "opened_at": alert.opened_at,
        "escalated_at": alert.escalated_at,
        "step_due_at": alert.step_due_at,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
        "resolution": alert.resolution,
        "ruleset_version": alert.ruleset_version,
    }


async def record_alert_audit(
    session: AsyncSession,
    request: Request,
    caller: Caller,
    action: str,
    alert_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit a read of or an action on an alert (`alert_id` None: a list, or no alert).

    Shared with the silences API and the dashboard, so every way in leaves the same trace."""
    await audit_call(
        session, request, caller, action, object_type="alert", object_id=alert_id, details=details
    )


def _encode_cursor(alert: Alert) -> str:
    raw = f"{alert.opened_at.isoformat()}|{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, "cursor: not a cursor this API gave out") from exc


Slug = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", max_length=64)]
Agb = Annotated[str, Query(pattern=r"^[0-9]{8}$")]


@router.get("", summary="Alerts the caller may see, newest first", responses=ERROR_RESPONSES)
async def list_alerts(
    request: Request,
    caller: CallerDep,
    region: Slug | None = None,
    care_type: Annotated[str | None, Query(pattern=r"^[a-z][a-z_]*\.[a-z0-9_]+$")] = None,
    cluster: Cluster | None = None,
    level: Level | None = None,
    status: AlertStatus | None = None,
    escalation: EscalationStep | None = None,
    kind: AlertKind | None = None,
    provider: Agb | None = None,
    open_only: Annotated[bool, Query(description="leave out resolved alerts")] = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """Filter by region, care type, cluster, level, status, step, kind or provider."""
    runtime = runtime_of(request)
    now = runtime.clock()
    async with sessions_of(request)() as session, session.begin():
        query = select(Alert).where(visible_alerts(caller))
        if region is not None:
            query = query.where(Alert.region_id.in_(select(Region.id).where(Region.code == region)))
        if care_type is not None:
            query = query.where(Alert.care_type_code == care_type)
        if cluster is not None:
            query = query.where(
                Alert.care_type_code.in_(select(CareType.code).where(CareType.cluster == cluster))
            )
        if level is not None:
            query = query.where(Alert.level == level)
        if status is not None:
            query = query.where(Alert.status == status)
        elif open_only:
            query = query.where(Alert.status != AlertStatus.RESOLVED)
        if escalation is not None:
            query = query.where(Alert.escalation == escalation)
        if kind is not None:
            query = query.where(Alert.kind == kind)
        if provider is not None:
            query = query.where(
                Alert.department_id.in_(
                    select(Department.id)
                    .join(Organisation, Organisation.id == Department.provider_id)
                    .where(Organisation.agb_code == provider)
                )
            )
        if cursor is not None:
            when, ident = _decode_cursor(cursor)
            query = query.where(
                or_(Alert.opened_at < when, and_(Alert.opened_at == when, Alert.id < ident))
            )
        query = query.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit + 1)
        rows = list((await session.execute(query)).scalars())
        silenced_ids = set(
            (
                await session.execute(
                    select(Alert.id).where(
                        Alert.id.in_([r.id for r in rows[:limit]]), silenced_now(now)
                    )
                )
            ).scalars()
        )
        items = [
            AlertRead.model_validate(_read(await context_of(session, row), row.id in silenced_ids))
            for row in rows[:limit]
        ]
        await record_alert_audit(
            session, request, caller, "alert.list", details={"count": len(items)}
        )
    return AlertPage(
        items=items, next_cursor=_encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    )


async def visible_alert_context(
    session: AsyncSession, caller: Caller, alert_id: uuid.UUID, *, lock: bool = False
) -> AlertContext:
    """The alert with its context, if the caller may see it: else `404` (none) or `403`.

    The dashboard calls it too, so a page and `/v1/alerts` agree on who sees an alert."""
    context = await load_context(session, alert_id, lock=lock)
    if context is None:
        raise HTTPException(404, f"No alert with id {alert_id}.")
    visible = await session.scalar(select(visible_alerts(caller)).where(Alert.id == alert_id))
    if not visible:
        raise HTTPException(403, "This alert is not one your organisation may see.")
    return context


def _may(request: Request, caller: Caller, context: AlertContext) -> list[str]:
    if context.alert.status is AlertStatus.RESOLVED:
        return []
    policy = runtime_of(request).policy()
    mine = audiences_of(caller, context)
    may: list[str] = []
    if mine & set(policy.step(context.alert.escalation).acknowledged_by) and (
        context.alert.status is AlertStatus.OPEN
    ):
        may.append("acknowledge")
    if mine:
        may.append("comment")
    if mine & set(policy.file.resolve_by):
        may.append("resolve")
    return may


async def alert_detail(
    session: AsyncSession, request: Request, caller: Caller, context: AlertContext
) -> AlertDetail:
    """The alert as `GET /v1/alerts/{id}` shows it, with what this caller `may` do now.

    The dashboard's alert page is built from it, so it offers exactly the actions the API allows."""
    alert = context.alert
    now = runtime_of(request).clock()
    timeline = (
        await session.execute(
            select(AlertEvent)
            .where(AlertEvent.alert_id == alert.id)
            .order_by(AlertEvent.at, AlertEvent.id)
        )
    ).scalars()
    signal_ids = {uuid.UUID(str(s)) for r in alert.reasons for s in r.get("signal_ids", [])}
    signals: list[Signal] = []
    if signal_ids:
        found = await session.execute(
            select(Signal).where(Signal.id.in_(signal_ids)).order_by(Signal.observed_at)
        )
        signals = list(found.scalars())
    silenced = bool(await session.scalar(select(silenced_now(now)).where(Alert.id == alert.id)))
    return AlertDetail.model_validate(
        _read(context, silenced)
        | {
            "timeline": [
                TimelineEntry(
                    type=e.type,
                    at=e.at,
                    level=e.level,
                    escalation=e.escalation,
                    organisation_id=e.actor_organisation_id,
                    note=e.note,
                    details=e.details,
                )
                for e in timeline
            ],
            "signals": [
                SignalRead(id=s.id, kind=s.kind.value, observed_at=s.observed_at, data=s.data)
                for s in signals
            ],
            "may": _may(request, caller, context),
        }
    )


@router.get(
    "/{alert_id}",
    summary="One alert with its reasons, timeline and signals",
    responses={**ERROR_RESPONSES, 404: {"description": "No such alert."}},
)
async def get_alert(request: Request, caller: CallerDep, alert_id: uuid.UUID) -> AlertDetail:
    async with sessions_of(request)() as session, session.begin():
        context = await visible_alert_context(session, caller, alert_id)
        await record_alert_audit(session, request, caller, "alert.read", alert_id)
        return await alert_detail(session, request, caller, context)


async def acting_user_name(session: AsyncSession, caller: Caller) -> str | None:
    """The name the timeline shows for the person acting; None for an API key."""
    if caller.user_id is None:
        return None
    user = await session.get(User, caller.user_id)
    return user.name or user.email if user else None


async def act_on_alert(
    request: Request,
    caller: Caller,
    alert_id: uuid.UUID,
    what: AlertAction,
    body: AcknowledgeBody | CommentBody | ResolveBody,
) -> AlertDetail:
    """Acknowledge, comment on or resolve an alert in a transaction of its own, as the policy
    allows; answers the alert as it is now.

    The one way to act on an alert: the dashboard's forms call it too, so both write the same
    timeline entry, audit row and event, and refuse the same callers."""
    runtime = runtime_of(request)
    policy, now = runtime.policy(), runtime.clock()

    async def work(session: AsyncSession) -> AlertDetail:
        context = await visible_alert_context(session, caller, alert_id, lock=True)
        alert = context.alert
        if alert.status is AlertStatus.RESOLVED:
            raise HTTPException(409, "This alert is resolved: nothing more can be done with it.")
        mine = audiences_of(caller, context)
        name = await acting_user_name(session, caller)
        if what == "acknowledge":
            allowed = set(policy.step(alert.escalation).acknowledged_by)
            if not mine & allowed:
                who = ", ".join(a.value for a in sorted(allowed))
                raise HTTPException(
                    403,
                    f"At the {alert.escalation.value} step only {who} may acknowledge this alert.",
                )
            if alert.status is AlertStatus.ACKNOWLEDGED:
                raise HTTPException(409, "This alert is already acknowledged at its step.")
            assert isinstance(body, AcknowledgeBody)
            event = actions.acknowledge(session, context, caller, name, body.note, now)
        elif what == "comment":
            if not mine:
                raise HTTPException(403, "Only the parties this alert concerns may comment on it.")
            assert isinstance(body, CommentBody)
            event = actions.comment(session, context, caller, name, body.note, now)
        else:
            allowed = set(policy.file.resolve_by)
            if not mine & allowed:
                who = ", ".join(a.value for a in sorted(allowed))
                raise HTTPException(403, f"Only {who} may resolve this alert.")
            assert isinstance(body, ResolveBody)
            event = actions.resolve(
                session, context, caller, name, ResolutionReason(body.reason), body.note, now
            )
        await record_alert_audit(session, request, caller, f"alert.{what}", alert_id)
        await session.flush()
        await record_events(session, [event])
        return await alert_detail(session, request, caller, context)

    # Run again whole when PostgreSQL picks it as a deadlock's victim (the rules and the
    # notifier write the same alerts): the caller gets an answer, not an error.
    return await in_transaction_retrying(sessions_of(request), work)


_ACTION_ERRORS = {
    **ERROR_RESPONSES,
    404: {"description": "No such alert."},
    409: {"description": "The alert is resolved, or already acknowledged."},
}


@router.post(
    "/{alert_id}/acknowledge",
    summary="Take the alert on at its step: its timer stops",
    responses=_ACTION_ERRORS,
)
async def acknowledge_alert(
    request: Request, caller: CallerDep, alert_id: uuid.UUID, body: AcknowledgeBody
) -> AlertDetail:
    return await act_on_alert(request, caller, alert_id, "acknowledge", body)


@router.post(
    "/{alert_id}/comment", summary="Write on the alert's timeline", responses=_ACTION_ERRORS
)
async def comment_alert(
    request: Request, caller: CallerDep, alert_id: uuid.UUID, body: CommentBody
) -> AlertDetail:
    return await act_on_alert(request, caller, alert_id, "comment", body)


@router.post("/{alert_id}/resolve", summary="Close the alert by hand", responses=_ACTION_ERRORS)
async def resolve_alert(
    request: Request, caller: CallerDep, alert_id: uuid.UUID, body: ResolveBody
) -> AlertDetail:
    return await act_on_alert(request, caller, alert_id, "resolve", body)


_NZA_TEMPLATE = jinja2.Environment(
    loader=jinja2.PackageLoader("services.notify", "templates"),
    autoescape=True,
).get_template("nza_notification.html")


@router.get(
    "/{alert_id}/nza-notification",
    summary="A draft of the NZa notification for this alert (JSON, or printable HTML)",
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"application/json": {}, "text/html": {}}},
        404: {"description": "No such alert."},
    },
    response_model=NzaNotification,
)
async def nza_notification(
    request: Request,
    caller: CallerDep,
    alert_id: uuid.UUID,
    format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json",
) -> Any:
    """Filled from the alert, the department's signals and the coverage near by; the fields the
    coordinating insurer must add are marked. Only the coordinating insurer and the tables."""
    runtime = runtime_of(request)
    now = runtime.clock()
    async with sessions_of(request)() as session, session.begin():
        context = await visible_alert_context(session, caller, alert_id)
        allowed = {Audience.COORDINATING_INSURER, Audience.REGIONAL_TABLE, Audience.NATIONAL_TABLE}
        if not audiences_of(caller, context) & allowed:
            raise HTTPException(
                403, "Only the coordinating insurer and the tables may draft the NZa notification."
            )
        notification = await draft(session, context, now)
        await record_alert_audit(session, request, caller, "alert.nza_notification", alert_id)
    if format == "html":
        page = _NZA_TEMPLATE.render(
            n=notification,
            care=notification.fields["care"].value,
            made=now.astimezone(runtime.zone).strftime("%d-%m-%Y %H:%M"),
            levels=LEVEL_NL,
        )
        return HTMLResponse(page)
    return notification

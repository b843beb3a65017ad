"""The department page: what it is, its current assessment, every signal series as a chart, the
events it reported, its assessment history and its alerts. Scoped like `/v1/departments/{id}`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.core.access import may_read_signals, visible_departments
from services.core.db.models import Assessment, CareType, Department, Organisation, Region, Signal
from services.core.domain import SignalKind
from services.notify.dashboard import graphs, queries
from services.notify.dashboard.alerts import parse_uuid
from services.notify.dashboard.figures import SERIES_GROUPS, event_facts
from services.notify.dashboard.web import Page, PageError, open_page
from services.notify.runtime import runtime_of
from services.rules.loading import norms_on

router = APIRouter(include_in_schema=False)
HISTORY_PAGE = 20
SERIES_DAYS = 365
EVENT_KINDS = (SignalKind.ADMISSION_STOP, SignalKind.CLOSURE, SignalKind.CONTRACT)


async def _department(page: Page, department_id: uuid.UUID) -> Any:
    """The department with its provider, region and care type; 404 or 403 as the API says."""
    row = (
        await page.session.execute(
            select(Department, Organisation, Region, CareType, visible_departments(page.caller))
            .join(Organisation, Organisation.id == Department.provider_id)
            .join(Region, Region.id == Department.region_id)
            .join(CareType, CareType.code == Department.care_type_code)
            .where(Department.id == department_id)
        )
    ).one_or_none()
    if row is None:
        raise PageError(404, "not_found")
    if not row[-1]:
        raise PageError(403, "forbidden")
    return row


def _before(request: Request) -> datetime | None:
    raw = request.query_params.get("before")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise PageError(400, "bad_request") from exc
    if when.tzinfo is None:
        raise PageError(400, "bad_request")
    return when


async def _reports(page: Page, department_id: uuid.UUID) -> dict[SignalKind, Any]:
    since = datetime.now(UTC) - timedelta(days=SERIES_DAYS)
    kinds = [SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.CAPACITY]
    return await queries.department_reports(page.session, department_id, kinds, since=since)


@router.get("/departments/{department_id}")
async def department_page(request: Request, department_id: str) -> Response:
    ident = parse_uuid(department_id)
    before = _before(request)
    now = runtime_of(request).clock()
    async with open_page(request) as page:
        department, provider, region, care_type, _ = await _department(page, ident)
        history_query = select(Assessment).where(Assessment.department_id == ident)
        if before is not None:
            history_query = history_query.where(Assessment.assessed_at < before)
        history = list(
            await page.session.scalars(
                history_query.order_by(Assessment.assessed_at.desc(), Assessment.id.desc()).limit(
                    HISTORY_PAGE + 1
                )
            )
        )
        current = None
        if before is None and history:
            current = history[0]
        elif before is not None:
            current = await page.session.scalar(
                select(Assessment)
                .where(Assessment.department_id == ident)
                .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                .limit(1)
            )
        signals_allowed = may_read_signals(page.caller)
        charts: list[dict[str, Any]] = []
        events: list[Signal] = []
        if signals_allowed:
            reports = await _reports(page, ident)
            for index, (kind, unit, fields) in enumerate(SERIES_GROUPS):
                drawn = graphs.group_chart(kind, unit, fields, reports.get(kind, []), page.words)
                if drawn is not None:
                    charts.append({"index": index, "title": drawn[0].title, "alt": drawn[1]})
            events = list(
                await page.session.scalars(
                    select(Signal)
                    .where(Signal.department_id == ident, Signal.kind.in_(EVENT_KINDS))
                    .order_by(Signal.observed_at.desc())
                    .limit(20)
                )
            )
            await page.audit("signal.list", "department", ident, details={"charts": len(charts)})
        alerts = await queries.alert_rows(
            page.session, page.caller, queries.department_alerts_clause(ident), now=now, limit=20
        )
        await page.audit("assessment.history.read", "department", ident)
        await page.audit("alert.list", "alert", details={"department": str(ident)})
        return page.render(
            "department.html",
            department=department,
            provider=provider,
            region=region,
            care_type=care_type,
            current=current,
            history=history[:HISTORY_PAGE],
            older=history[HISTORY_PAGE - 1].assessed_at.isoformat()
            if len(history) > HISTORY_PAGE
            else None,
            signals_allowed=signals_allowed,
            charts=charts,
            events=[(signal, event_facts(signal.kind, signal.data)) for signal in events],
            alerts=alerts,
            live_since=await queries.latest_change_id(page.session),
        )


@router.get("/departments/{department_id}/charts/{index}.svg")
async def department_chart(request: Request, department_id: str, index: str) -> Response:
    ident = parse_uuid(department_id)
    if not index.isdigit() or int(index) >= len(SERIES_GROUPS):
        raise PageError(404, "not_found")
    kind, unit, fields = SERIES_GROUPS[int(index)]
    async with open_page(request) as page:
        care_type = (await _department(page, ident))[3]
        if not may_read_signals(page.caller):
            raise PageError(403, "forbidden")
        reports = await _reports(page, ident)
        norms = None
        if kind is SignalKind.WAITLIST and care_type.waiting_norms_apply:
            norms = await norms_on(page.session, datetime.now(UTC).date())
        drawn = graphs.group_chart(kind, unit, fields, reports.get(kind, []), page.words, norms)
        if drawn is None:
            raise PageError(404, "not_found")
        await page.audit("signal.chart.read", "department", ident, details={"series": index})
        words = page.words
    return await graphs.svg_response(page.settings, drawn[0], words)

"""The alert list and the alert page, with acknowledge / comment / resolve.

The alert page and the actions go through the alert API's own functions
(`visible_alert_context`, `alert_detail` with its `may`, `act_on_alert`), so the dashboard and
`/v1/alerts` cannot disagree about who sees an alert, who may act on it, what is written to its
timeline, the audit log and the bus.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from services.core.db.models import CareType, Organisation
from services.core.domain import AlertStatus, Cluster, EscalationStep, Level
from services.core.http.state import sessions_of
from services.notify import api
from services.notify.dashboard import graphs, queries
from services.notify.dashboard.figures import measure_of
from services.notify.dashboard.web import (
    LoginRequired,
    Page,
    PageError,
    flash,
    load_viewer,
    open_page,
    read_form,
    redirect,
    words_of,
)
from services.notify.parties import AlertContext
from services.notify.runtime import runtime_of

router = APIRouter(include_in_schema=False)
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CARE_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z0-9_]+$")
CHART_DAYS = 365


def parse_uuid(value: str) -> uuid.UUID:
    """A path id; anything else is a page that does not exist (never a 500, never a 422 JSON)."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise PageError(404, "not_found") from exc


def _enum(raw: str | None, kind: type[Any], name: str, bad: list[str]) -> Any:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        bad.append(name)
        return None


def parse_filters(request: Request) -> tuple[queries.AlertFilters, dict[str, Any], list[str]]:
    """The list's filters, sort and page from the query string; what was unknown is named."""
    params = request.query_params
    bad: list[str] = []

    def text(name: str, pattern: re.Pattern[str], max_length: int = 64) -> str | None:
        value = params.get(name, "").strip()
        if not value:
            return None
        if len(value) > max_length or not pattern.match(value):
            bad.append(name)
            return None
        return value

    provider = params.get("provider", "").strip()[:100] or None
    if provider is not None and any(ord(c) < 32 for c in provider):
        bad.append("provider")
        provider = None
    cluster = _enum(params.get("cluster"), Cluster, "cluster", bad)
    filters = queries.AlertFilters(
        region=text("region", SLUG),
        cluster=cluster.value if cluster else None,
        care_type=text("care_type", CARE_TYPE),
        level=_enum(params.get("level"), Level, "level", bad),
        status=_enum(params.get("status"), AlertStatus, "status", bad),
        escalation=_enum(params.get("escalation"), EscalationStep, "escalation", bad),
        provider=provider,
        open_only=params.get("open") == "1",
    )
    sort = params.get("sort", "opened")
    if sort not in queries.SORTS:
        bad.append("sort")
        sort = "opened"
    direction = params.get("dir", "desc")
    if direction not in ("asc", "desc"):
        bad.append("dir")
        direction = "desc"
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        bad.append("page")
        number = 1
    view = {"sort": sort, "dir": direction, "page": min(max(number, 1), 100_000)}
    return filters, view, bad


def _query_string(filters: queries.AlertFilters, view: dict[str, Any], **changes: Any) -> str:
    values: dict[str, Any] = {
        "region": filters.region,
        "cluster": filters.cluster,
        "care_type": filters.care_type,
        "level": filters.level.value if filters.level else None,
        "status": filters.status.value if filters.status else None,
        "escalation": filters.escalation.value if filters.escalation else None,
        "provider": filters.provider,
        "open": "1" if filters.open_only else None,
        **view,
        **changes,
    }
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@router.get("/alerts")
async def alert_list(request: Request) -> Response:
    filters, view, bad = parse_filters(request)
    now = runtime_of(request).clock()
    async with open_page(request) as page:
        size = page.settings.page_size
        rows, total = await queries.list_alerts(
            page.session,
            page.caller,
            filters,
            sort=view["sort"],
            descending=view["dir"] == "desc",
            offset=(view["page"] - 1) * size,
            limit=size,
            now=now,
        )
        await page.audit(
            "alert.list",
            "alert",
            details={"count": len(rows), "total": total, "filters": _query_string(filters, {})},
        )
        pages = max(1, math.ceil(total / size))
        return page.render(
            "alerts.html",
            rows=rows,
            total=total,
            filters=filters,
            view=view,
            pages=pages,
            bad=bad,
            regions=await queries.visible_regions(page.session, page.caller),
            care_types=await queries.care_types(page.session),
            clusters=[c.value for c in Cluster],
            levels=[lvl.value for lvl in Level if lvl is not Level.OK],
            statuses=[s.value for s in AlertStatus],
            steps=[s.value for s in EscalationStep],
            link=lambda **changes: "/alerts?" + _query_string(filters, view, **changes),
            live_since=await queries.latest_change_id(page.session),
        )


async def _visible(page: Page, alert_id: uuid.UUID) -> AlertContext:
    try:
        return await api.visible_alert_context(page.session, page.caller, alert_id)
    except HTTPException as exc:
        raise PageError(
            exc.status_code, "forbidden" if exc.status_code == 403 else "not_found"
        ) from exc


async def _reports(page: Page, context: AlertContext, reasons: list[dict[str, Any]]) -> Any:
    """The department's reports of the kinds its reasons are about, over the last year."""
    if context.department is None:
        return {}
    kinds = []
    for reason in reasons:
        rule = page.settings.rule(str(reason.get("rule_id", "")))
        measure = measure_of(reason, rule)
        if measure is not None:
            kinds.append(measure.kind)
    since = datetime.now(UTC) - timedelta(days=CHART_DAYS)
    return await queries.department_reports(page.session, context.department.id, kinds, since=since)


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str) -> Response:
    ident = parse_uuid(alert_id)
    async with open_page(request) as page:
        context = await _visible(page, ident)
        await api.record_alert_audit(page.session, request, page.caller, "alert.read", ident)
        detail = await api.alert_detail(page.session, request, page.caller, context)
        actors = {e.organisation_id for e in detail.timeline if e.organisation_id}
        names: dict[uuid.UUID, str] = {}
        if actors:
            rows = await page.session.execute(
                select(Organisation.id, Organisation.name).where(Organisation.id.in_(actors))
            )
            names = {row[0]: row[1] for row in rows}
        reasons = [reason.model_dump(mode="json") for reason in detail.reasons]
        reports = await _reports(page, context, reasons)
        reason_views = []
        for index, reason in enumerate(reasons):
            rule = page.settings.rule(reason["rule_id"])
            chart = graphs.reason_chart(reason, rule, reports)
            reason_views.append(
                {
                    "index": index,
                    "reason": reason,
                    "chart": chart,
                    "alt": chart.description(page.words) if chart else None,
                    "forecast": rule is not None and rule.kind == "forecast",
                }
            )
        care_type = await page.session.get(CareType, detail.care_type)
        care_type_name = (
            (care_type.name_en if page.words.lang == "en" else care_type.name_nl)
            if care_type
            else detail.care_type
        )
        return page.render(
            "alert.html",
            alert=detail,
            care_type_name=care_type_name,
            context=context,
            reasons=reason_views,
            actors=names,
            live_since=await queries.latest_change_id(page.session),
        )


@router.get("/alerts/{alert_id}/charts/{index}.svg")
async def alert_chart(request: Request, alert_id: str, index: str) -> Response:
    ident = parse_uuid(alert_id)
    if not index.isdigit() or int(index) > 100:
        raise PageError(404, "not_found")
    async with open_page(request) as page:
        context = await _visible(page, ident)
        reasons = list(context.alert.reasons)
        if int(index) >= len(reasons):
            raise PageError(404, "not_found")
        reason = reasons[int(index)]
        rule = page.settings.rule(str(reason.get("rule_id", "")))
        reports = await _reports(page, context, [reason])
        chart = graphs.reason_chart(reason, rule, reports)
        if chart is None:
            raise PageError(404, "not_found")
        await page.audit("alert.chart.read", "alert", ident, details={"reason": index})
        words = page.words
    return await graphs.svg_response(page.settings, chart.spec(words), words)


def _note_problem(exc: ValidationError, lang: str) -> str:
    messages = " ".join(str(error.get("msg", "")) for error in exc.errors())
    if "BSN" in messages:
        return (
            "Een toelichting mag geen burgerservicenummer (BSN) of ander persoonsgegeven bevatten."
            if lang == "nl"
            else "A note must not hold a citizen service number (BSN) or other personal data."
        )
    if "at most" in messages:
        return (
            "De toelichting is te lang (ten hoogste 2.000 tekens)."
            if lang == "nl"
            else "The note is too long (2,000 characters at most)."
        )
    if "control characters" in messages:
        return (
            "De toelichting bevat tekens die niet zijn toegestaan."
            if lang == "nl"
            else "The note holds characters that are not allowed."
        )
    return "Vul een toelichting in." if lang == "nl" else "Please write a note."


def _body(what: api.AlertAction, form: dict[str, str]) -> Any:
    note = form.get("note", "").strip() or None
    if what == "acknowledge":
        return api.AcknowledgeBody(note=note)
    if what == "comment":
        return api.CommentBody.model_validate({"note": note})
    return api.ResolveBody.model_validate({"reason": form.get("reason", "manual"), "note": note})


async def _act(request: Request, alert_id: str, what: api.AlertAction) -> Response:
    ident = parse_uuid(alert_id)
    form = await read_form(request)
    words = words_of(request)
    async with sessions_of(request)() as session:
        viewer = await load_viewer(session, request)
    if viewer is None:
        raise LoginRequired(f"/alerts/{ident}")
    _, _, caller = viewer
    back = f"/alerts/{ident}"
    try:
        body = _body(what, form)
    except ValidationError as exc:
        flash(request, "error", words("invalid_note", detail=_note_problem(exc, words.lang)))
        return redirect(back + "#actions")
    try:
        await api.act_on_alert(request, caller, ident, what, body)
    except HTTPException as exc:
        if exc.status_code in (403, 404):
            raise PageError(
                exc.status_code, "forbidden" if exc.status_code == 403 else "not_found"
            ) from exc
        flash(request, "error", words("refused", detail=_refusal(exc.status_code, words.lang)))
        return redirect(back + "#actions")
    flash(request, "ok", words(f"done.{what}"))
    return redirect(back + "#timeline")


def _refusal(status: int, lang: str) -> str:
    if status == 409:
        return (
            "de melding is al afgesloten, of al in behandeling genomen."
            if lang == "nl"
            else "the alert is already resolved, or already acknowledged."
        )
    return "probeer het opnieuw." if lang == "nl" else "please try again."


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str) -> Response:
    return await _act(request, alert_id, "acknowledge")


@router.post("/alerts/{alert_id}/comment")
async def comment(request: Request, alert_id: str) -> Response:
    return await _act(request, alert_id, "comment")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(request: Request, alert_id: str) -> Response:
    return await _act(request, alert_id, "resolve")

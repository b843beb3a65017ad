"""New and changed alerts without a reload: Server-Sent Events at `/events`.

Each open page holds one stream. The stream looks for timeline entries (`alert_events`) newer
than the last one it sent, through the same scoped query as the list of newest changes, about
once a second: one indexed range read on the primary key per viewer, cheaper than a LISTEN
connection per viewer and independent of which bus carries the events. Every batch it sends is
written to the audit log like any other view of alert data.

A response lasts `stream_seconds` and then ends; the browser's EventSource reconnects by itself
and says where it was (`Last-Event-ID`), so nothing is lost. Short-lived responses keep a server
from waiting on open streams when it shuts down, and re-check the session on every reconnect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.core.audit import record_audit
from services.core.http.state import sessions_of
from services.notify.dashboard import queries
from services.notify.dashboard.i18n import Words
from services.notify.dashboard.settings import dashboard_of
from services.notify.dashboard.web import load_viewer, words_of
from services.notify.runtime import runtime_of

router = APIRouter(include_in_schema=False)
HEARTBEAT_SECONDS = 15.0
BATCH = 20


def _start(request: Request) -> int | None:
    for raw in (request.headers.get("last-event-id"), request.query_params.get("since")):
        if raw and raw.isdigit() and len(raw) < 19:
            return int(raw)
    return None


def _message(change: queries.Change, words: Words) -> str:
    alert = change.alert
    if alert.department_code:
        subject = f"{alert.department_name or alert.department_code}"
        if alert.provider_name:
            subject += f" ({alert.provider_name})"
    else:
        subject = (
            f"{words('coverage_alert')}: {words.care_type(alert.care_type_names, alert.care_type)}"
        )
    if alert.region_name:
        subject += f", {alert.region_name}"
    data = {
        "alert": str(alert.id),
        "url": f"/alerts/{alert.id}",
        "type": change.type,
        "level": change.level,
        "text": f"{words.timeline(change.type)}: {subject} — {words.level(change.level)}",
        "icon": words.level_icon(change.level),
        "at": words.datetime(change.at),
    }
    return f"id: {change.event_id}\nevent: alert\ndata: {json.dumps(data)}\n\n"


@router.get("/events")
async def events(request: Request) -> Response:
    settings = dashboard_of(request)
    sessions = sessions_of(request)
    async with sessions() as session:
        viewer = await load_viewer(session, request)
        start = _start(request)
        if start is None:
            start = await queries.latest_change_id(session)
    if viewer is None:
        # EventSource cannot follow a login redirect; 204 tells it to stop reconnecting.
        return Response(status_code=204)
    _, _, caller = viewer
    words = words_of(request)
    clock = runtime_of(request).clock
    client = request.client.host if request.client else None

    async def stream() -> AsyncIterator[str]:
        last = start
        loop = asyncio.get_running_loop()
        ends = loop.time() + settings.stream_seconds
        quiet_since = loop.time()
        passed = last  # the newest entry of any alert one poll ago (see below)
        yield f"retry: 1000\nid: {last}\n\n"
        while loop.time() < ends:
            if await request.is_disconnected():
                return
            async with sessions() as session, session.begin():
                found = await queries.changes(session, caller, after=last, limit=BATCH, now=clock())
                newest = await queries.latest_change_id(session)
                if found:
                    await record_audit(
                        session,
                        action="alert.stream",
                        object_type="alert",
                        object_id=None,
                        channel=caller.channel,
                        organisation_id=caller.organisation_id,
                        user_id=caller.user_id,
                        client_address=client,
                        details={"alerts": sorted({str(c.alert.id) for c in found})},
                    )
            for change in found:
                last = change.event_id
                yield _message(change, words)
            if found:
                quiet_since = loop.time()
            elif passed > last:
                # Nothing of ours: skip past other organisations' entries, so the next poll does
                # not read them again. Only up to what was newest one poll ago: an entry with a
                # lower id may still be committing now, but not a second later.
                last = passed
                yield f"id: {last}\n\n"
            elif loop.time() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = loop.time()
                yield ": still here\n\n"
            passed = newest
            if len(found) < BATCH:
                await asyncio.sleep(settings.poll_seconds)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""For an organisation's own admins (`users.is_org_admin`): its webhook endpoints and the
delivery log, with a button to send a failed delivery again. The same use cases as
`/v1/subscriptions` and `/v1/deliveries` (services/notify/deliveries/manage.py), the same audit
entries; only ever the viewer's own organisation."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.core.db.models import Delivery, DeliveryAttempt, WebhookSubscription
from services.core.domain import DeliveryStatus
from services.core.errors import Conflict, NotFound
from services.notify.dashboard.alerts import parse_uuid
from services.notify.dashboard.web import Page, PageError, flash, open_page, read_form, redirect
from services.notify.deliveries import manage

router = APIRouter(include_in_schema=False)
LOG_SIZE = 50


def _admin(page: Page) -> None:
    if not page.is_org_admin:
        raise PageError(403, "forbidden")


@router.get("/settings/webhooks")
async def webhooks_page(request: Request) -> Response:
    status_filter = request.query_params.get("status")
    try:
        status = DeliveryStatus(status_filter) if status_filter else None
    except ValueError:
        status = None
    async with open_page(request) as page:
        _admin(page)
        organisation_id = page.caller.organisation_id
        subscriptions = list(
            await page.session.scalars(
                select(WebhookSubscription)
                .where(
                    WebhookSubscription.organisation_id == organisation_id,
                    WebhookSubscription.deleted_at.is_(None),
                )
                .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
            )
        )
        query = select(Delivery).where(Delivery.organisation_id == organisation_id)
        if status is not None:
            query = query.where(Delivery.status == status)
        deliveries = list(
            await page.session.scalars(query.order_by(Delivery.seq.desc()).limit(LOG_SIZE))
        )
        attempts: dict[object, int] = defaultdict(int)
        last_code: dict[object, int | None] = {}
        if deliveries:
            rows = await page.session.execute(
                select(DeliveryAttempt.delivery_id, DeliveryAttempt.status_code)
                .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
                .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
            )
            for delivery_id, code in rows:
                attempts[delivery_id] += 1
                last_code[delivery_id] = code
        urls = {s.id: s.url for s in subscriptions}
        await page.audit(
            "delivery.list.read",
            "delivery",
            details={"status": status.value if status else None, "count": len(deliveries)},
        )
        return page.render(
            "webhooks.html",
            subscriptions=subscriptions,
            deliveries=deliveries,
            last_code=last_code,
            urls=urls,
            chosen=status.value if status else "",
            statuses=[s.value for s in DeliveryStatus],
        )


@router.post("/settings/deliveries/{delivery_id}/retry")
async def retry(request: Request, delivery_id: str) -> Response:
    ident = parse_uuid(delivery_id)
    await read_form(request)
    async with open_page(request) as page:
        _admin(page)
        try:
            row = await manage.own_delivery(
                page.session, organisation_id=page.caller.organisation_id, delivery_id=ident
            )
            await manage.retry_delivery(page.session, delivery=row)
        except NotFound as exc:
            raise PageError(404, "not_found") from exc
        except Conflict as exc:
            flash(request, "error", page.words("refused", detail=str(exc)))
            return redirect("/settings/webhooks")
        await page.audit("delivery.retried", "delivery", ident)
        flash(request, "ok", page.words("retried"))
    return redirect("/settings/webhooks")

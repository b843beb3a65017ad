"""`/v1/subscriptions` and `/v1/deliveries`: an organisation's webhook endpoints and its
delivery log, always scoped to the caller's own organisation.

Another organisation's endpoint or delivery answers 404, exactly like one that does not exist, so
ids cannot be probed. Deliveries carry alert data: every read of them is in the audit log, as is
every change. The SSRF check resolves the URL's host before any transaction opens (no network
call inside a transaction).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
from services.core.audit import audit_call
from services.core.db.models import Delivery, DeliveryAttempt, WebhookSubscription
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.notify.deliveries import manage
from services.notify.deliveries.schemas import (
    BulkRetried,
    BulkRetry,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionRead,
    TestQueued,
)
from services.notify.deliveries.secrets import SecretBox, SecretKeyProblem, secret_box
from services.notify.deliveries.ssrf import Resolver, UnsafeUrl, resolve_target, system_resolver


def _problem(description: str) -> dict[str, Any]:
    return {"description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("No API key, or an unknown or revoked one."),
    404: _problem("No such endpoint or delivery in your organisation."),
    422: _problem("The request is not valid; see `errors`."),
}

subscriptions = APIRouter(prefix="/v1/subscriptions", tags=["webhooks"])
deliveries = APIRouter(prefix="/v1/deliveries", tags=["webhooks"])


def _box(request: Request) -> SecretBox:
    """The app's secret box, made on first use; 503 when no key may be used (production)."""
    box: SecretBox | None = getattr(request.app.state, "secret_box", None)
    if box is None:
        try:
            box = secret_box(request.app.state.settings)
        except SecretKeyProblem as exc:
            raise HTTPException(503, f"Webhooks cannot be registered now: {exc}.") from exc
        request.app.state.secret_box = box
    return box


def _resolver(request: Request) -> Resolver:
    resolver: Resolver = getattr(request.app.state, "webhook_resolver", system_resolver)
    return resolver


async def _own_subscription(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The caller's own endpoint; NotFound (404) for another organisation's, as for none."""
    return await manage.own_subscription(
        session, organisation_id=caller.organisation_id, subscription_id=subscription_id
    )


async def _audit_subscription(
    session: AsyncSession,
    request: Request,
    caller: Caller,
    action: str,
    subscription: WebhookSubscription,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit what the caller did to one of its endpoints."""
    await audit_call(
        session,
        request,
        caller,
        action,
        object_type="webhook_subscription",
        object_id=subscription.id,
        details=details,
    )


@subscriptions.post(
    "",
    status_code=201,
    summary="Register a webhook endpoint (the signing secret is shown once)",
    responses={**ERRORS, 409: _problem("Too many endpoints already.")},
)
async def create_subscription(
    request: Request, caller: CallerDep, body: SubscriptionCreate
) -> SubscriptionCreated:
    """The URL must be https and resolve to public addresses only (unless the operator allows
    private ones); each delivery is signed per Standard Webhooks with the secret returned here."""
    settings = request.app.state.settings
    try:
        await resolve_target(
            body.url, allow_private=settings.webhook_allow_private, resolver=_resolver(request)
        )
    except UnsafeUrl as exc:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    box = _box(request)
    async with sessions_of(request)() as session, session.begin():
        subscription, secret = await manage.create_subscription(
            session,
            organisation_id=caller.organisation_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            box=box,
        )
        await _audit_subscription(
            session,
            request,
            caller,
            "subscription.created",
            subscription,
            {"url": body.url, "event_types": body.event_types},
        )
    return SubscriptionCreated(**SubscriptionRead.of(subscription).model_dump(), secret=secret)


@subscriptions.get("", summary="Your organisation's webhook endpoints", responses=ERRORS)
async def list_subscriptions(request: Request, caller: CallerDep) -> SubscriptionList:
    async with sessions_of(request)() as session:
        rows = (
            await session.scalars(
                select(WebhookSubscription)
                .where(
                    WebhookSubscription.organisation_id == caller.organisation_id,
                    WebhookSubscription.deleted_at.is_(None),
                )
                .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
            )
        ).all()
    return SubscriptionList(items=[SubscriptionRead.of(row) for row in rows])


@subscriptions.get("/{subscription_id}", summary="One webhook endpoint", responses=ERRORS)
async def get_subscription(
    request: Request, caller: CallerDep, subscription_id: uuid.UUID
) -> SubscriptionRead:
    async with sessions_of(request)() as session:
        row = await _own_subscription(session, caller, subscription_id)
    return SubscriptionRead.of(row)


@subscriptions.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Delete a webhook endpoint (its pending deliveries fail; the log stays)",
    responses=ERRORS,
)
async def delete_subscription(
    request: Request, caller: CallerDep, subscription_id: uuid.UUID
) -> Response:
    async with sessions_of(request)() as session, session.begin():
        row = await _own_subscription(session, caller, subscription_id)
        failed = await manage.delete_subscription(session, subscription=row, now=datetime.now(UTC))
        await _audit_subscription(
            session, request, caller, "subscription.deleted", row, {"pending_failed": failed}
        )
    return Response(status_code=204)


@subscriptions.post(
    "/{subscription_id}/enable",
    summary="Switch a disabled webhook endpoint back on",
    responses=ERRORS,
)
async def enable_subscription(
    request: Request, caller: CallerDep, subscription_id: uuid.UUID
) -> SubscriptionRead:
    """After an endpoint was disabled for failing too long; then retry what failed meanwhile
    (`POST /v1/deliveries/retry`)."""
    async with sessions_of(request)() as session, session.begin():
        row = await _own_subscription(session, caller, subscription_id)
        await manage.enable_subscription(session, subscription=row)
        await _audit_subscription(session, request, caller, "subscription.enabled", row)
    return SubscriptionRead.of(row)


@subscriptions.post(
    "/{subscription_id}/test",
    status_code=202,
    summary="Send a signed test event to the endpoint",
    responses={**ERRORS, 409: _problem("The endpoint is disabled.")},
)
async def test_subscription(
    request: Request, caller: CallerDep, subscription_id: uuid.UUID
) -> TestQueued:
    """A `webhook.test` event, queued and delivered like any other (retries, log)."""
    async with sessions_of(request)() as session, session.begin():
        row = await _own_subscription(session, caller, subscription_id)
        delivery = await manage.send_test(session, subscription=row, now=datetime.now(UTC))
        await _audit_subscription(
            session, request, caller, "subscription.tested", row, {"delivery_id": str(delivery.id)}
        )
    return TestQueued(delivery_id=delivery.id)


async def _attempts(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[DeliveryAttempt]]:
    by_delivery: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
    if ids:
        for attempt in await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(ids))
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        ):
            by_delivery[attempt.delivery_id].append(attempt)
    return by_delivery


@deliveries.get("", summary="Your organisation's delivery log, newest first", responses=ERRORS)
async def list_deliveries(
    request: Request,
    caller: CallerDep,
    status: DeliveryStatus | None = None,
    subscription: uuid.UUID | None = None,
    channel: DeliveryChannel | None = None,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    """Webhooks and e-mails, each with every attempt's status code, duration and error."""
    query = select(Delivery).where(Delivery.organisation_id == caller.organisation_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if subscription is not None:
        query = query.where(Delivery.subscription_id == subscription)
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    if cursor is not None:
        query = query.where(Delivery.seq < int(cursor))
    async with sessions_of(request)() as session, session.begin():
        rows = list((await session.scalars(query.order_by(Delivery.seq.desc()).limit(limit))).all())
        attempts = await _attempts(session, [row.id for row in rows])
        await audit_call(
            session,
            request,
            caller,
            "delivery.list.read",
            object_type="delivery",
            details={
                "status": status.value if status else None,
                "subscription": str(subscription) if subscription else None,
                "count": len(rows),
            },
        )
    return DeliveryPage(
        items=[DeliveryRead.of(row, attempts[row.id]) for row in rows],
        next_cursor=str(rows[-1].seq) if len(rows) == limit else None,
    )


@deliveries.get("/{delivery_id}", summary="One delivery, with its payload", responses=ERRORS)
async def get_delivery(
    request: Request, caller: CallerDep, delivery_id: uuid.UUID
) -> DeliveryDetail:
    async with sessions_of(request)() as session, session.begin():
        row = await manage.own_delivery(
            session, organisation_id=caller.organisation_id, delivery_id=delivery_id
        )
        attempts = await _attempts(session, [row.id])
        await audit_call(
            session, request, caller, "delivery.read", object_type="delivery", object_id=row.id
        )
    return DeliveryDetail.detail(row, attempts[row.id])


@deliveries.post(
    "/retry",
    status_code=202,
    summary="Retry failed deliveries in bulk: of one endpoint, since a moment, or both",
    responses=ERRORS,
)
async def retry_many(request: Request, caller: CallerDep, body: BulkRetry) -> BulkRetried:
    """Failed deliveries to disabled or deleted endpoints stay failed (enable the endpoint
    first)."""
    if body.subscription is None and body.since is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("body",),
                    "msg": "give `subscription`, `since` or both: retrying everything is too"
                    " broad for one call",
                    "type": "value_error",
                }
            ]
        )
    async with sessions_of(request)() as session, session.begin():
        if body.subscription is not None:
            await _own_subscription(session, caller, body.subscription)
        retried = await manage.retry_failed(
            session,
            organisation_id=caller.organisation_id,
            subscription_id=body.subscription,
            since=body.since,
        )
        await audit_call(
            session,
            request,
            caller,
            "delivery.bulk_retried",
            object_type="delivery",
            details={
                "subscription": str(body.subscription) if body.subscription else None,
                "since": body.since.isoformat() if body.since else None,
                "retried": retried,
            },
        )
    return BulkRetried(retried=retried)


@deliveries.post(
    "/{delivery_id}/retry",
    status_code=202,
    summary="Send a failed delivery again, its attempts starting over",
    responses={**ERRORS, 409: _problem("Not failed, or its endpoint is disabled or deleted.")},
)
async def retry_one(request: Request, caller: CallerDep, delivery_id: uuid.UUID) -> DeliveryRead:
    async with sessions_of(request)() as session, session.begin():
        row = await manage.own_delivery(
            session, organisation_id=caller.organisation_id, delivery_id=delivery_id
        )
        row = await manage.retry_delivery(session, delivery=row)
        attempts = await _attempts(session, [row.id])
        await audit_call(
            session, request, caller, "delivery.retried", object_type="delivery", object_id=row.id
        )
    return DeliveryRead.of(row, attempts[row.id])

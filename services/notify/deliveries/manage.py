"""Use cases behind `/v1/subscriptions` and `/v1/deliveries`: register, delete, enable, test,
retry. Each takes the session first and never commits (the request handler does)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.admin.credentials import new_webhook_secret
from services.core.db.models import Delivery, WebhookSubscription
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.core.errors import Conflict, NotFound
from services.core.events.types import TOPIC_OF, Topic
from services.notify.deliveries.enqueue import short_type, wake_workers, webhook_body
from services.notify.deliveries.queue import fail_pending
from services.notify.deliveries.secrets import SecretBox

SUBSCRIBABLE: tuple[str, ...] = tuple(
    sorted(short_type(kind) for kind, topic in TOPIC_OF.items() if topic is Topic.ALERTS)
)
"""The event types an endpoint may ask for: those of the alerts topic (alerts, coverage, digest)."""

TEST_EVENT_TYPE = "webhook.test"
MAX_SUBSCRIPTIONS = 20  # per organisation: more is a mistake or abuse, not a use


async def own_subscription(
    session: AsyncSession, *, organisation_id: uuid.UUID, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The organisation's endpoint; NotFound also for another organisation's (never say which)."""
    subscription = await session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.organisation_id == organisation_id,
            WebhookSubscription.deleted_at.is_(None),
        )
    )
    if subscription is None:
        raise NotFound(f"No subscription with id {subscription_id}.")
    return subscription


async def own_delivery(
    session: AsyncSession, *, organisation_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery:
    """The organisation's delivery; NotFound also for another organisation's."""
    delivery = await session.scalar(
        select(Delivery).where(
            Delivery.id == delivery_id, Delivery.organisation_id == organisation_id
        )
    )
    if delivery is None:
        raise NotFound(f"No delivery with id {delivery_id}.")
    return delivery


async def create_subscription(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    url: str,
    event_types: list[str],
    description: str,
    box: SecretBox,
) -> tuple[WebhookSubscription, str]:
    """Register an endpoint (its URL already checked); returns it and its secret, in clear
    this once."""
    count = await session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(
            WebhookSubscription.organisation_id == organisation_id,
            WebhookSubscription.deleted_at.is_(None),
        )
    )
    if (count or 0) >= MAX_SUBSCRIPTIONS:
        raise Conflict(
            f"Your organisation has {MAX_SUBSCRIPTIONS} endpoints already; delete one first."
        )
    secret = new_webhook_secret()
    subscription = WebhookSubscription(
        organisation_id=organisation_id,
        url=url,
        event_types=event_types,
        description=description,
        secret_encrypted=box.encrypt(secret),
        active=True,
    )
    session.add(subscription)
    await session.flush()
    await session.refresh(subscription)
    return subscription, secret


async def delete_subscription(
    session: AsyncSession, *, subscription: WebhookSubscription, now: datetime
) -> int:
    """Stop sending to an endpoint; its delivery log stays. How many pending ones failed."""
    subscription.active = False
    subscription.deleted_at = now
    await session.flush()
    return await fail_pending(session, subscription_id=subscription.id, reason="endpoint deleted")


async def enable_subscription(session: AsyncSession, *, subscription: WebhookSubscription) -> None:
    """Switch a disabled endpoint back on, with a clean slate for the disabling clock."""
    subscription.active = True
    subscription.disabled_at = None
    subscription.disabled_reason = None
    subscription.failing_since = None
    await session.flush()


async def send_test(
    session: AsyncSession, *, subscription: WebhookSubscription, now: datetime
) -> Delivery:
    """Queue a signed `webhook.test` event to the endpoint, delivered like any other."""
    if not subscription.active:
        raise Conflict("This endpoint is disabled; enable it first (POST .../enable).")
    event_id = uuid.uuid4()
    delivery = Delivery(
        channel=DeliveryChannel.WEBHOOK,
        organisation_id=subscription.organisation_id,
        subscription_id=subscription.id,
        event_id=event_id,
        event_type=TEST_EVENT_TYPE,
        payload=webhook_body(
            TEST_EVENT_TYPE,
            now,
            {
                "subscription": str(subscription.id),
                "message": "A test event from Vroegsignaal: your endpoint is reachable and"
                " verifies our signature.",
            },
        ),
        status=DeliveryStatus.PENDING,
        attempts=0,
    )
    session.add(delivery)
    await session.flush()
    await session.refresh(delivery)
    await wake_workers(session)
    return delivery


async def _check_endpoint(session: AsyncSession, delivery: Delivery) -> None:
    if delivery.subscription_id is None:
        return
    subscription = await session.get(WebhookSubscription, delivery.subscription_id)
    if subscription is None or subscription.deleted_at is not None:
        raise Conflict("Its endpoint has been deleted; nothing to retry it to.")
    if not subscription.active:
        raise Conflict("Its endpoint is disabled; enable it first (POST .../enable).")


def _restart() -> dict[str, object]:
    # Back to the start of the schedule: attempts count from zero, due at once.
    return {
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": None,
        "claim_token": None,
        "claimed_until": None,
        "last_error": None,
    }


async def retry_delivery(session: AsyncSession, *, delivery: Delivery) -> Delivery:
    """A failed delivery back to pending, its attempts starting over; Conflict otherwise."""
    if delivery.status is not DeliveryStatus.FAILED:
        raise Conflict(
            f"Only a failed delivery can be retried; this one is {delivery.status.value}."
        )
    await _check_endpoint(session, delivery)
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.FAILED)
        .values(**_restart())
        .returning(Delivery.id)
    )
    if result.scalar_one_or_none() is None:
        raise Conflict("The delivery changed meanwhile; look again.")
    await session.refresh(delivery)
    await wake_workers(session)
    return delivery


async def retry_failed(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    subscription_id: uuid.UUID | None,
    since: datetime | None,
) -> int:
    """Every failed delivery of the organisation to an active endpoint (or an address), of one
    endpoint and/or created since a moment, back to pending; how many."""
    query = (
        update(Delivery)
        .where(Delivery.organisation_id == organisation_id)
        .where(Delivery.status == DeliveryStatus.FAILED)
        .where(
            (Delivery.subscription_id.is_(None))
            | Delivery.subscription_id.in_(
                select(WebhookSubscription.id).where(
                    WebhookSubscription.organisation_id == organisation_id,
                    WebhookSubscription.active.is_(True),
                )
            )
        )
    )
    if subscription_id is not None:
        query = query.where(Delivery.subscription_id == subscription_id)
    if since is not None:
        query = query.where(Delivery.created_at >= since)
    retried = len((await session.execute(query.values(**_restart()).returning(Delivery.id))).all())
    if retried:
        await wake_workers(session)
    return retried

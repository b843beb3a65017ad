"""Queue deliveries inside the caller's transaction: the notifier decides who, this records what.

Both functions only add rows (and a `NOTIFY` that PostgreSQL sends at commit); they never commit.
Each is idempotent per recipient and event: a unique key on (subscription, event id) and on
(e-mail address, event id) with `ON CONFLICT DO NOTHING`, so a replayed event delivers nothing
twice. Deliveries about one alert carry the alert's id as their ordering key: the worker sends
them to one recipient in the order they were queued.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import Delivery, WebhookSubscription
from services.core.domain import DeliveryChannel
from services.core.events.envelope import Event

EVENT_TYPE_PREFIX = "nl.vroegsignaal."
WAKE_CHANNEL = "vroegsignaal_deliveries"
_WAKE = text(f"SELECT pg_notify('{WAKE_CHANNEL}', '')")
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # all attachments of one e-mail together


@dataclass(frozen=True)
class Attachment:
    """A file sent with an e-mail (the monthly digest's PDF); kept base64 in the payload."""

    filename: str
    content_type: str
    content: bytes

    def stored(self) -> dict[str, str]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "content_base64": base64.b64encode(self.content).decode("ascii"),
        }


def short_type(event_type: str) -> str:
    """`nl.vroegsignaal.alert.opened` → `alert.opened`, the name webhooks and subscriptions use."""
    return event_type.removeprefix(EVENT_TYPE_PREFIX)


def webhook_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body every webhook carries (DESIGN.md, "Outbound webhooks")."""
    moment = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": moment, "data": data}


def _ordering_key(event: Event | None, alert_id: uuid.UUID | None) -> str | None:
    # An alert's deliveries must arrive in order (opened before escalated before resolved);
    # without an alert, events of one partition key (a coverage cell) keep their order too.
    if alert_id is not None:
        return f"alert:{alert_id}"
    if event is not None and event.partition_key:
        return f"key:{event.partition_key}"[:200]
    return None


async def wake_workers(session: AsyncSession) -> None:
    """Tell the delivery workers there is work; PostgreSQL sends it when the caller commits."""
    await session.execute(_WAKE)


async def enqueue_webhooks(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    event: Event,
    alert_id: uuid.UUID | None,
) -> int:
    """One pending delivery per active subscription of the organisation that wants this event
    type; how many were queued (0 for one already queued: a replay)."""
    event_type = short_type(event.type)
    subscriptions = (
        await session.scalars(
            select(WebhookSubscription.id).where(
                WebhookSubscription.organisation_id == organisation_id,
                WebhookSubscription.active.is_(True),
                WebhookSubscription.event_types.any_() == event_type,
            )
        )
    ).all()
    if not subscriptions:
        return 0
    body = webhook_body(event_type, event.time, event.data)
    ordering_key = _ordering_key(event, alert_id)
    rows = [
        {
            "id": uuid.uuid4(),
            "channel": DeliveryChannel.WEBHOOK,
            "organisation_id": organisation_id,
            "subscription_id": subscription_id,
            "alert_id": alert_id,
            "event_id": event.id,
            "event_type": event_type,
            "payload": body,
            "ordering_key": ordering_key,
        }
        for subscription_id in subscriptions
    ]
    inserted = (
        await session.scalars(
            insert(Delivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
            .returning(Delivery.id)
        )
    ).all()
    if inserted:
        await wake_workers(session)
    return len(inserted)


def _one_line(value: str) -> str:
    return " ".join(value.split())


async def enqueue_email(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    event_id: uuid.UUID,
    event_type: str,
    alert_id: uuid.UUID | None,
    attachments: Sequence[Attachment] = (),
) -> None:
    """Queue one e-mail (multipart text, optional html, attachments) to one address, once per
    (address, event id). ValueError for an address or attachment that cannot be sent."""
    address = to.strip().lower()
    if "@" not in address or any(ch.isspace() or ch in "<>,;" for ch in address):
        raise ValueError(f"not one e-mail address: {to!r}")
    if len(address) > 320:
        raise ValueError("an e-mail address is at most 320 characters")
    if sum(len(a.content) for a in attachments) > MAX_ATTACHMENT_BYTES:
        raise ValueError(f"attachments larger than {MAX_ATTACHMENT_BYTES} bytes together")
    for attachment in attachments:
        if "/" not in attachment.content_type or not attachment.filename.strip():
            raise ValueError(f"attachment {attachment.filename!r} needs a name and a MIME type")
    payload: dict[str, Any] = {
        "to": address,
        "subject": _one_line(subject),  # a line break in a header would end it
        "text": text,
        "html": html,
        "attachments": [attachment.stored() for attachment in attachments],
    }
    inserted = await session.scalar(
        insert(Delivery)
        .values(
            id=uuid.uuid4(),
            channel=DeliveryChannel.EMAIL,
            organisation_id=organisation_id,
            email=address,
            alert_id=alert_id,
            event_id=event_id,
            event_type=short_type(event_type)[:128],
            payload=payload,
            ordering_key=_ordering_key(None, alert_id),
        )
        .on_conflict_do_nothing(index_elements=["email", "event_id"])
        .returning(Delivery.id)
    )
    if inserted is not None:
        await wake_workers(session)

"""Queue deliveries inside the caller's transaction: the notifier decides who, this records what.

Both functions only add rows (and a `NOTIFY` that PostgreSQL sends at commit); they never commit.
Each is idempotent per recipient and event: a unique key on (subscription, event id) and on
(e-mail address, event id) with `ON CONFLICT DO NOTHING`, so a replayed event delivers nothing
twice. Deliveries about one alert carry the alert's id as their ordering key: the worker sends
them to one recipient in the order they were queued.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from services.core.db.models import Delivery, WebhookSubscription
from services.core.domain import DeliveryChannel
from services.core.events.envelope import Event

EVENT_TYPE_PREFIX = "nl.vroegsignaal."
WAKE_CHANNEL = "vroegsignaal_deliveries"
_WAKE = sql_text(f"SELECT pg_notify('{WAKE_CHANNEL}', '')")
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
    rows = webhook_rows(
        organisation_id=organisation_id,
        subscription_ids=subscriptions,
        event=event,
        alert_id=alert_id,
    )
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
    row = email_row(
        organisation_id=organisation_id,
        to=to,
        subject=subject,
        text=text,
        html=html,
        event_id=event_id,
        event_type=event_type,
        alert_id=alert_id,
        attachments=attachments,
    )
    inserted = await session.scalar(
        insert(Delivery)
        .values(row)
        .on_conflict_do_nothing(index_elements=["email", "event_id"])
        .returning(Delivery.id)
    )
    if inserted is not None:
        await wake_workers(session)


def email_row(
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
) -> dict[str, Any]:
    """The row `enqueue_email` queues, for `insert_deliveries`; ValueError as there."""
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
    return {
        "id": uuid.uuid4(),
        "channel": DeliveryChannel.EMAIL,
        "organisation_id": organisation_id,
        "subscription_id": None,
        "email": address,
        "alert_id": alert_id,
        "event_id": event_id,
        "event_type": short_type(event_type)[:128],
        "payload": payload,
        "ordering_key": _ordering_key(None, alert_id),
    }


def webhook_rows(
    *,
    organisation_id: uuid.UUID,
    subscription_ids: Sequence[uuid.UUID],
    event: Event,
    alert_id: uuid.UUID | None,
    body: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rows `enqueue_webhooks` queues for these endpoints (those that want the event), for
    `insert_deliveries`. `body`: the webhook body, when the caller has made it already."""
    if not subscription_ids:
        return []
    event_type = short_type(event.type)
    body = body if body is not None else webhook_body(event_type, event.time, event.data)
    ordering_key = _ordering_key(event, alert_id)
    return [
        {
            "id": uuid.uuid4(),
            "channel": DeliveryChannel.WEBHOOK,
            "organisation_id": organisation_id,
            "subscription_id": subscription_id,
            "email": None,
            "alert_id": alert_id,
            "event_id": event.id,
            "event_type": event_type,
            "payload": body,
            "ordering_key": ordering_key,
        }
        for subscription_id in subscription_ids
    ]


_ENDPOINTS = (
    select(
        WebhookSubscription.organisation_id,
        WebhookSubscription.id,
        WebhookSubscription.event_types,
    )
    .where(
        WebhookSubscription.organisation_id
        == any_(bindparam("organisations", type_=ARRAY(Uuid()))),
        WebhookSubscription.active.is_(True),
    )
    .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
)


async def endpoints_of(
    session: AsyncSession, organisation_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[uuid.UUID, frozenset[str]]]]:
    """The active webhook endpoints of these organisations with the event types each wants:
    what `enqueue_webhooks` looks up, for many organisations in one statement."""
    if not organisation_ids:
        return {}
    rows = await session.execute(_ENDPOINTS, {"organisations": list(organisation_ids)})
    found: dict[uuid.UUID, list[tuple[uuid.UUID, frozenset[str]]]] = {}
    for organisation_id, subscription_id, event_types in rows.all():
        found.setdefault(organisation_id, []).append((subscription_id, frozenset(event_types)))
    return found


_INSERT_DELIVERIES = sql_text(
    """
    WITH queued AS (
        INSERT INTO deliveries (id, channel, organisation_id, subscription_id, email, alert_id,
                                event_id, event_type, payload, ordering_key)
        SELECT r.id, r.channel, r.organisation_id, r.subscription_id, r.email, r.alert_id,
               r.event_id, r.event_type, r.payload::jsonb, r.ordering_key
        FROM unnest(:ids, :channels, :organisations, :subscriptions, :emails, :alerts,
                    :events, :event_types, :payloads, :ordering_keys)
             WITH ORDINALITY AS r (id, channel, organisation_id, subscription_id, email,
                                   alert_id, event_id, event_type, payload, ordering_key, n)
        ORDER BY r.n
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM queued
    """
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid())),
    bindparam("channels", type_=ARRAY(String())),
    bindparam("organisations", type_=ARRAY(Uuid())),
    bindparam("subscriptions", type_=ARRAY(Uuid())),
    bindparam("emails", type_=ARRAY(String())),
    bindparam("alerts", type_=ARRAY(Uuid())),
    bindparam("events", type_=ARRAY(Uuid())),
    bindparam("event_types", type_=ARRAY(String())),
    bindparam("payloads", type_=ARRAY(String())),
    bindparam("ordering_keys", type_=ARRAY(String())),
)


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Queue many rows of `webhook_rows` and `email_row` in one statement, in their order (their
    `seq`), each once: a webhook once per (endpoint, event), an e-mail once per (address,
    event), as `enqueue_webhooks` and `enqueue_email` do (the other key of each is empty, so
    `ON CONFLICT DO NOTHING` skips exactly their repeats). Wakes the workers when something
    was queued; how many rows were."""
    if not rows:
        return 0
    dumped: dict[int, str] = {}  # the rows of one event to several endpoints share their body
    for row in rows:
        if id(row["payload"]) not in dumped:
            dumped[id(row["payload"])] = json.dumps(row["payload"])
    queued = await session.scalar(
        _INSERT_DELIVERIES,
        {
            "ids": [row["id"] for row in rows],
            "channels": [row["channel"].value for row in rows],
            "organisations": [row["organisation_id"] for row in rows],
            "subscriptions": [row["subscription_id"] for row in rows],
            "emails": [row["email"] for row in rows],
            "alerts": [row["alert_id"] for row in rows],
            "events": [row["event_id"] for row in rows],
            "event_types": [row["event_type"] for row in rows],
            "payloads": [dumped[id(row["payload"])] for row in rows],
            "ordering_keys": [row["ordering_key"] for row in rows],
        },
    )
    if queued:
        await wake_workers(session)
    return int(queued or 0)

"""The HTTP shapes of `/v1/subscriptions` and `/v1/deliveries`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.core.db.models import Delivery, DeliveryAttempt, WebhookSubscription
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.notify.deliveries.manage import SUBSCRIBABLE
from services.notify.deliveries.ssrf import MAX_URL_LENGTH


class SubscriptionCreate(BaseModel):
    """A webhook endpoint to register."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "url": "https://epd.example.nl/hooks/vroegsignaal",
                "event_types": ["alert.opened", "alert.escalated", "alert.resolved"],
                "description": "EPD-koppeling",
            }
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https URL on a public address (checked now and at every delivery)",
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description="short event types, e.g. alert.opened",
        json_schema_extra={"items": {"enum": list(SUBSCRIBABLE)}},
    )
    description: str = Field(default="", max_length=500)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SUBSCRIBABLE))
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(SUBSCRIBABLE)}"
            )
        return sorted(set(value))

    @field_validator("description")
    @classmethod
    def _printable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value.strip()


class SubscriptionRead(BaseModel):
    """A registered endpoint and its health; the secret is never shown again."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_at: datetime
    last_success_at: datetime | None
    failing_since: datetime | None = Field(description="first failure since the last success")
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, row: WebhookSubscription) -> SubscriptionRead:
        return cls(
            id=row.id,
            url=row.url,
            event_types=list(row.event_types),
            description=row.description,
            active=row.active,
            created_at=row.created_at,
            last_success_at=row.last_success_at,
            failing_since=row.failing_since,
            disabled_at=row.disabled_at,
            disabled_reason=row.disabled_reason,
        )


class SubscriptionCreated(SubscriptionRead):
    """The new endpoint with its signing secret: shown this once, keep it safe."""

    secret: str = Field(description="`whsec_...`: verify our signatures with it; shown only now")


class SubscriptionList(BaseModel):
    items: list[SubscriptionRead]


class AttemptRead(BaseModel):
    """One try: when, the answer's status code (HTTP or SMTP), how long, what went wrong."""

    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None

    @classmethod
    def of(cls, row: DeliveryAttempt) -> AttemptRead:
        return cls(
            attempted_at=row.attempted_at,
            status_code=row.status_code,
            duration_ms=row.duration_ms,
            error=row.error,
        )


class DeliveryRead(BaseModel):
    """A delivery with its attempts, oldest first."""

    id: uuid.UUID
    channel: DeliveryChannel
    subscription_id: uuid.UUID | None
    email: str | None
    event_id: uuid.UUID
    event_type: str
    alert_id: uuid.UUID | None
    status: DeliveryStatus
    attempt_count: int = Field(description="attempts since it was queued or last retried by hand")
    next_attempt_at: datetime | None = Field(description="when pending: the next try (null: now)")
    last_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempts: list[AttemptRead]

    @classmethod
    def fields_of(cls, row: Delivery, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
        return {
            "id": row.id,
            "channel": row.channel,
            "subscription_id": row.subscription_id,
            "email": row.email,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "alert_id": row.alert_id,
            "status": row.status,
            "attempt_count": row.attempts,
            "next_attempt_at": row.next_attempt_at,
            "last_attempt_at": row.last_attempt_at,
            "last_error": row.last_error,
            "created_at": row.created_at,
            "attempts": [AttemptRead.of(a) for a in attempts],
        }

    @classmethod
    def of(cls, row: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryRead:
        return cls(**cls.fields_of(row, attempts))


class DeliveryDetail(DeliveryRead):
    """A delivery with what it carries (an e-mail's attachments by name and size only)."""

    payload: dict[str, Any]

    @classmethod
    def detail(cls, row: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryDetail:
        payload = dict(row.payload)
        if row.channel is DeliveryChannel.EMAIL:
            payload["attachments"] = [
                {
                    "filename": a.get("filename"),
                    "content_type": a.get("content_type"),
                    "size_bytes": len(a.get("content_base64", "")) * 3 // 4,
                }
                for a in payload.get("attachments") or []
            ]
        return cls(**cls.fields_of(row, attempts), payload=payload)


class DeliveryPage(BaseModel):
    items: list[DeliveryRead] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next, older page")


class BulkRetry(BaseModel):
    """Which failed deliveries to send again: of one endpoint, since a moment, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "subscription": "6f0c1c2e-3b7a-4a8e-9f3c-0e2d4b5a6c7d",
                "since": "2026-11-20T00:00:00+01:00",
            }
        },
    )

    subscription: uuid.UUID | None = None
    since: datetime | None = Field(default=None, description="queued at or after; with a zone")

    @field_validator("since")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-20T00:00:00+01:00")
        return value


class BulkRetried(BaseModel):
    retried: int = Field(description="failed deliveries put back in the queue")


class TestQueued(BaseModel):
    delivery_id: uuid.UUID = Field(description="follow it at GET /v1/deliveries/{id}")

"""Deliveries: one message to one recipient, a work queue claimed with SKIP LOCKED."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, uuid_pk
from services.core.domain import DeliveryChannel, DeliveryStatus


class Delivery(Base):
    """A webhook call or an e-mail, retried with backoff until it succeeds or runs out of tries."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(
            "(channel = 'webhook') = (subscription_id IS NOT NULL)", name="webhook_subscription"
        ),
        CheckConstraint("(channel = 'email') = (email IS NOT NULL)", name="email_recipient"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The worker claims due pending deliveries in order: it reads them in this index's order
        # and stops when it has enough (queue.py).
        Index(
            "ix_deliveries_due_order",
            "next_attempt_at",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_subscription_created", "subscription_id", "created_at"),
        Index("ix_deliveries_organisation_status", "organisation_id", "status"),
        # Once per recipient and event: a replayed event does not deliver twice. (NULLs are
        # distinct, so each constraint only binds its own channel.)
        UniqueConstraint("subscription_id", "event_id"),
        UniqueConstraint("email", "event_id"),
        # "Is an earlier delivery with my ordering key still pending?" on every claim.
        Index(
            "ix_deliveries_pending_order",
            "ordering_key",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        # Calls in flight per endpoint, for the concurrency limit.
        Index(
            "ix_deliveries_in_flight",
            "subscription_id",
            postgresql_where=text("claimed_until IS NOT NULL"),
        ),
        Index("ix_deliveries_organisation_seq", "organisation_id", "seq"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Creation order: `created_at` is the same for every row of one transaction.
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    channel: Mapped[DeliveryChannel] = mapped_column(text_enum(DeliveryChannel, "channel"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    email: Mapped[str | None] = mapped_column(String(320))
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[DeliveryStatus] = mapped_column(
        text_enum(DeliveryStatus, "delivery_status"), server_default="pending"
    )
    # Deliveries with the same key to the same recipient go out in `seq` order (an alert's id).
    ordering_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()  # null: due now
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # A worker's lease while it sends; another worker takes the delivery over when it lapses.
    claim_token: Mapped[uuid.UUID | None] = mapped_column()
    claimed_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()

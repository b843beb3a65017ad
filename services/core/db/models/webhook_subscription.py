"""Outbound webhook endpoints an organisation registered, with the event types each wants."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, uuid_pk


class WebhookSubscription(Base):
    """Signed per Standard Webhooks; the secret is needed to sign, so it is kept encrypted
    (Fernet, services/notify/deliveries/secrets.py), never hashed and never in clear."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(128)))
    description: Mapped[str] = mapped_column(Text, server_default="")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # False once disabled (failing too long) or deleted; only active endpoints get deliveries.
    active: Mapped[bool] = mapped_column(server_default="true")
    failing_since: Mapped[datetime | None] = mapped_column()  # first failure since a success
    last_success_at: Mapped[datetime | None] = mapped_column()
    disabled_at: Mapped[datetime | None] = mapped_column()
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Deleted endpoints are kept (inactive, hidden) so their delivery log stays readable.
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()

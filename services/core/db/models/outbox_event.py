"""The transactional outbox: events written in the same transaction as the change they describe.

On the PostgreSQL bus this table is the log itself: consumers read it by offset (`id`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class OutboxEvent(Base):
    """One CloudEvent waiting for (or already given to) the bus."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_topic_id", "topic", "id"),
        # The Kafka relay scans only what it has not published yet.
        Index("ix_outbox_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    topic: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    partition_key: Mapped[str] = mapped_column(String(128))
    # The whole CloudEvent in structured JSON mode.
    event: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()
    published_at: Mapped[datetime | None] = mapped_column()

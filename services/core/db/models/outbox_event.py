"""The transactional outbox: events written in the same transaction as the change they describe.

On the PostgreSQL bus this table is the log itself, in partitions. An id is drawn at insert time,
not at commit, so ids alone are not in commit order; but writers take their partition's lock
before they draw ids and keep it until they commit (`record_events`), so within one partition the
ids grow in commit order and a reader can follow them by offset without passing a late commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class OutboxEvent(Base):
    """One CloudEvent waiting for (or already given to) the bus."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_log", "topic", "partition", "id"),
        # The Kafka relay scans only what it has not published yet.
        Index("ix_outbox_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_events_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Not unique: `events replay` puts a dead-lettered event in the log again under its own id.
    event_id: Mapped[uuid.UUID] = mapped_column()
    topic: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    partition_key: Mapped[str] = mapped_column(String(128))
    # Hash of the partition key modulo the partition count (PostgreSQL bus).
    partition: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    # The whole CloudEvent in structured JSON mode. json, not jsonb: passed on whole, never
    # queried into, and jsonb's parsing on insert was most of the cost of writing it (0009).
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_at()
    published_at: Mapped[datetime | None] = mapped_column()

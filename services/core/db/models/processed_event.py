"""The events each consumer has applied, recorded with its effects: exactly-once effect."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class ProcessedEvent(Base):
    """A redelivered event whose id is here is skipped."""

    __tablename__ = "processed_events"

    consumer_group: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = created_at()

"""Dead letters: an event that failed every attempt, parked so its partition can move on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class DeadLetter(Base):
    """Replayed by hand with `vroegsignaal events replay`."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("consumer_group", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    consumer_group: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[uuid.UUID] = mapped_column()
    topic: Mapped[str] = mapped_column(String(128))
    event: Mapped[dict[str, Any]] = mapped_column(JSONB)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = created_at()
    replayed_at: Mapped[datetime | None] = mapped_column()

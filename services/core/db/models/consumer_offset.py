"""Per consumer group, topic and partition: how far the group has read the outbox log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, updated_at


class ConsumerOffset(Base):
    """The PostgreSQL bus keeps offsets here; a lease lets one process own a partition at a time.

    `offset` is the id of the last event of the partition the group applied.
    """

    __tablename__ = "consumer_offsets"

    consumer_group: Mapped[str] = mapped_column(String(128), primary_key=True)
    topic: Mapped[str] = mapped_column(String(128), primary_key=True)
    partition: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()

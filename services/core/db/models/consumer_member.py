"""The live processes of each consumer group on the PostgreSQL bus, for sharing partitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class ConsumerMember(Base):
    """A member that stops heartbeating is dropped; the others then take its partitions."""

    __tablename__ = "consumer_members"

    consumer_group: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    joined_at: Mapped[datetime] = created_at()
    heartbeat_at: Mapped[datetime] = mapped_column()

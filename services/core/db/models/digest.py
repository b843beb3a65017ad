"""Monthly escalation digests for the governance board (bestuurlijk overleg cruciale ggz)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Identity, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, text_enum
from services.core.domain import DigestStatus


class Digest(Base):
    """One per period: the unique period is what makes "exactly once" hold across replicas."""

    __tablename__ = "digests"
    __table_args__ = (CheckConstraint("period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name="period"),)

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    status: Mapped[DigestStatus] = mapped_column(text_enum(DigestStatus, "digest_status"))
    made_at: Mapped[datetime] = mapped_column()
    published_at: Mapped[datetime | None] = mapped_column()
    ruleset_version: Mapped[str] = mapped_column(String(64))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)

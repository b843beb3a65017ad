"""Assessments (beoordelingen): the engine's judgement of a department at a moment, with reasons."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Numeric, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, text_enum
from services.core.domain import Level


class Assessment(Base):
    """History of judgements; the newest per department is its current assessment."""

    __tablename__ = "assessments"
    __table_args__ = (Index("ix_assessments_department_assessed", "department_id", "assessed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    signal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("signals.id", ondelete="RESTRICT")
    )
    level: Mapped[Level] = mapped_column(text_enum(Level, "level"))
    score: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    # Each reason: rule id, level, message (nl, en), the figures and thresholds, the signal ids.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    no_alternative: Mapped[bool] = mapped_column(server_default="false")
    # Per rule: {"consecutive": n, "since": iso time} while its condition holds (for `for:`).
    rule_memory: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    ruleset_version: Mapped[str] = mapped_column(String(64))
    assessed_at: Mapped[datetime] = mapped_column()

"""Waiting-time norms (Treeknorm) as versioned reference data, not constants in code."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, Identity, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class WaitingTimeNorm(Base):
    """One version of a norm, valid from a date; AZWA norms for crucial ggz come as new rows."""

    __tablename__ = "waiting_time_norms"
    __table_args__ = (
        UniqueConstraint("code", "valid_from"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    aanmeldwachttijd_weeks: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    behandelwachttijd_weeks: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    total_weeks: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()

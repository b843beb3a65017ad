"""Signals (signalen): one aggregate report about one department. Never data about a person."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, text_enum
from services.core.domain import SignalKind, SignalSource


class Signal(Base):
    """A stored signal. The id may be chosen by the client, which makes its retries safe."""

    __tablename__ = "signals"
    __table_args__ = (
        # The rules read the latest signals per department and kind, and series over time.
        Index(
            "ix_signals_department_kind_observed",
            "department_id",
            "kind",
            "observed_at",
        ),
        Index("ix_signals_department_received", "department_id", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    kind: Mapped[SignalKind] = mapped_column(text_enum(SignalKind, "signal_kind"))
    observed_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[SignalSource] = mapped_column(text_enum(SignalSource, "signal_source"))
    submitted_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    # A hash of the signal as submitted: a repeat of the id with another body is a conflict.
    body_hash: Mapped[str] = mapped_column(Text)

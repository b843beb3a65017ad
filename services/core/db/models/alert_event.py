"""The timeline of an alert: opened, escalated, acknowledged, comments, resolved."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, text_enum
from services.core.domain import AlertEventType, EscalationStep, Level


class AlertEvent(Base):
    """One entry on an alert's timeline; `actor_*` is empty when the engine itself acted."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_at", "alert_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    type: Mapped[AlertEventType] = mapped_column(text_enum(AlertEventType, "alert_event_type"))
    at: Mapped[datetime] = mapped_column()
    level: Mapped[Level] = mapped_column(text_enum(Level, "level"))
    escalation: Mapped[EscalationStep] = mapped_column(text_enum(EscalationStep, "escalation_step"))
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(Text)
    # E.g. the escalation reason (level, timer, coverage) or the reasons that changed.
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

"""Alerts (meldingen): an open continuity risk with its escalation step and timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, text_enum, updated_at, uuid_pk
from services.core.domain import AlertKind, AlertStatus, EscalationStep, Level


class Alert(Base):
    """At most one unresolved alert per department, and per region × care type for coverage."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'department') = (department_id IS NOT NULL)", name="department_alert"
        ),
        CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_at"),
        Index(
            "uq_alerts_open_department",
            "department_id",
            unique=True,
            postgresql_where=text("status <> 'resolved' AND kind = 'department'"),
        ),
        Index(
            "uq_alerts_open_coverage",
            "region_id",
            "care_type_code",
            unique=True,
            postgresql_where=text("status <> 'resolved' AND kind = 'coverage'"),
        ),
        # The dashboard and the API list alerts by region and state, newest first.
        Index("ix_alerts_region_status_opened", "region_id", "status", "opened_at"),
        # The escalation timers find the alerts whose step has run out.
        Index("ix_alerts_step_due", "step_due_at", postgresql_where=text("status <> 'resolved'")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[AlertKind] = mapped_column(text_enum(AlertKind, "alert_kind"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    # Null region: a national coverage alert about supra-regional care.
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    care_type_code: Mapped[str] = mapped_column(
        ForeignKey("care_types.code", ondelete="RESTRICT", onupdate="CASCADE")
    )
    level: Mapped[Level] = mapped_column(text_enum(Level, "level"))
    status: Mapped[AlertStatus] = mapped_column(
        text_enum(AlertStatus, "alert_status"), server_default="open"
    )
    escalation: Mapped[EscalationStep] = mapped_column(
        text_enum(EscalationStep, "escalation_step"), server_default="provider"
    )
    no_alternative: Mapped[bool] = mapped_column(server_default="false")
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    opened_at: Mapped[datetime] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    # When an unacknowledged alert moves one step up; null at the top, acknowledged or resolved.
    step_due_at: Mapped[datetime | None] = mapped_column()
    # When an acknowledged alert that stayed open was last announced again.
    reminded_at: Mapped[datetime | None] = mapped_column()
    # When the department was first judged ok again: resolution waits for the hysteresis.
    ok_since: Mapped[datetime | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolution: Mapped[str | None] = mapped_column(Text)
    ruleset_version: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = updated_at()

"""Scheduled jobs and when they last ran: a run is claimed once per interval across replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base


class ScheduledRun(Base):
    """Claimed with a conditional UPDATE: the replica whose update moves the time runs the job."""

    __tablename__ = "scheduled_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column()
    runs: Mapped[int] = mapped_column(BigInteger, server_default="0")

"""Which ruleset was loaded when: every assessment names the version it was judged by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class RulesetVersion(Base):
    """One row per distinct ruleset (version and content hash) that a worker loaded."""

    __tablename__ = "ruleset_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    loaded_at: Mapped[datetime] = created_at()

"""Which insurer coordinates crucial ggz in which region (configuration; a region may have more)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at


class InsurerRegion(Base):
    """The coordinating insurer (coördinerend zorgverzekeraar) of a region."""

    __tablename__ = "insurer_regions"

    insurer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    region_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = created_at()

"""Regional coverage: per region × care type, what is there and how much of it is at risk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, updated_at


class RegionalCoverage(Base):
    """One cell of the coverage map. A row with no region is national (supra-regional care)."""

    __tablename__ = "regional_coverage"
    __table_args__ = (
        CheckConstraint(
            "departments_active >= 0 AND threatened >= 0 AND critical >= 0"
            " AND capacity_total >= 0 AND capacity_at_risk >= 0 AND no_alternative >= 0",
            name="counts_not_negative",
        ),
        Index(
            "uq_regional_coverage_region_care_type",
            "region_id",
            "care_type_code",
            unique=True,
            postgresql_where=text("region_id IS NOT NULL"),
        ),
        Index(
            "uq_regional_coverage_national_care_type",
            "care_type_code",
            unique=True,
            postgresql_where=text("region_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    care_type_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("care_types.code", ondelete="RESTRICT", onupdate="CASCADE")
    )
    departments_active: Mapped[int] = mapped_column(server_default="0")
    threatened: Mapped[int] = mapped_column(server_default="0")
    critical: Mapped[int] = mapped_column(server_default="0")
    no_alternative: Mapped[int] = mapped_column(server_default="0")
    capacity_total: Mapped[int] = mapped_column(server_default="0")
    capacity_at_risk: Mapped[int] = mapped_column(server_default="0")
    updated_at: Mapped[datetime] = updated_at()

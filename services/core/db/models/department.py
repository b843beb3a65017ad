"""Departments (afdelingen / teams): the unit whose continuity is watched."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, updated_at, uuid_pk
from services.core.domain import DepartmentStatus, Scope


class Department(Base):
    """One department of one provider, giving one care type in one IZA region."""

    __tablename__ = "departments"
    __table_args__ = (
        UniqueConstraint("provider_id", "code"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_has_date"),
        # Coverage is computed per region and care type.
        Index("ix_departments_region_care_type", "region_id", "care_type_code"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    care_type_code: Mapped[str] = mapped_column(
        ForeignKey("care_types.code", ondelete="RESTRICT", onupdate="CASCADE")
    )
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    scope: Mapped[Scope] = mapped_column(text_enum(Scope, "scope"))
    capacity: Mapped[int | None] = mapped_column()
    status: Mapped[DepartmentStatus] = mapped_column(
        text_enum(DepartmentStatus, "department_status"), server_default="active"
    )
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

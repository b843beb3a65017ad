"""IZA regions: each has a regional table that owns the crucial care of its departments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, updated_at
from services.core.domain import RegionSource


class Region(Base):
    """An IZA region. The code is stable; the name may change without breaking history."""

    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    mandate_municipality: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    # An imported region is the operator's: loading the packaged list never changes it again.
    source: Mapped[RegionSource] = mapped_column(
        text_enum(RegionSource, "region_source"), server_default="packaged"
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

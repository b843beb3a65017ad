"""The code list of crucial care types (zorgvormen), each in a cluster."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, updated_at
from services.core.domain import Cluster, Scope


class CareType(Base):
    """A kind of crucial care, e.g. `acute.hic`. No official list exists; ours names its sources."""

    __tablename__ = "care_types"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    cluster: Mapped[Cluster] = mapped_column(text_enum(Cluster, "cluster"), index=True)
    name_nl: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    default_scope: Mapped[Scope] = mapped_column(text_enum(Scope, "scope"))
    waiting_norms_apply: Mapped[bool] = mapped_column(Boolean)
    has_beds: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text, server_default="")
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), server_default="proposal")
    sort_order: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

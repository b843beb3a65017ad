"""Organisations: providers, insurers and the governance bodies (tables, BO, operator)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, updated_at, uuid_pk
from services.core.domain import OrgKind


class Organisation(Base):
    """One party. Providers carry an AGB code, insurers a UZOVI code, regional tables a region."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint("agb_code IS NULL OR agb_code ~ '^[0-9]{8}$'", name="agb_format"),
        CheckConstraint("uzovi_code IS NULL OR uzovi_code ~ '^[0-9]{4}$'", name="uzovi_format"),
        CheckConstraint("kind <> 'provider' OR agb_code IS NOT NULL", name="provider_has_agb"),
        CheckConstraint("kind <> 'insurer' OR uzovi_code IS NOT NULL", name="insurer_has_uzovi"),
        CheckConstraint(
            "(kind = 'regional_table') = (region_id IS NOT NULL)", name="regional_table_region"
        ),
        # The national table, the governance board and the operator exist once each.
        Index(
            "uq_organisations_singleton_kind",
            "kind",
            unique=True,
            postgresql_where=text("kind IN ('national_table', 'governance', 'operator')"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[OrgKind] = mapped_column(text_enum(OrgKind, "org_kind"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    agb_code: Mapped[str | None] = mapped_column(String(8), unique=True)
    uzovi_code: Mapped[str | None] = mapped_column(String(4), unique=True)
    region_id: Mapped[int | None] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

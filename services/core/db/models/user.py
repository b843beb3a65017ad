"""Dashboard users: people of an organisation, with argon2 password hashes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, uuid_pk
from services.core.domain import Role


class User(Base):
    """A person who logs in to the dashboard; sees what the organisation's role may see."""

    __tablename__ = "users"
    __table_args__ = (
        # Stored lower-case, so the plain unique constraint is case-insensitive.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), server_default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(text_enum(Role, "role"))
    # An organisation's own admin manages its webhooks and deliveries in the dashboard.
    is_org_admin: Mapped[bool] = mapped_column(server_default="false")
    active: Mapped[bool] = mapped_column(server_default="true")
    created_at: Mapped[datetime] = created_at()
    last_login_at: Mapped[datetime | None] = mapped_column()

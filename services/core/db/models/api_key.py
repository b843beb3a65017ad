"""API keys: stored as a SHA-256 hash of a high-entropy secret, never in clear."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db.base import Base, created_at, text_enum, uuid_pk
from services.core.domain import Role


class ApiKey(Base):
    """The prefix finds the row; the hash proves the key. The clear key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(text_enum(Role, "role"))
    name: Mapped[str] = mapped_column(String(200), server_default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

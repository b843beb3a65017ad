"""The audit log: who did what to which object, written in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import AuditEntry


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: str | None,
    channel: str,
    organisation_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    api_key_id: uuid.UUID | None = None,
    client_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry; it commits (or rolls back) with the change it describes."""
    session.add(
        AuditEntry(
            action=action,
            object_type=object_type,
            object_id=object_id,
            channel=channel,
            actor_organisation_id=organisation_id,
            actor_user_id=user_id,
            actor_api_key_id=api_key_id,
            client_address=client_address,
            details=details or {},
        )
    )

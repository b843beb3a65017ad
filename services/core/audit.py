"""The audit log: who did what to which object, from where, written in the caller's transaction.

`audit_call` is what every API route and dashboard page that reads or changes alert data calls
(tests/reliability/test_audit_completeness.py holds them to it); `record_audit` is the row itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
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


async def audit_call(
    session: AsyncSession,
    request: Request,
    caller: Caller,
    action: str,
    *,
    object_type: str,
    object_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit what a caller of the API or the dashboard read or did: who, how, from where."""
    await record_audit(
        session,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        channel=caller.channel,
        organisation_id=caller.organisation_id,
        user_id=caller.user_id,
        api_key_id=caller.api_key_id,
        client_address=request.client.host if request.client else None,
        details=details,
    )

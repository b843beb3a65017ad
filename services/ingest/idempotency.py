"""`Idempotency-Key` as in the IETF draft and Stripe: a repeated request gets the first answer.

The key row is inserted at the start of the request's own transaction. A concurrent request with
the same key blocks on the unique index until the first one commits (or rolls back), then sees
the stored answer: two requests at the same moment still store once. An error answer is not
kept (its transaction rolls back), so a corrected retry with the same key goes through.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import IdempotencyKey
from services.core.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 255
_PENDING = 0  # response_status while the first request is still working


@dataclass(frozen=True)
class Replay:
    """The stored answer to give again."""

    status: int
    body: dict[str, Any]


def request_fingerprint(payload: Any) -> str:
    """Hash of the request as JSON with sorted keys: spacing and key order do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    """Keys are opaque, printable and at most 255 characters (the draft's advice)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters, e.g. a UUID"
        )
    return key


async def claim(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    key: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
) -> Replay | None:
    """Claim the key for this request (None), or return the answer stored for it before."""
    for _ in range(2):  # a second round only after removing an expired key
        claimed = await session.scalar(
            insert(IdempotencyKey)
            .values(
                organisation_id=organisation_id,
                key=key,
                request_hash=fingerprint,
                response_status=_PENDING,
                response_body={},
                expires_at=now + ttl,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if claimed is not None:
            return None
        earlier = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.organisation_id == organisation_id, IdempotencyKey.key == key
            )
        )
        if earlier is None:
            continue  # removed in between: claim again
        if earlier.expires_at <= now:
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.organisation_id == organisation_id, IdempotencyKey.key == key
                )
            )
            continue
        if earlier.request_hash != fingerprint:
            raise Conflict(
                "This Idempotency-Key was used for a different request; use a new key for a"
                " new request."
            )
        return Replay(earlier.response_status, earlier.response_body)
    raise Conflict("This Idempotency-Key is being used by another request right now; retry.")


async def remember(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    key: str,
    status: int,
    body: dict[str, Any],
) -> None:
    """Store the answer with the claimed key, in the same transaction as the work."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.organisation_id == organisation_id, IdempotencyKey.key == key)
        .values(response_status=status, response_body=body)
    )


async def forget_expired(session: AsyncSession, *, now: datetime) -> int:
    """Remove keys past their time; run now and then (the notifier's scheduler does)."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)

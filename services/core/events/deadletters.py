"""Dead letters: look at them, and put them back on the bus once the cause is fixed.

A replay logs the event again under its own id. The group that parked it forgets that it applied
it, so it applies it now; every other group has applied that id already and skips it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import DeadLetter, OutboxEvent, ProcessedEvent
from services.core.events.outbox import lock_partitions
from services.core.events.types import partition_of


async def pending_dead_letters(
    session: AsyncSession, *, group: str | None = None
) -> Sequence[DeadLetter]:
    """The dead letters not yet replayed, oldest first."""
    query = select(DeadLetter).where(DeadLetter.replayed_at.is_(None)).order_by(DeadLetter.id)
    if group is not None:
        query = query.where(DeadLetter.consumer_group == group)
    return (await session.execute(query)).scalars().all()


async def replay_dead_letters(
    session: AsyncSession, *, group: str | None = None, ids: Sequence[int] | None = None
) -> int:
    """Put pending dead letters (of a group, or chosen by id) back in the log; how many."""
    letters = [
        letter
        for letter in await pending_dead_letters(session, group=group)
        if ids is None or letter.id in ids
    ]
    for letter in letters:
        await session.execute(
            delete(ProcessedEvent).where(
                ProcessedEvent.consumer_group == letter.consumer_group,
                ProcessedEvent.event_id == letter.event_id,
            )
        )
        key = str(letter.event.get("partitionkey", ""))
        await lock_partitions(session, [(letter.topic, partition_of(key))])
        session.add(
            OutboxEvent(
                event_id=uuid.UUID(str(letter.event_id)),
                topic=letter.topic,
                type=str(letter.event.get("type", "")),
                partition_key=key,
                partition=partition_of(key),
                event=letter.event,
            )
        )
        await session.execute(
            update(DeadLetter).where(DeadLetter.id == letter.id).values(replayed_at=func.now())
        )
    await session.flush()
    return len(letters)

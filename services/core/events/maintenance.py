"""Looking after the log: where each consumer group stands, and pruning what all have passed.

On the PostgreSQL bus the outbox is the log, so it grows until pruned. An event may go once it is
older than the retention, every consumer group has passed it in its partition, and (on Kafka) the
relay has published it. `processed_events` (the idempotency record) is pruned by the same age: keep
it at least as long as a redelivery can happen (Kafka: the topics' retention).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_GROUPS = text(
    """
    SELECT c.consumer_group, c.topic,
           count(*) FILTER (WHERE c.lease_owner IS NOT NULL
                            AND c.lease_expires_at > clock_timestamp()) AS leased,
           count(*) AS partitions,
           (SELECT count(*) FROM consumer_members m
             WHERE m.consumer_group = c.consumer_group) AS members,
           coalesce(sum((SELECT count(*) FROM outbox_events o
                          WHERE o.topic = c.topic AND o.partition = c.partition
                            AND o.id > c."offset")), 0) AS lag,
           max(c.updated_at) AS last_commit
    FROM consumer_offsets c
    GROUP BY c.consumer_group, c.topic
    ORDER BY c.consumer_group, c.topic
    """
)
_OUTBOX = text(
    """
    SELECT count(*) AS events,
           count(*) FILTER (WHERE published_at IS NULL) AS unpublished,
           min(created_at) FILTER (WHERE published_at IS NULL) AS oldest_unpublished,
           min(created_at) AS oldest
    FROM outbox_events
    """
)
_DEAD = text("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")
_PRUNE_OUTBOX = text(
    """
    DELETE FROM outbox_events o
    WHERE o.created_at < :before
      AND (NOT :kafka OR o.published_at IS NOT NULL)
      AND NOT EXISTS (
          SELECT 1 FROM consumer_offsets c
          WHERE c.topic = o.topic AND c.partition = o.partition AND c."offset" < o.id
      )
    """
)
_PRUNE_PROCESSED = text("DELETE FROM processed_events WHERE processed_at < :before")


@dataclass(frozen=True)
class GroupStatus:
    group: str
    topic: str
    members: int
    partitions: int
    leased: int
    lag: int
    last_commit: datetime | None


@dataclass(frozen=True)
class LogStatus:
    events: int
    unpublished: int
    oldest_unpublished: datetime | None
    oldest: datetime | None
    dead_letters: int
    groups: list[GroupStatus]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def log_status(session: AsyncSession) -> LogStatus:
    """The outbox, the dead letters and, for the PostgreSQL bus, every group's position."""
    outbox = (await session.execute(_OUTBOX)).one()
    groups = [
        GroupStatus(
            group=row.consumer_group,
            topic=row.topic,
            members=row.members,
            partitions=row.partitions,
            leased=row.leased,
            lag=int(row.lag),
            last_commit=row.last_commit,
        )
        for row in await session.execute(_GROUPS)
    ]
    return LogStatus(
        events=outbox.events,
        unpublished=outbox.unpublished,
        oldest_unpublished=outbox.oldest_unpublished,
        oldest=outbox.oldest,
        dead_letters=int(await session.scalar(_DEAD) or 0),
        groups=groups,
    )


@dataclass(frozen=True)
class Pruned:
    events: int
    processed: int


async def prune_log(
    session: AsyncSession, *, older_than: timedelta, now: datetime, kafka: bool
) -> Pruned:
    """Delete what every group has passed and is older than the retention."""
    before = now - older_than
    events = await session.execute(_PRUNE_OUTBOX, {"before": before, "kafka": kafka})
    processed = await session.execute(_PRUNE_PROCESSED, {"before": before})
    return Pruned(
        events=getattr(events, "rowcount", 0), processed=getattr(processed, "rowcount", 0)
    )

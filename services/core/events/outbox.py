"""The transactional outbox: services record events in the transaction of the change itself.

Nothing is published that was not committed, and nothing committed is left unpublished: the
relay (and, on the PostgreSQL bus, the consumers) read only committed rows. Commit order within a
partition comes from a lock: `record_events` takes the transaction-scoped advisory lock of each
(topic, partition) it writes, in a fixed order, before it draws ids, and PostgreSQL keeps it until
the commit. So a partition's ids grow in the order its transactions commit, and a reader that has
seen id n has seen every committed id below it. A trigger sends `NOTIFY vroegsignaal_outbox` at
commit to wake the readers.

Call it once per transaction, as late as you can: the locks are held until the commit, and one
call takes them in an order that cannot deadlock with another call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Integer

from services.core.db.bulk import copy_rows
from services.core.db.models import OutboxEvent
from services.core.events.types import TOPIC_OF, EventType, Topic, partition_of

# Advisory lock keys: (LOCK_SPACE + topic number, partition); the space keeps clear of other locks.
LOCK_SPACE = 0x5653_0000
_TOPIC_NUMBER = {topic.value: number for number, topic in enumerate(Topic)}
_LOCK = text(
    "SELECT count(pg_advisory_xact_lock(k.space, k.part))"
    " FROM unnest(:spaces, :parts) AS k(space, part)"
).bindparams(
    bindparam("spaces", type_=ARRAY(Integer())), bindparam("parts", type_=ARRAY(Integer()))
)


@dataclass(frozen=True)
class NewEvent:
    """An event to record: what happened (`type`), to what (`subject`), keyed for ordering."""

    type: EventType
    source: str  # the service that says so, e.g. "ingest"
    subject: str
    partition_key: str  # the department id: one department's events stay in order
    data: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def cloudevent(self) -> dict[str, Any]:
        """The event as a CloudEvents 1.0 structured JSON document."""
        return {
            "specversion": "1.0",
            "id": str(self.id),
            "source": f"/vroegsignaal/{self.source}",
            "type": self.type.value,
            "subject": self.subject,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "partitionkey": self.partition_key,
            "data": self.data,
        }


async def record_events(session: AsyncSession, events: list[NewEvent]) -> None:
    """Add the events to the outbox in the caller's transaction (one COPY for a batch)."""
    if not events:
        return
    rows: list[dict[str, Any]] = [
        {
            "event_id": event.id,
            "topic": TOPIC_OF[event.type].value,
            "type": event.type.value,
            "partition_key": event.partition_key,
            "partition": partition_of(event.partition_key),
            "event": event.cloudevent(),
        }
        for event in events
    ]
    await lock_partitions(session, [(str(row["topic"]), int(row["partition"])) for row in rows])
    await copy_rows(session, cast(Table, OutboxEvent.__table__), rows)  # after the lock's statement


async def lock_partitions(session: AsyncSession, partitions: list[tuple[str, int]]) -> None:
    """Take the log locks of these (topic, partition) pairs, in one fixed order, until commit."""
    keys = sorted({(LOCK_SPACE + _TOPIC_NUMBER[topic], part) for topic, part in partitions})
    await session.execute(
        _LOCK, {"spaces": [space for space, _ in keys], "parts": [part for _, part in keys]}
    )

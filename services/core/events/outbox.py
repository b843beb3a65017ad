"""The transactional outbox: services record events in the transaction of the change itself.

Nothing is published that was not committed, and nothing committed is left unpublished: the
relay (and, on the PostgreSQL bus, the consumers) read only committed rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db.models import OutboxEvent
from services.core.events.types import TOPIC_OF, EventType


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
    """Add the events to the outbox in the caller's transaction (one statement for a batch)."""
    if not events:
        return
    await session.execute(
        insert(cast(Table, OutboxEvent.__table__)),  # Core: one multi-row INSERT for a batch
        [
            {
                "event_id": event.id,
                "topic": TOPIC_OF[event.type].value,
                "type": event.type.value,
                "partition_key": event.partition_key,
                "event": event.cloudevent(),
            }
            for event in events
        ],
    )

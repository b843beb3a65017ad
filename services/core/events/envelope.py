"""An event as a consumer receives it, whichever bus carried it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    """A CloudEvent read from a topic; `data` is the type's payload (see docs/events.md)."""

    id: uuid.UUID
    type: str
    source: str
    subject: str
    time: datetime
    partition_key: str
    data: dict[str, Any]
    topic: str
    document: dict[str, Any]  # the whole structured CloudEvent, as dead letters keep it

    @classmethod
    def from_cloudevent(cls, topic: str, document: dict[str, Any]) -> Event:
        """Read a structured-mode CloudEvent; a malformed one raises ValueError or KeyError."""
        return cls(
            id=uuid.UUID(str(document["id"])),
            type=str(document["type"]),
            source=str(document["source"]),
            subject=str(document.get("subject", "")),
            time=datetime.fromisoformat(str(document["time"])),
            partition_key=str(document.get("partitionkey", "")),
            data=dict(document.get("data") or {}),
            topic=topic,
            document=document,
        )

"""The bus between the services, with two backends chosen by `VROEGSIGNAAL_BUS`.

`postgres` (default): the outbox table is the log; consumer groups read it by offset.
`kafka`: a relay publishes the outbox to Kafka topics; workers consume in Kafka consumer groups.
Both deliver at least once; `consumer.Applier` makes each event's effect happen exactly once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.config import BusBackend, Settings
from services.core.events.consumer import Committed, Subscription


class BusUnavailable(Exception):
    """The bus cannot be reached: `/readyz` answers 503 with this message."""


class Consumer(ABC):
    """One member of a consumer group: runs until stopped, then leaves the group cleanly."""

    @abstractmethod
    async def run(self) -> None:
        """Consume until `stop()`; the batch in hand is finished and committed first."""

    @abstractmethod
    def stop(self) -> None:
        """Ask `run()` to return after the current batch."""


class Relay(ABC):
    """Moves committed outbox events to the bus in commit order (Kafka only)."""

    @abstractmethod
    async def run(self) -> None:
        """Publish until `stop()`."""

    @abstractmethod
    def stop(self) -> None:
        """Ask `run()` to return after the current batch."""


class Bus(ABC):
    """What the services need of a bus: consumers, a relay where one is needed, a health check."""

    backend: BusBackend

    async def start(self) -> None:  # noqa: B027 - most buses have nothing to start
        """Connect and create what is missing (Kafka topics)."""

    async def close(self) -> None:  # noqa: B027 - nor anything to close
        """Release connections."""

    @abstractmethod
    async def check(self) -> None:
        """Raise BusUnavailable when the bus cannot be reached."""

    @abstractmethod
    def consumer(
        self, subscription: Subscription, *, on_committed: Committed | None = None
    ) -> Consumer:
        """A member of the subscription's consumer group."""

    def relay(self) -> Relay | None:
        """The outbox relay, or None when the outbox is itself the log."""
        return None


def open_bus(
    settings: Settings, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> Bus:
    """The bus the settings choose (not yet started)."""
    if settings.bus is BusBackend.KAFKA:
        from services.core.events.kafka_bus import KafkaBus

        return KafkaBus(settings, database_url, sessions)
    from services.core.events.postgres_bus import PostgresBus

    return PostgresBus(database_url, sessions)

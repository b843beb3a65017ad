"""The Kafka bus: a relay publishes the outbox to topics; workers consume in consumer groups.

The relay is one process at a time (a PostgreSQL advisory lock elects it; the others wait), reads
committed, unpublished events in id order, produces them with `acks=all` keyed by department,
waits for every acknowledgement, and only then marks them published. A crash in between publishes
them again: delivery is at least once, and consumers skip what they applied (`Applier`).

A worker applies a batch in one database transaction, then commits the Kafka offsets. A
rebalance waits (listener lock) until the batch in hand is committed, and records fetched for
partitions this worker no longer owns are dropped. A crash between the two commits redelivers
the batch, whose ids are then skipped: no loss, no double effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import BigInteger

from services.core import metrics
from services.core.config import BusBackend, Settings
from services.core.db.models import OutboxEvent
from services.core.events.bus import Bus, BusUnavailable, Consumer, Relay
from services.core.events.consumer import (
    Applier,
    Committed,
    RetryLater,
    Subscription,
    is_transient,
    park,
)
from services.core.events.envelope import Event
from services.core.events.types import Topic

log = logging.getLogger(__name__)

CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
RELAY_LOCK = (0x5653_0100, 0)  # advisory lock key of the relay leader
_MARK_PUBLISHED = (
    update(OutboxEvent)
    .where(OutboxEvent.id == func.any(bindparam("ids", type_=ARRAY(BigInteger()))))
    .values(published_at=func.now())
)


class KafkaRelay(Relay):
    """Publishes committed outbox events to Kafka, one leader at a time."""

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self._settings = settings
        self._url = database_url
        self._sessions = sessions
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self.published = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        from services.core.db.scratch import connect_args

        while not self._stopping.is_set():
            try:
                leader: asyncpg.Connection = await asyncpg.connect(**connect_args(self._url))
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("relay: database unreachable (%r); retrying", exc)
                await self._pause(2.0)
                continue
            try:
                if await leader.fetchval("SELECT pg_try_advisory_lock($1, $2)", *RELAY_LOCK):
                    await leader.add_listener("vroegsignaal_outbox", self._notified)
                    await self._lead()
                else:
                    await self._pause(2.0)  # another process relays; stand by
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, KafkaError)):
                    raise
                log.warning("relay: %r; retrying", exc)
                await self._pause(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await leader.close()

    def _notified(self, *_: Any) -> None:
        self._wakeup.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _lead(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=self._settings.kafka_enable_idempotence,
            linger_ms=2,
            client_id="vroegsignaal-relay",
        )
        try:
            await producer.start()  # inside: a start that fails (broker down) is stopped too
            while not self._stopping.is_set():
                self._wakeup.clear()
                if await self._publish_batch(producer):
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
        finally:
            await producer.stop()

    async def _publish_batch(self, producer: AIOKafkaProducer) -> bool:
        """Read, produce, mark: no transaction stays open while Kafka acknowledges."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.partition_key)
                    .add_columns(OutboxEvent.event)
                    .where(OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self._batch_size)
                )
            ).all()
        metrics.OUTBOX_BACKLOG.set(len(rows))
        if not rows:
            return False
        sends = [
            await producer.send(
                row.topic,
                value=json.dumps(row.event, separators=(",", ":")).encode(),
                key=row.partition_key.encode(),
                headers=[("content-type", CONTENT_TYPE)],
            )
            for row in rows
        ]
        await asyncio.gather(*sends)  # every acknowledgement (acks=all) before marking
        async with self._sessions() as session, session.begin():
            await session.execute(_MARK_PUBLISHED, {"ids": [row.id for row in rows]})
        self.published += len(rows)
        return True


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are only given up once the batch in hand has committed."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class KafkaConsumer(Consumer):
    """One member of a Kafka consumer group."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        subscription: Subscription,
        *,
        on_committed: Committed | None = None,
        batch_size: int = 500,
        retry_backoff: float = 0.2,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._subscription = subscription
        self._on_committed = on_committed
        self._batch_size = batch_size
        self._retry_backoff = retry_backoff
        self._applier = Applier(sessions, subscription)
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self._subscription.group,
            client_id=f"vroegsignaal-{self._subscription.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_poll_records=self._batch_size,
            max_poll_interval_ms=300_000,
        )
        consumer.subscribe(list(self._subscription.topics), listener=_WaitForBatch(self._lock))
        try:
            await consumer.start()  # inside: a start that fails (broker down) is stopped too
            self.consumer = consumer
            while not self._stopping.is_set():
                fetched = await consumer.getmany(timeout_ms=200, max_records=self._batch_size)
                if fetched:
                    await self._handle(consumer, fetched)
                    await self._measure_lag(consumer)
        finally:
            self.consumer = None
            await consumer.stop()  # leaves the group: the others rebalance at once

    async def _handle(
        self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        async with self._lock:
            owned = consumer.assignment()
            batch = {tp: records for tp, records in fetched.items() if tp in owned and records}
            events: list[Event] = []
            for tp, records in batch.items():
                for record in records:
                    event = await self._read(tp, record)
                    if event is not None:
                        events.append(event)
            if not await self._apply(events):
                return  # stopping mid-retry: nothing committed, the group redelivers
            if self._on_committed is not None:
                await self._on_committed(events)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The partitions moved on; their new owner skips what we applied.
                log.info("group %s: offset commit lost to a rebalance: %r", self._group, exc)

    @property
    def _group(self) -> str:
        return self._subscription.group

    async def _apply(self, events: Sequence[Event]) -> bool:
        """Apply with retries; False when asked to stop before it succeeded."""
        while not self._stopping.is_set():
            try:
                await self._applier.apply(events)
                return True
            except RetryLater as exc:
                log.warning("group %s: %s; retrying", self._group, exc)
                await self._pause(self._retry_backoff * 2 ** min(exc.attempt, 5))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("group %s: database unavailable (%r); retrying", self._group, exc)
                await self._pause(1.0)
        return False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _read(self, tp: TopicPartition, record: ConsumerRecord) -> Event | None:
        """The event in a record; a record that is no CloudEvent is parked at once."""
        try:
            return Event.from_cloudevent(tp.topic, json.loads(record.value))
        except (ValueError, KeyError, TypeError) as exc:
            raw = record.value.decode(errors="replace") if record.value else ""
            placeholder = Event.from_cloudevent(
                tp.topic,
                {
                    "id": str(
                        uuid.uuid5(uuid.NAMESPACE_URL, f"{tp.topic}/{tp.partition}/{record.offset}")
                    ),
                    "type": "malformed",
                    "source": "kafka",
                    "time": "1970-01-01T00:00:00+00:00",
                    "data": {"raw": raw[:10_000]},
                },
            )
            async with self._sessions() as session, session.begin():
                await park(session, self._group, placeholder, f"not a CloudEvent: {exc!r}", 1)
            return None

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag per topic: highwater minus position (Tansu's end_offsets is not exact)."""
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - position)
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(self._group, topic).set(value)


class KafkaBus(Bus):
    """Kafka carries the topics; the outbox is only the relay's queue."""

    backend = BusBackend.KAFKA

    def __init__(
        self, settings: Settings, database_url: str, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self._url = database_url
        self._sessions = sessions

    async def start(self) -> None:
        """Create the topics that are missing, with the configured partitions and replicas."""
        admin = self._admin()
        try:
            await admin.start()
            response = await admin.create_topics(
                [
                    NewTopic(
                        topic.value,
                        num_partitions=self.settings.kafka_partitions,
                        replication_factor=self.settings.kafka_replication_factor,
                    )
                    for topic in Topic
                ]
            )
            for name, code, *_ in getattr(response, "topic_errors", []):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise BusUnavailable(f"cannot create topic {name}: error code {code}")
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka unreachable: {exc!r}") from exc
        finally:
            await admin.close()

    def _admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id="vroegsignaal-admin",
            request_timeout_ms=5_000,
        )

    async def check(self) -> None:
        admin = self._admin()
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.describe_cluster(), 5)
        except (KafkaError, KafkaConnectionError, TimeoutError, OSError) as exc:
            raise BusUnavailable(f"Kafka unreachable: {type(exc).__name__}") from exc
        finally:
            await admin.close()

    def consumer(
        self, subscription: Subscription, *, on_committed: Committed | None = None
    ) -> KafkaConsumer:
        return KafkaConsumer(self.settings, self._sessions, subscription, on_committed=on_committed)

    def relay(self) -> KafkaRelay:
        return KafkaRelay(self.settings, self._url, self._sessions)

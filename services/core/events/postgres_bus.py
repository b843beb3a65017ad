"""The PostgreSQL bus: the outbox table is the log, read by offset per consumer group.

Order and completeness come from the log's partitions: within one, ids grow in commit order (see
`record_events`), so a group's offset per partition is the last id it applied. A consumer group's
processes share the partitions of each topic: each heartbeats in `consumer_members`, takes the
partitions that fall to it (partition modulo the number of live members) with a lease in
`consumer_offsets`, and moves its offsets in the same transaction as its effects, on condition
that it still holds the lease. A process that dies stops
heartbeating; after `session_timeout` the others take its partitions from its last commit.
Consumers wake on `NOTIFY vroegsignaal_outbox` for their own topics (the payload names the topic
a commit wrote) and poll besides, so a lost notification only
delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import BigInteger, Integer, String

from services.core import metrics
from services.core.config import BusBackend
from services.core.db.scratch import connect_args
from services.core.events.bus import Bus, BusUnavailable, Consumer
from services.core.events.consumer import (
    Applier,
    Committed,
    Fence,
    RetryLater,
    Subscription,
    is_transient,
)
from services.core.events.envelope import Event
from services.core.events.types import LOG_PARTITIONS

log = logging.getLogger(__name__)

CHANNEL = "vroegsignaal_outbox"

_FETCH = text(
    """
    SELECT e.id, e.topic, e.partition, e.event
    FROM consumer_offsets c
    CROSS JOIN LATERAL (
        SELECT o.id, o.topic, o.partition, o.event
        FROM outbox_events o
        WHERE o.topic = c.topic AND o.partition = c.partition AND o.id > c."offset"
        ORDER BY o.id
        LIMIT :limit
    ) e
    WHERE c.consumer_group = :group AND c.lease_owner = :member AND c.topic = ANY(:topics)
    ORDER BY e.id
    LIMIT :limit
    """
).bindparams(bindparam("topics", type_=ARRAY(String())))

_ADVANCE = text(
    """
    UPDATE consumer_offsets c
    SET "offset" = v.id, updated_at = now()
    FROM unnest(:topics, :partitions, :ids) AS v(topic, partition, id)
    WHERE c.consumer_group = :group AND c.topic = v.topic AND c.partition = v.partition
      AND c.lease_owner = :member
    """
).bindparams(
    bindparam("topics", type_=ARRAY(String())),
    bindparam("partitions", type_=ARRAY(Integer())),
    bindparam("ids", type_=ARRAY(BigInteger())),
)

_HEARTBEAT = text(
    """
    INSERT INTO consumer_members (consumer_group, member_id, heartbeat_at)
    VALUES (:group, :member, clock_timestamp())
    ON CONFLICT (consumer_group, member_id) DO UPDATE SET heartbeat_at = clock_timestamp()
    """
)
_EXPIRE_MEMBERS = text(
    "DELETE FROM consumer_members WHERE consumer_group = :group"
    " AND heartbeat_at < clock_timestamp() - make_interval(secs => :timeout)"
)
_MEMBERS = text(
    "SELECT member_id FROM consumer_members WHERE consumer_group = :group ORDER BY member_id"
)
_ACQUIRE = text(
    """
    INSERT INTO consumer_offsets AS c (consumer_group, topic, partition, lease_owner,
                                       lease_expires_at)
    SELECT :group, v.topic, v.partition, :member,
           clock_timestamp() + make_interval(secs => :timeout)
    FROM unnest(:topics, :partitions) AS v(topic, partition)
    ON CONFLICT (consumer_group, topic, partition) DO UPDATE
    SET lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at
    WHERE c.lease_owner IS NULL OR c.lease_owner = excluded.lease_owner
       OR c.lease_expires_at < clock_timestamp()
    RETURNING c.topic, c.partition
    """
).bindparams(
    bindparam("topics", type_=ARRAY(String())),
    bindparam("partitions", type_=ARRAY(Integer())),
)
_RELEASE = text(
    """
    UPDATE consumer_offsets SET lease_owner = NULL, lease_expires_at = NULL
    WHERE consumer_group = :group AND lease_owner = :member
      AND NOT ((topic, partition) IN (SELECT * FROM unnest(:topics, :partitions)))
    """
).bindparams(
    bindparam("topics", type_=ARRAY(String())),
    bindparam("partitions", type_=ARRAY(Integer())),
)
_LEAVE = text("DELETE FROM consumer_members WHERE consumer_group = :group AND member_id = :member")
_LAG = text(
    """
    SELECT c.topic, count(o.id)
    FROM consumer_offsets c
    LEFT JOIN outbox_events o ON o.topic = c.topic AND o.partition = c.partition
         AND o.id > c."offset"
    WHERE c.consumer_group = :group AND c.topic = ANY(:topics)
    GROUP BY c.topic
    """
).bindparams(bindparam("topics", type_=ARRAY(String())))


class LeaseLost(Exception):
    """Another member took a partition of this batch: the batch was rolled back."""


def member_name() -> str:
    """Unique per process, readable in `consumer_members`: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def assigned(topics: Sequence[str], members: Sequence[str], me: str) -> set[tuple[str, int]]:
    """The partitions that fall to `me`: partition p of each topic to member p mod n."""
    if me not in members:
        return set()
    index, count = members.index(me), len(members)
    return {(t, p) for t in topics for p in range(LOG_PARTITIONS) if p % count == index}


@dataclass(frozen=True)
class Timing:
    """How often a member looks, beats and gives up on others (seconds)."""

    poll_interval: float = 1.0
    heartbeat_interval: float = 1.0
    session_timeout: float = 10.0
    lag_interval: float = 5.0
    retry_backoff: float = 0.2
    batch_size: int = 500


class PostgresConsumer(Consumer):
    """One member of a consumer group on the PostgreSQL log."""

    def __init__(
        self,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        subscription: Subscription,
        *,
        timing: Timing = Timing(),
        on_committed: Committed | None = None,
        member: str | None = None,
    ) -> None:
        self._url = database_url
        self._sessions = sessions
        self._subscription = subscription
        self._timing = timing
        self._on_committed = on_committed
        self.member = member or member_name()
        self._applier = Applier(sessions, subscription)
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._batch = asyncio.Lock()  # a release of partitions waits for the batch in hand
        self.partitions: set[tuple[str, int]] = set()

    @property
    def _group(self) -> str:
        return self._subscription.group

    @property
    def _topics(self) -> list[str]:
        return list(self._subscription.topics)

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat {self.member}")
        try:
            await self._beat()
            quick = 0.0  # after a notification that found nothing yet: look again soon
            while not self._stopping.is_set():
                listener = await self._listen(listener)
                self._wakeup.clear()
                if await self._step():
                    quick = 0.0
                    continue
                timeout = quick if quick else self._timing.poll_interval
                woken = await self._wait(timeout)
                if woken:
                    quick = 0.005
                elif quick:
                    quick = quick * 2 if quick * 2 < self._timing.poll_interval else 0.0
        finally:
            self._stopping.set()  # also when run() fails: the heartbeat ends after its beat
            await asyncio.gather(heartbeat, return_exceptions=True)
            if listener is not None and not listener.is_closed():
                await listener.close()
            await self._leave()

    async def _wait(self, seconds: float) -> bool:
        """Wait for a notification (True) or the poll interval (False)."""
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _listen(self, listener: asyncpg.Connection | None) -> asyncpg.Connection | None:
        """(Re)open the LISTEN connection; without it the poll still finds everything."""
        if listener is not None and not listener.is_closed():
            return listener
        try:
            connection: asyncpg.Connection = await asyncpg.connect(**connect_args(self._url))
            await connection.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN %s failed, polling only: %r", CHANNEL, exc)
            return None
        return connection

    def _notified(self, _connection: Any, _pid: int, _channel: str, topic: str) -> None:
        """Wake for a commit to one of our topics (an empty payload, from a schema before 0008:
        for any)."""
        if not topic or topic in self._subscription.topics:
            self._wakeup.set()

    async def _step(self) -> bool:
        """Fetch and apply one batch; True when there was anything to do."""
        async with self._batch:
            try:
                events, _ = await self._applier.fetch_and_apply(self._fetch)
                if not events:
                    return False
            except RetryLater as exc:
                log.warning("group %s: %s; retrying", self._group, exc)
                await self._pause(self._timing.retry_backoff * 2 ** min(exc.attempt, 5))
                return True
            except LeaseLost:
                log.info("group %s: a partition moved to another member mid-batch", self._group)
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("group %s: database unavailable (%r); retrying", self._group, exc)
                await self._pause(1.0)
                return False
        if self._on_committed is not None:
            await self._on_committed(events)
        return True

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _fetch(self, session: AsyncSession) -> tuple[list[Event], Fence | None]:
        """The next batch of our partitions, and the fence that moves their offsets past it."""
        rows = (
            await session.execute(
                _FETCH,
                {
                    "group": self._group,
                    "member": self.member,
                    "topics": self._topics,
                    "limit": self._timing.batch_size,
                },
            )
        ).all()
        events: list[Event] = []
        positions: dict[tuple[str, int], int] = {}
        for row in rows:
            events.append(Event.from_cloudevent(row.topic, row.event))
            positions[(row.topic, row.partition)] = row.id  # rows come in id order
        if not events:
            return events, None
        return events, lambda s: self._advance(s, positions)

    async def _advance(self, session: AsyncSession, positions: dict[tuple[str, int], int]) -> None:
        """Move the offsets with the effects, only while this member still holds the leases."""
        keys = list(positions)
        result = await session.execute(
            _ADVANCE,
            {
                "group": self._group,
                "member": self.member,
                "topics": [t for t, _ in keys],
                "partitions": [p for _, p in keys],
                "ids": [positions[k] for k in keys],
            },
        )
        if getattr(result, "rowcount", 0) != len(keys):
            raise LeaseLost

    async def _heartbeat_loop(self) -> None:
        """Beat until stopped; never cancelled mid-transaction, which would strand row locks."""
        since_lag = 0.0
        while True:
            await self._pause(self._timing.heartbeat_interval)
            if self._stopping.is_set():
                return
            try:
                await self._beat()
                since_lag += self._timing.heartbeat_interval
                if since_lag >= self._timing.lag_interval:
                    since_lag = 0.0
                    await self._measure_lag()
            except Exception as exc:
                log.warning("group %s: heartbeat failed: %r", self._group, exc)

    async def _beat(self) -> None:
        """Say we are alive, see who else is, and take or give up partitions to match."""
        params = {"group": self._group, "member": self.member}
        async with self._sessions() as session, session.begin():
            await session.execute(_HEARTBEAT, params)
            await session.execute(
                _EXPIRE_MEMBERS, {"group": self._group, "timeout": self._timing.session_timeout}
            )
            members = list((await session.execute(_MEMBERS, params)).scalars())
        wanted = sorted(assigned(self._topics, members, self.member))
        arrays = {"topics": [t for t, _ in wanted], "partitions": [p for _, p in wanted]}
        if self.partitions - set(wanted):
            async with self._batch, self._sessions() as session, session.begin():
                await session.execute(_RELEASE, {**params, **arrays})
        async with self._sessions() as session, session.begin():
            held = (
                await session.execute(
                    _ACQUIRE, {**params, **arrays, "timeout": self._timing.session_timeout}
                )
            ).all()
        self.partitions = {(row.topic, row.partition) for row in held}

    async def _measure_lag(self) -> None:
        async with self._sessions() as session:
            rows = (
                await session.execute(_LAG, {"group": self._group, "topics": self._topics})
            ).all()
        for topic, lag in rows:
            metrics.CONSUMER_LAG.labels(self._group, topic).set(lag)

    async def _leave(self) -> None:
        """Give the partitions back and leave the group, so the others take over at once."""
        params = {"group": self._group, "member": self.member}
        try:
            async with self._batch, self._sessions() as session, session.begin():
                await session.execute(_RELEASE, {**params, "topics": [], "partitions": []})
                await session.execute(_LEAVE, params)
        except Exception as exc:
            log.warning("group %s: could not leave cleanly (%r); leases expire", self._group, exc)
        self.partitions = set()


class PostgresBus(Bus):
    """The default bus: nothing to run besides the database."""

    backend = BusBackend.POSTGRES

    def __init__(
        self,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        timing: Timing = Timing(),
    ) -> None:
        self._url = database_url
        self._sessions = sessions
        self.timing = timing

    async def check(self) -> None:
        try:
            async with self._sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:
            raise BusUnavailable(f"database unreachable: {type(exc).__name__}") from exc

    def consumer(
        self, subscription: Subscription, *, on_committed: Committed | None = None
    ) -> PostgresConsumer:
        return PostgresConsumer(
            self._url, self._sessions, subscription, timing=self.timing, on_committed=on_committed
        )

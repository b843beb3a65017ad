"""Applying events exactly once, whichever bus delivered them.

Both buses deliver at least once. What makes the effect exactly once is here: in the transaction
of the handler's effects, the event id is claimed in `processed_events`; an id claimed before (a
redelivery, or a second process racing for the same event) is skipped. A handler that fails is
retried; after `max_attempts` failures the event is parked in `dead_letters` with its error, and
its partition moves on (`vroegsignaal events replay` puts it back).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import Uuid

from services.core import metrics
from services.core.db.errors import retryable
from services.core.db.models import DeadLetter
from services.core.events.envelope import Event
from services.core.logs import bound

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
# Applies a whole batch at once: one read and one write per table instead of one per event.
BatchHandler = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]
# Runs inside the batch transaction, after the effects: the PostgreSQL bus moves its offsets here.
Fence = Callable[[AsyncSession], Awaitable[None]]
# Runs after the commit (metrics, and the Kafka offset commit).
Committed = Callable[[Sequence[Event]], Awaitable[None]]
# Reads a batch inside the transaction that applies it (the PostgreSQL bus): its events, and the
# fence that moves its offsets.
Fetch = Callable[[AsyncSession], Awaitable[tuple[Sequence[Event], Fence | None]]]

_CLAIM = text(
    "INSERT INTO processed_events (consumer_group, event_id)"
    " SELECT :group, unnest(:ids) ON CONFLICT DO NOTHING RETURNING event_id"
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))


@dataclass(frozen=True)
class Subscription:
    """A consumer group: which topics it reads and what it does with each event.

    `batch_handler`, when given, applies a batch in one go and must have the effect of `handler`
    run per event in order; when it fails, the batch is applied again event by event with
    `handler`, to find the event that fails.
    """

    group: str
    topics: tuple[str, ...]
    handler: Handler
    max_attempts: int = 5
    batch_handler: BatchHandler | None = None


class _HandlerFailed(Exception):
    """A handler of a batch applied together failed: apply it again event by event."""


class RetryLater(Exception):
    """The batch was rolled back because a handler failed; run it again after a pause."""

    def __init__(self, event: Event, attempt: int, cause: BaseException) -> None:
        super().__init__(f"event {event.id} failed (attempt {attempt}): {cause!r}")
        self.event = event
        self.attempt = attempt


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


def is_transient(exc: BaseException) -> bool:
    """A lost connection or a deadlock is the infrastructure's fault, not the event's: it does
    not count as an attempt."""
    if isinstance(exc, DBAPIError):
        return retryable(exc) or isinstance(exc.orig, OSError)
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))


@dataclass
class Applier:
    """Applies batches of one subscription; remembers failed attempts between retries."""

    sessions: async_sessionmaker[AsyncSession]
    subscription: Subscription
    attempts: dict[uuid.UUID, int] = field(default_factory=dict)

    async def apply(self, events: Sequence[Event], *, fence: Fence | None = None) -> BatchResult:
        """One transaction: claim the ids, run the handlers, fence, commit.

        The handlers of a batch first run together, with no savepoint: a savepoint costs two
        statements a batch, as much as handling a small batch (docs/benchmarks.md, "Rules").
        When one fails, that transaction is rolled back and the batch applied again in a new
        one, event by event, each in a savepoint of its own, to find the event that fails.
        """
        if not events and fence is None:
            return BatchResult()
        try:
            result = await self._apply_together(events, fence)
        except _HandlerFailed:
            result = await self._apply_each(events, fence)
        for event in events:
            self.attempts.pop(event.id, None)
        self._count(events, result)
        return result

    async def _claim(
        self, session: AsyncSession, events: Sequence[Event], result: BatchResult
    ) -> list[Event]:
        """The events not applied before (each once), claimed in this transaction."""
        ids = [e.id for e in events]
        found = await session.execute(_CLAIM, {"group": self.subscription.group, "ids": ids})
        claimed = set(found.scalars().all())
        todo: list[Event] = []
        for event in events:
            if event.id not in claimed:
                result.duplicates += 1
                continue
            claimed.discard(event.id)  # the same id twice in one batch: apply once
            todo.append(event)
        return todo

    async def fetch_and_apply(self, fetch: Fetch) -> tuple[Sequence[Event], BatchResult]:
        """Read a batch and apply it in the same transaction.

        A transaction of its own for the read costs about 1.3 ms of CPU here, as much as a
        small batch's statements (docs/benchmarks.md, "The stack's floors"). A batch read here
        that fails is applied again from memory, event by event, as `apply` does.
        """
        result = BatchResult()
        events: Sequence[Event] = ()
        fence: Fence | None = None
        try:
            async with self.sessions() as session, session.begin():
                events, fence = await fetch(session)
                if events:
                    await self._apply_in(session, events, fence, result)
        except _HandlerFailed:
            result = await self._apply_each(events, fence)
        if events:
            for event in events:
                self.attempts.pop(event.id, None)
            self._count(events, result)
        return events, result

    async def _apply_together(self, events: Sequence[Event], fence: Fence | None) -> BatchResult:
        """All handlers in the batch's transaction; `_HandlerFailed` (rolled back) if one fails."""
        result = BatchResult()
        async with self.sessions() as session, session.begin():
            await self._apply_in(session, events, fence, result)
        return result

    async def _apply_in(
        self,
        session: AsyncSession,
        events: Sequence[Event],
        fence: Fence | None,
        result: BatchResult,
    ) -> None:
        todo = await self._claim(session, events, result)
        if todo:
            try:
                await self._run_handlers(session, todo)
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise _HandlerFailed from exc
        result.applied += len(todo)
        if fence is not None:
            await fence(session)

    async def _run_handlers(self, session: AsyncSession, events: Sequence[Event]) -> None:
        batch = self.subscription.batch_handler
        if batch is not None:
            with bound(group=self.subscription.group, batch=len(events)):
                await batch(session, events)
        else:
            for event in events:
                await self._handle(session, event)

    async def _apply_each(self, events: Sequence[Event], fence: Fence | None) -> BatchResult:
        """Event by event, each under a savepoint: applied, parked, or RetryLater."""
        result = BatchResult()
        async with self.sessions() as session, session.begin():
            for event in await self._claim(session, events, result):
                if await self._apply_one(session, event):
                    result.applied += 1
                else:
                    result.dead_lettered += 1
            if fence is not None:
                await fence(session)
        return result

    async def _handle(self, session: AsyncSession, event: Event) -> None:
        """The handler, with the event's id, type and key on every log line it writes."""
        with bound(
            group=self.subscription.group,
            event_id=event.id,
            event_type=event.type,
            partition_key=event.partition_key,  # the department, for department events
        ):
            await self.subscription.handler(session, event)

    async def _apply_one(self, session: AsyncSession, event: Event) -> bool:
        """True when applied; False when parked as a dead letter; RetryLater to roll back."""
        try:
            async with session.begin_nested():
                await self._handle(session, event)
            return True
        except Exception as exc:
            if is_transient(exc):
                raise
            attempt = self.attempts.get(event.id, 0) + 1
            self.attempts[event.id] = attempt
            if attempt < self.subscription.max_attempts:
                raise RetryLater(event, attempt, exc) from exc
            log.error(
                "event %s (%s) failed %d times in group %s; parked as a dead letter: %r",
                event.id,
                event.type,
                attempt,
                self.subscription.group,
                exc,
            )
            await park(session, self.subscription.group, event, repr(exc), attempt)
            return False

    def _count(self, events: Sequence[Event], result: BatchResult) -> None:
        group = self.subscription.group
        now = datetime.now(UTC)
        by_topic: dict[str, list[Event]] = {}
        for event in events:
            by_topic.setdefault(event.topic, []).append(event)
        for topic, applied in by_topic.items():  # each label looked up once a batch
            metrics.EVENTS_APPLIED.labels(group, topic).inc(len(applied))
            age = metrics.EVENT_AGE.labels(group, topic)
            for event in applied:
                age.observe(max(0.0, (now - event.time).total_seconds()))
        if result.duplicates:
            metrics.EVENTS_DUPLICATE.labels(group).inc(result.duplicates)
        if result.dead_lettered:
            metrics.DEAD_LETTERS.labels(group).inc(result.dead_lettered)


async def park(session: AsyncSession, group: str, event: Event, error: str, attempts: int) -> None:
    """Record a dead letter (its id stays claimed, so a redelivery does not retry it)."""
    await session.execute(
        pg_insert(DeadLetter)
        .values(
            consumer_group=group,
            event_id=event.id,
            topic=event.topic,
            event=event.document,
            error=error[:4000],
            attempts=attempts,
        )
        .on_conflict_do_update(
            index_elements=["consumer_group", "event_id"],
            set_={"error": error[:4000], "attempts": attempts, "replayed_at": None},
        )
    )

"""The delivery worker: claims due deliveries, sends each once, records what came of it.

Any number of workers (one per notifier replica) share the queue in PostgreSQL: the claim step
decides who sends what (queue.py), so none sends a delivery another holds. A worker wakes on
`NOTIFY vroegsignaal_deliveries` (sent when a delivery is queued or retried by hand), when one of
its own sends finishes (the next delivery of that alert, or a free slot at that endpoint, may now
be claimable), and on a short poll besides, so a lost notification or a retry falling due only
delays. Stopping finishes the calls under way (each bounded by the timeout) and records them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Integer, SmallInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.types import Uuid

from services.core.config import Settings
from services.core.db.scratch import connect_args
from services.core.domain import DeliveryChannel
from services.notify.deliveries.enqueue import WAKE_CHANNEL
from services.notify.deliveries.mail import SMTP_TIMEOUT_SECONDS, send_email
from services.notify.deliveries.outcome import Outcome
from services.notify.deliveries.queue import Claimed, EndpointPolicy, claim_due, record_outcome
from services.notify.deliveries.secrets import SecretBox, SecretUnreadable, secret_box
from services.notify.deliveries.ssrf import Resolver, system_resolver
from services.notify.deliveries.webhook import EndpointClients, post_webhook

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
POLL_INTERVAL_SECONDS = 1.0
CAPACITY = 64  # sends under way in one worker at once, over all endpoints
LEASE_MARGIN = timedelta(seconds=60)  # beyond the longest call, before another worker takes over
RECORD_TRIES = 3
RECORD_BATCH = 100  # finished attempts recorded in one transaction at most
LISTEN_RETRY_SECONDS = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def _database_url(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    bind = sessions.kw.get("bind")
    if isinstance(bind, AsyncEngine):
        return bind.url.render_as_string(hide_password=False)
    return None


class DeliveryWorker:
    """One process's share of the delivery queue; `start`, then `stop`."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utc_now,
        resolver: Resolver = system_resolver,
        rng: random.Random | None = None,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        capacity: int = CAPACITY,
        box: SecretBox | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._resolver = resolver
        self._rng = rng
        self._poll_interval = poll_interval
        self._capacity = capacity
        # Made now, so a production process without VROEGSIGNAAL_SECRET_KEY refuses to start.
        self._box = box or secret_box(settings)
        self._policy = EndpointPolicy(
            disable_after=settings.webhook_disable_after,
            public_url=settings.public_url,
            timezone=settings.tz,
        )
        self._lease = (
            timedelta(seconds=max(settings.webhook_timeout_seconds, SMTP_TIMEOUT_SECONDS))
            + LEASE_MARGIN
        )
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._rounds = 0  # claim rounds started
        self._idle_round = 0  # the last round that found nothing due with nothing under way
        self._idle = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._clients = EndpointClients(timeout=settings.webhook_timeout_seconds)
        self._recorder = _Recorder(self._record)
        self._listener: asyncpg.Connection | None = None
        self._listen_again_at = 0.0

    def wake(self) -> None:
        """Look for due work now (after queueing in this process, or moving a test clock)."""
        self._wakeup.set()

    async def settled(self, within: float = 10.0) -> None:
        """Wait until a fresh claim round finds nothing due and no send is under way (tests and
        benchmarks: after moving the clock, `await worker.settled()`)."""
        # Only a round that starts from now counts: one under way may have read the clock
        # before it was moved.
        wanted = self._rounds + 1
        self.wake()
        async with asyncio.timeout(within):
            while self._idle_round < wanted:
                self._idle.clear()
                await self._idle.wait()

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="delivery worker")

    async def stop(self) -> None:
        """Claim nothing more, let the calls under way finish and be recorded, then close."""
        self._stopping.set()
        self._wakeup.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._tasks:
            grace = self._settings.webhook_timeout_seconds + 5
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:  # their leases lapse and another worker sends them again
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._recorder.aclose()
        await self._clients.aclose()
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._listen()
            self._wakeup.clear()
            self._rounds += 1
            this_round = self._rounds
            free = self._capacity - len(self._tasks)
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                claimed = await self._claim(free)
            except Exception:
                log.exception("claiming deliveries failed; trying again shortly")
                claimed = []
                await self._wait(max(self._poll_interval, 1.0))
                continue
            if not claimed and not self._tasks:
                self._idle_round = this_round
                self._idle.set()
            for item in claimed:
                task = asyncio.create_task(self._deliver(item), name=f"delivery {item.id}")
                self._tasks.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # a full batch: there may be more
            took = loop.time() - started
            await self._wait(self._poll_interval)
            await self._pace(started + 2 * took - loop.time())

    async def _pace(self, seconds: float) -> None:
        """Wait before claiming again after a claim that found less than it could take.

        A claim looks at up to `SCAN_LIMIT` due deliveries (queue.py), and claims are
        serialised over all workers. With deliveries held back by the limit per endpoint, every
        wake-up (each queued delivery's NOTIFY, each finished call) would claim again, find
        little, and keep PostgreSQL busy with claims: 97 % of its active time in a backlog
        (`bench/e2e.py`, when a claim still read every due delivery). Starting the next claim
        no sooner than the last one took keeps claims to at most half of the time; a short
        claim costs a short wait.
        """
        if seconds > 0 and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wakeup.set()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def _listen(self) -> None:
        """(Re)open the LISTEN connection; without it the poll still finds everything."""
        if self._listener is not None and not self._listener.is_closed():
            return
        url = _database_url(self._sessions)
        loop = asyncio.get_running_loop()
        if url is None or loop.time() < self._listen_again_at:
            return
        try:
            listener: asyncpg.Connection = await asyncpg.connect(**connect_args(url))
            await listener.add_listener(WAKE_CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN %s failed, polling only for now: %r", WAKE_CHANNEL, exc)
            self._listen_again_at = loop.time() + LISTEN_RETRY_SECONDS
            return
        self._listener = listener

    def _notified(self, *_: Any) -> None:
        self._wakeup.set()

    async def _claim(self, free: int) -> list[Claimed]:
        if free <= 0:
            return []
        async with self._sessions() as session, session.begin():
            return await claim_due(
                session,
                now=self._clock(),
                limit=free,
                max_in_flight=self._settings.webhook_max_in_flight,
                lease=self._lease,
            )

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            outcome = await self._send(claimed)
        except Exception as exc:  # a bug must not kill the worker, and must show in the log
            log.exception("delivery %s: sending failed unexpectedly", claimed.id)
            outcome = Outcome.failure(f"internal error: {type(exc).__name__}")
        await self._recorder.record(claimed, outcome)

    async def _send(self, claimed: Claimed) -> Outcome:
        if claimed.channel is DeliveryChannel.EMAIL:
            return await send_email(
                self._settings.smtp_url,
                mail_from=self._settings.mail_from,
                payload=claimed.payload,
                delivery_id=str(claimed.id),
            )
        if claimed.url is None or claimed.secret_encrypted is None:
            return Outcome.failure("the endpoint no longer exists", permanent=True)
        try:
            secret = self._box.decrypt(claimed.secret_encrypted)
        except SecretUnreadable as exc:
            return Outcome.failure(str(exc))
        return await post_webhook(
            self._clients,
            url=claimed.url,
            secret=secret,
            message_id=str(claimed.id),
            body=json.dumps(claimed.payload, ensure_ascii=False, separators=(",", ":")),
            seconds=self._settings.webhook_timeout_seconds,
            allow_private=self._settings.webhook_allow_private,
            resolver=self._resolver,
        )

    async def _record(self, batch: list[tuple[Claimed, Outcome]]) -> None:
        """Record finished attempts: the successes together in one transaction, the failures
        (rare, and each with its retry to schedule) one by one; when the transaction of the
        successes fails, those one by one too (a few tries each, since a call cannot be
        undone)."""
        succeeded = [(claimed, outcome) for claimed, outcome in batch if outcome.ok]
        if succeeded:
            try:
                async with self._sessions() as session, session.begin():
                    await record_successes(session, succeeded, now=self._clock())
            except Exception:
                log.warning(
                    "recording %d successes together failed; one by one",
                    len(succeeded),
                    exc_info=True,
                )
            else:
                succeeded = []
        for claimed, outcome in [*succeeded, *((c, o) for c, o in batch if not o.ok)]:
            await self._record_one(claimed, outcome)

    async def _record_one(self, claimed: Claimed, outcome: Outcome) -> None:
        for attempt in range(RECORD_TRIES):
            try:
                async with self._sessions() as session, session.begin():
                    await record_outcome(
                        session,
                        claimed,
                        outcome,
                        now=self._clock(),
                        policy=self._policy,
                        rng=self._rng,
                    )
                return
            except Exception:
                if attempt == RECORD_TRIES - 1:
                    # The lease lapses and the delivery is sent again: at least once.
                    log.exception("delivery %s: recording the attempt failed", claimed.id)
                    return
                await asyncio.sleep(0.2 * 4**attempt)


_LOCK_ENDPOINTS = text(
    "SELECT id FROM webhook_subscriptions WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))
_ENDPOINTS_SUCCEEDED = text(
    "UPDATE webhook_subscriptions SET last_success_at = :now, failing_since = NULL"
    " WHERE id = ANY(:ids)"
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))
_LOCK_DELIVERIES = text(
    "SELECT id, claim_token FROM deliveries WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))
_LOG_ATTEMPTS = text(
    "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error)"
    " SELECT a.id, :now, a.status_code, a.duration_ms, NULL"
    " FROM unnest(:ids, :status_codes, :durations) AS a (id, status_code, duration_ms)"
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid())),
    bindparam("status_codes", type_=ARRAY(SmallInteger())),
    bindparam("durations", type_=ARRAY(Integer())),
)
_DELIVERIES_SUCCEEDED = text(
    "UPDATE deliveries SET status = 'succeeded', attempts = attempts + 1,"
    " last_attempt_at = :now, claim_token = NULL, claimed_until = NULL,"
    " next_attempt_at = NULL, last_error = NULL"
    " WHERE id = ANY(:ids)"
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))


async def record_successes(
    session: AsyncSession, succeeded: Sequence[tuple[Claimed, Outcome]], *, now: datetime
) -> None:
    """What `record_outcome` does for each successful attempt, for many in five statements.

    The same rows as one `record_outcome` per attempt, in the same lock order (the endpoints,
    then the deliveries; each in id order, so two workers recording at once cannot deadlock;
    the endpoints `FOR NO KEY UPDATE`, the lock their UPDATE takes anyway, which lets the
    notifier queue deliveries to them meanwhile: its inserts hold `FOR KEY SHARE` on them):
    each endpoint's health (last success, no longer failing); the attempt in the delivery log
    for every delivery that still exists; and `succeeded` for those whose lease this worker
    still holds (a delivery retried by hand or taken over meanwhile keeps its new state).
    Recording each success on its own cost four round trips and a commit per delivery, and
    recordings to one endpoint queued behind each other's lock on the endpoint's row.
    """
    endpoints = sorted({c.subscription_id for c, _ in succeeded if c.subscription_id})
    if endpoints:
        await session.execute(_LOCK_ENDPOINTS, {"ids": endpoints})
        await session.execute(_ENDPOINTS_SUCCEEDED, {"ids": endpoints, "now": now})
    held = {
        row.id: row.claim_token
        for row in await session.execute(_LOCK_DELIVERIES, {"ids": [c.id for c, _ in succeeded]})
    }
    logged = [(c, o) for c, o in succeeded if c.id in held]
    if not logged:
        return
    await session.execute(
        _LOG_ATTEMPTS,
        {
            "now": now,
            "ids": [c.id for c, _ in logged],
            "status_codes": [o.status_code for _, o in logged],
            "durations": [o.duration_ms for _, o in logged],
        },
    )
    mine = [c.id for c, _ in logged if held[c.id] == c.token]
    if mine:
        await session.execute(_DELIVERIES_SUCCEEDED, {"ids": mine, "now": now})


class _Recorder:
    """Records finished attempts in batches: what finished while one batch was being recorded
    goes into the next, in one transaction (group commit).

    Every attempt to an endpoint updates that endpoint's row (its health), so recording each
    attempt in a transaction of its own made the recordings of one endpoint wait on each other's
    row lock and commit one at a time, each holding one of the process's database connections
    meanwhile: with 50 calls in flight to one endpoint, fewer than 100 deliveries per second
    (`bench/e2e_delivery.py`). One transaction per batch takes the lock and commits once.
    """

    def __init__(self, record: Callable[[list[tuple[Claimed, Outcome]]], Awaitable[None]]) -> None:
        self._record = record
        self._pending: list[tuple[Claimed, Outcome, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def record(self, claimed: Claimed, outcome: Outcome) -> None:
        """Returns once the attempt is recorded (or given up on: its lease then lapses)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="delivery recorder")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((claimed, outcome, done))
        self._arrived.set()
        await asyncio.shield(done)  # a stop that cancels the send still lets it be recorded

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._pending = self._pending[:RECORD_BATCH], self._pending[RECORD_BATCH:]
            if self._pending:
                self._arrived.set()
            try:
                await self._record([(claimed, outcome) for claimed, outcome, _ in batch])
            except Exception:  # never: _record logs and gives up per delivery
                log.exception("recording deliveries failed")
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@asynccontextmanager
async def delivery_worker(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    clock: Clock = utc_now,
    resolver: Resolver = system_resolver,
    rng: random.Random | None = None,
    poll_interval: float = POLL_INTERVAL_SECONDS,
) -> AsyncIterator[DeliveryWorker]:
    """Run a delivery worker while the context is open (a `create_app` background context:
    `background=[lambda app: delivery_worker(app.state.settings, app.state.sessions)]`)."""
    worker = DeliveryWorker(
        settings, sessions, clock=clock, resolver=resolver, rng=rng, poll_interval=poll_interval
    )
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()

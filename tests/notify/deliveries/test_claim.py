"""The claim of due deliveries (queue.py) against its rules written out in Python, on queues of
every shape: due (new first, then retries whose time came, oldest first), in order per alert and
recipient, active endpoints only, at most `max_in_flight` calls per endpoint counting those in
flight, looking at no more than the oldest `SCAN_LIMIT` due rows."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.organisations import resolve_organisation
from services.core.db.models import Delivery, WebhookSubscription
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.notify.deliveries import queue
from tests.ingest.conftest import PROVIDER_A, build_world

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    seq: int
    subscription_id: uuid.UUID | None
    email: str | None
    ordering_key: str | None
    status: DeliveryStatus
    next_attempt_at: datetime | None
    claimed_until: datetime | None


def expected(
    rows: list[Row], active: set[uuid.UUID], *, scan: int, limit: int, max_in_flight: int
) -> list[uuid.UUID]:
    """The claim's rules, one by one."""
    pending = [r for r in rows if r.status is DeliveryStatus.PENDING]

    def blocked(row: Row) -> bool:
        return row.ordering_key is not None and any(
            e.ordering_key == row.ordering_key
            and e.seq < row.seq
            and (
                (e.subscription_id is not None and e.subscription_id == row.subscription_id)
                or (e.email is not None and e.email == row.email)
            )
            for e in pending
        )

    due = [
        r
        for r in pending
        if (r.next_attempt_at is None or r.next_attempt_at <= NOW)
        and (r.subscription_id is None or r.subscription_id in active)
        and not blocked(r)
    ]
    due.sort(key=lambda r: (r.next_attempt_at is not None, r.next_attempt_at or NOW, r.seq))
    due = due[:scan]
    in_flight: dict[uuid.UUID, int] = {}
    for r in rows:
        if r.subscription_id and r.claimed_until is not None and r.claimed_until > NOW:
            in_flight[r.subscription_id] = in_flight.get(r.subscription_id, 0) + 1
    place: dict[uuid.UUID, int] = {}
    kept = []
    for r in due:
        if r.subscription_id is None:
            kept.append(r.id)
            continue
        place[r.subscription_id] = place.get(r.subscription_id, 0) + 1
        if place[r.subscription_id] + in_flight.get(r.subscription_id, 0) <= max_in_flight:
            kept.append(r.id)
    return kept[:limit]


async def _queue(
    session: AsyncSession,
    rng: random.Random,
    organisation_id: uuid.UUID,
    endpoints: list[uuid.UUID],
) -> list[Row]:
    """A queue of random shape: new, due and future retries, in flight, done; a few alerts."""
    made: list[dict[str, Any]] = []
    for _ in range(rng.randint(5, 60)):
        webhook = rng.random() < 0.75
        status = rng.choices(
            [DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED], [8, 1, 1]
        )[0]
        shape = rng.choice(["new", "due", "later", "in_flight", "lapsed"])
        next_attempt_at = claimed_until = None
        if shape == "due":
            next_attempt_at = NOW - timedelta(seconds=rng.randint(1, 5) * 60)
        elif shape == "later":
            next_attempt_at = NOW + timedelta(minutes=rng.randint(1, 60))
        elif shape in ("in_flight", "lapsed"):  # a claim moves the next attempt to its lease
            minutes = rng.randint(1, 3) * (1 if shape == "in_flight" else -1)
            claimed_until = next_attempt_at = NOW + timedelta(minutes=minutes)
        made.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "channel": DeliveryChannel.WEBHOOK if webhook else DeliveryChannel.EMAIL,
                "organisation_id": organisation_id,
                "subscription_id": rng.choice(endpoints) if webhook else None,
                "email": None if webhook else rng.choice(["a@example.nl", "b@example.nl"]),
                "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "event_type": "alert.opened",
                "payload": {},
                "status": status,
                "ordering_key": rng.choice([None, "alert:1", "alert:2", "alert:3", "key:4"]),
                "next_attempt_at": None
                if status is not DeliveryStatus.PENDING
                else next_attempt_at,
                "claimed_until": None if status is not DeliveryStatus.PENDING else claimed_until,
            }
        )
    await session.execute(insert(cast(Table, Delivery.__table__)), made)
    rows = await session.execute(
        select(
            Delivery.id,
            Delivery.seq,
            Delivery.subscription_id,
            Delivery.email,
            Delivery.ordering_key,
            Delivery.status,
            Delivery.next_attempt_at,
            Delivery.claimed_until,
        )
    )
    return [Row(*row) for row in rows.all()]


@pytest.mark.parametrize("scan", [3, 500])
async def test_a_claim_takes_what_the_rules_say_in_their_order(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, scan: int
) -> None:
    monkeypatch.setattr(queue, "SCAN_LIMIT", scan)
    rng = random.Random(scan)  # noqa: S311 - repeatable queues, not secrets
    async with sessions() as session, session.begin():
        await build_world(session)
        organisation = await resolve_organisation(session, PROVIDER_A)
        endpoints = []
        for n, on in enumerate((True, True, True, False)):
            endpoint = WebhookSubscription(
                organisation_id=organisation.id,
                url=f"https://hooks.example.nl/{n}",
                event_types=["alert.opened"],
                secret_encrypted="unused",
                active=on,
            )
            session.add(endpoint)
            await session.flush()
            endpoints.append(endpoint)
    active = {e.id for e in endpoints if e.active}
    claimed_some = 0
    for _ in range(40):
        async with sessions() as session, session.begin():
            await session.execute(delete(Delivery))
            rows = await _queue(session, rng, organisation.id, [e.id for e in endpoints])
        limit, max_in_flight = rng.choice([(1, 1), (5, 2), (64, 4)])
        want = expected(rows, active, scan=scan, limit=limit, max_in_flight=max_in_flight)
        async with sessions() as session, session.begin():
            got = await queue.claim_due(
                session,
                now=NOW,
                limit=limit,
                max_in_flight=max_in_flight,
                lease=timedelta(seconds=70),
            )
            await session.rollback()
        assert [c.id for c in got] == want
        claimed_some += bool(got)
    assert claimed_some >= 10  # the shapes were not all empty

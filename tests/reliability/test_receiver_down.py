"""A webhook receiver that is down for longer than the whole retry window, on the real topology
(`vroegsignaal ingest`, `rules` and `notify` as processes; see tests/reliability/test_faults.py).

Signals raise alerts; the coordinating insurer's endpoint first refuses every connection (nothing
listens) and then answers `503` (a maintenance page) until every delivery has used all its
attempts and is `failed`. Then the receiver comes back, the insurer replays the failed
deliveries by hand (`POST /v1/deliveries/retry`, its own API key), and every event arrives
exactly once, under the `webhook-id` it had all along, with a signature the reference
`standardwebhooks` library verifies.

The schedule (services/notify/deliveries/schedule.py) spreads eight attempts over more than 27
hours and has no setting to shorten it, so the test fast-forwards: whenever a delivery waits for
its next attempt, its `next_attempt_at` is moved to now in the database (the same kind of
fast-forward as the lapsed lease in test_faults.py). Everything else is the service's own doing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Delivery
from services.core.domain import DeliveryStatus
from services.notify.deliveries.enqueue import WAKE_CHANNEL
from services.notify.deliveries.schedule import MAX_ATTEMPTS
from tests.reliability.test_faults import Topology, _env, _staffing, _teams
from tests.support.receivers import WebhookReceiver, free_port

ALERTS = 8
REFUSED = 4  # attempts made while nothing listens; the rest are answered 503

_FAST_FORWARD = text(
    "UPDATE deliveries SET next_attempt_at = now()"
    " WHERE subscription_id = :subscription AND status = 'pending'"
    " AND claimed_until IS NULL AND attempts < :through AND next_attempt_at > now()"
)


@pytest.fixture
def topology(database_url: str, tmp_path: Path) -> Iterator[Topology]:
    running = Topology(_env(database_url, tmp_path / "data"), tmp_path)
    yield running
    running.close()


async def _rows(sessions: async_sessionmaker[AsyncSession], subscription: uuid.UUID) -> list[Any]:
    async with sessions() as session:
        return list(
            await session.execute(
                select(
                    Delivery.id, Delivery.status, Delivery.attempts, Delivery.claimed_until
                ).where(Delivery.subscription_id == subscription)
            )
        )


async def _attempts_through(
    sessions: async_sessionmaker[AsyncSession],
    subscription: uuid.UUID,
    through: int,
    within: float = 40.0,
) -> None:
    """Until each of the ALERTS deliveries has made `through` attempts (or has failed for
    good), none of them in flight; each wait of the schedule before that is cut short."""
    async with asyncio.timeout(within):
        while True:
            rows = await _rows(sessions, subscription)
            idle = len(rows) == ALERTS and all(r.claimed_until is None for r in rows)
            if idle and all(
                r.attempts >= through or r.status is not DeliveryStatus.PENDING for r in rows
            ):
                return
            async with sessions() as session, session.begin():
                moved = await session.execute(
                    _FAST_FORWARD, {"subscription": subscription, "through": through}
                )
                if getattr(moved, "rowcount", 0):
                    await session.execute(text(f"SELECT pg_notify('{WAKE_CHANNEL}', '')"))
            await asyncio.sleep(0.1)


async def test_a_receiver_down_past_the_retry_window_gets_every_event_once_after_a_replay(
    topology: Topology, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _teams(sessions)
    await topology.start("ingest", "rules", "notify")
    notify = topology["notify"].base
    insurer = world.auth("insurer_zk")
    # Its address is known (registered) while nothing listens there.
    receiver = WebhookReceiver(port=free_port(), fail_next=10**9, fail_status=503)
    async with httpx.AsyncClient(timeout=10) as client:
        made = await client.post(
            f"{notify}/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["alert.opened"], "description": "EPD"},
            headers=insurer,
        )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        subscription = uuid.UUID(made.json()["id"])
        posted = await client.post(
            f"{topology['ingest'].base}/v1/signals",
            json={"signals": [_staffing(f"FACT-{n:03d}") for n in range(ALERTS)]},
            headers=world.auth("provider_a"),
        )
        assert posted.status_code == 202, posted.text

        await _attempts_through(sessions, subscription, REFUSED)  # connections refused
        async with receiver:  # up again, but answering 503 to everything
            await _attempts_through(sessions, subscription, MAX_ATTEMPTS)
            calls = receiver.calls
            await asyncio.sleep(2)
            assert receiver.calls == calls, "a failed delivery was still tried"

            log = await client.get(
                f"{notify}/v1/deliveries",
                params={"subscription": str(subscription), "status": "failed"},
                headers=insurer,
            )
            assert log.status_code == 200, log.text
            failed = log.json()["items"]
            assert len(failed) == ALERTS, [d["status"] for d in failed]
            for delivery in failed:
                tries = delivery["attempts"]
                assert delivery["attempt_count"] == len(tries) == MAX_ATTEMPTS, delivery
                assert [t["status_code"] for t in tries] == [None] * REFUSED + [503] * (
                    MAX_ATTEMPTS - REFUSED
                ), tries
                assert all(t["error"] for t in tries), tries
            endpoint = await client.get(
                f"{notify}/v1/subscriptions/{subscription}", headers=insurer
            )
            assert endpoint.json()["active"] is True, "a day's outage must not disable it"

            # The receiver is fixed; its owner replays what failed.
            receiver.fail_next = 0
            replay = await client.post(
                f"{notify}/v1/deliveries/retry",
                json={"subscription": str(subscription)},
                headers=insurer,
            )
            assert replay.status_code == 202, replay.text
            assert replay.json() == {"retried": ALERTS}
            await receiver.wait_for(ALERTS, within=30)
            await asyncio.sleep(2)  # a duplicate would arrive now

        after = await client.get(
            f"{notify}/v1/deliveries", params={"subscription": str(subscription)}, headers=insurer
        )
    failed_ids = {d["id"] for d in failed}
    # Every attempt of the outage that reached the receiver carried its delivery's webhook-id.
    assert Counter(receiver.failed_ids) == dict.fromkeys(failed_ids, MAX_ATTEMPTS - REFUSED)
    # After the replay: each event once, under the same webhook-id, signature verified.
    assert Counter(receiver.ids) == dict.fromkeys(failed_ids, 1)
    assert receiver.refused_signatures == []
    alerts = {call.payload["data"]["alert"]["id"] for call in receiver.accepted}
    assert alerts == {d["alert_id"] for d in failed} and len(alerts) == ALERTS
    departments = {call.payload["data"]["alert"]["department"] for call in receiver.accepted}
    assert departments == {f"FACT-{n:03d}" for n in range(ALERTS)}
    assert {call.payload["type"] for call in receiver.accepted} == {"alert.opened"}
    # The delivery log shows it: succeeded, counting afresh from the replay, history kept.
    assert after.status_code == 200, after.text
    assert len(after.json()["items"]) == ALERTS
    for delivery in after.json()["items"]:
        assert delivery["status"] == "succeeded", delivery
        assert delivery["attempt_count"] == 1
        assert len(delivery["attempts"]) == MAX_ATTEMPTS + 1
        assert delivery["attempts"][-1]["status_code"] == 204

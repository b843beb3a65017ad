"""The delivery worker against a real receiver and real PostgreSQL: delivered once and verified,
retried on the schedule (a hand-moved clock), failed, retried by hand; in order per alert; never
more than the limit in flight; never twice with two workers; the SSRF guard at delivery time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Delivery, WebhookSubscription
from services.core.domain import DeliveryStatus
from services.notify.deliveries import enqueue_webhooks
from services.notify.deliveries.schedule import JITTER, MAX_ATTEMPTS, RETRY_DELAYS
from services.notify.deliveries.worker import DeliveryWorker
from tests.ingest.conftest import World
from tests.notify.deliveries.conftest import (
    HandClock,
    alert_event,
    deliveries_of,
    delivery_settings,
    make_alert,
    queue_alert_events,
    register,
    running_app,
)
from tests.support.receivers import WebhookReceiver


async def _exhaust(worker: DeliveryWorker, clock: HandClock, rounds: int = MAX_ATTEMPTS) -> None:
    """Move the clock past each retry in turn, letting the worker try every time."""
    for _ in range(rounds):
        await worker.settled()
        clock.advance(RETRY_DELAYS[-1] * (1 + JITTER) + timedelta(minutes=1))
    await worker.settled()


async def test_an_event_is_delivered_once_signed_and_verified_by_the_receiver(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        subscription, receiver.secret = await register(
            running.client, world, "provider_a", receiver.url
        )
        alert = await make_alert(sessions)
        event = alert_event("alert.opened", alert_id=alert)
        async with sessions() as session, session.begin():
            queued = await enqueue_webhooks(
                session, organisation_id=provider_a_id, event=event, alert_id=alert
            )
        async with sessions() as session, session.begin():  # the same event again: a replay
            again = await enqueue_webhooks(
                session, organisation_id=provider_a_id, event=event, alert_id=alert
            )
        [received] = await receiver.wait_for(1)
        await running.worker.settled()

    assert (queued, again) == (1, 0)
    assert received.payload == {
        "type": "alert.opened",
        "timestamp": event.time.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
    assert received.headers["webhook-signature"].startswith("v1,")
    assert receiver.calls == 1 and not receiver.refused_signatures
    [(delivery, attempts)] = await deliveries_of(sessions)
    assert received.webhook_id == str(delivery.id)
    assert (delivery.status, delivery.attempts, delivery.subscription_id) == (
        DeliveryStatus.SUCCEEDED,
        1,
        subscription,
    )
    assert [(a.status_code, a.error) for a in attempts] == [(204, None)]
    assert attempts[0].duration_ms >= 0
    async with sessions() as session:
        endpoint = await session.get(WebhookSubscription, subscription)
    assert endpoint is not None and endpoint.last_success_at is not None


async def test_only_active_endpoints_that_want_the_event_type_get_it(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        await register(running.client, world, "provider_a", receiver.url, ["alert.resolved"])
        deleted, _ = await register(running.client, world, "provider_a", receiver.url)
        await running.client.delete(
            f"/v1/subscriptions/{deleted}", headers=world.auth("provider_a")
        )
        await register(running.client, world, "provider_b", receiver.url)  # another org
        queued = await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
    assert queued == 0


async def test_a_failing_receiver_is_retried_on_the_schedule_then_failed_then_retried_by_hand(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        subscription, receiver.secret = await register(
            running.client, world, "provider_a", receiver.url
        )
        receiver.fail_next = 1000
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        # Each retry waits its turn on the schedule: nothing happens before it is due.
        for attempt in range(1, MAX_ATTEMPTS):
            await running.worker.settled()
            [(delivery, attempts)] = await deliveries_of(sessions)
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, attempt)
            assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
            wait = delivery.next_attempt_at - delivery.last_attempt_at
            assert RETRY_DELAYS[attempt] <= wait <= RETRY_DELAYS[attempt] * (1 + JITTER)
            clock.advance(wait - timedelta(milliseconds=1))
            await running.worker.settled()
            assert receiver.calls == attempt  # not yet due
            clock.advance(timedelta(milliseconds=1))
        await running.worker.settled()
        [(delivery, attempts)] = await deliveries_of(sessions)
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
        assert receiver.calls == MAX_ATTEMPTS
        assert [a.status_code for a in attempts] == [500] * MAX_ATTEMPTS
        assert attempts[-1].error == "HTTP 500: receiver down for maintenance"
        assert attempts[-1].attempted_at - attempts[0].attempted_at > timedelta(days=1)

        # The receiver is back: a manual retry delivers it, once.
        receiver.fail_next = 0
        retried = await running.client.post(
            f"/v1/deliveries/{delivery.id}/retry", headers=world.auth("provider_a")
        )
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "pending" and retried.json()["attempt_count"] == 0
        await receiver.wait_for(1)
        await running.worker.settled()
        again = await running.client.post(
            f"/v1/deliveries/{delivery.id}/retry", headers=world.auth("provider_a")
        )
        assert again.status_code == 409  # succeeded: nothing to retry

        # Three more fail for good; a bulk retry of the endpoint sends each exactly once.
        receiver.fail_next = 1000
        await queue_alert_events(
            sessions,
            provider_a_id,
            ("alert.opened", None),
            ("alert.escalated", None),
            ("alert.resolved", None),
        )
        await _exhaust(running.worker, clock)
        statuses = [d.status for d, _ in await deliveries_of(sessions)]
        assert statuses == [DeliveryStatus.SUCCEEDED] + [DeliveryStatus.FAILED] * 3
        receiver.fail_next = 0
        bulk = await running.client.post(
            "/v1/deliveries/retry",
            json={"subscription": str(subscription)},
            headers=world.auth("provider_a"),
        )
        assert bulk.status_code == 202 and bulk.json() == {"retried": 3}
        await receiver.wait_for(4)
        await running.worker.settled()
    assert len(receiver.ids) == len(set(receiver.ids)) == 4
    assert all(d.status is DeliveryStatus.SUCCEEDED for d, _ in await deliveries_of(sessions))


async def test_one_alerts_deliveries_keep_their_order_while_an_earlier_one_is_retried(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        _, receiver.secret = await register(
            running.client,
            world,
            "provider_a",
            receiver.url,
            ["alert.opened", "alert.escalated", "alert.resolved"],
        )
        first, other = await make_alert(sessions), await make_alert(sessions)
        # The first alert's opening fails twice; its later events must wait for it.
        receiver.fail_next = 2
        receiver.fail_if = lambda body: body.get("data", {}).get("alert_id") == str(first)
        await queue_alert_events(
            sessions,
            provider_a_id,
            ("alert.opened", first),
            ("alert.escalated", first),
            ("alert.opened", other),
            ("alert.resolved", first),
        )
        await receiver.wait_for(1)  # the other alert is not held up
        await running.worker.settled()
        assert receiver.calls == 2  # first's opening (failed) and the other alert's
        for _ in range(2):
            clock.advance(timedelta(minutes=10))
            await running.worker.settled()
        await receiver.wait_for(4)

    order = [(r.payload["data"]["alert_id"], r.payload["type"]) for r in receiver.accepted]
    assert order == [
        (str(other), "alert.opened"),
        (str(first), "alert.opened"),
        (str(first), "alert.escalated"),
        (str(first), "alert.resolved"),
    ]


async def test_no_more_than_the_limit_of_calls_is_in_flight_at_one_endpoint(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    settings = delivery_settings(webhook_max_in_flight=3)
    async with running_app(database_url, settings, clock=clock) as running:
        _, receiver.secret = await register(running.client, world, "provider_a", receiver.url)
        receiver.delay = 0.15
        await queue_alert_events(sessions, provider_a_id, *[("alert.opened", None)] * 12)
        await receiver.wait_for(12)
    assert receiver.max_in_flight == 3
    # The connections are kept alive and reused, not one per call.
    assert len(set(receiver.client_ports)) <= 3


async def test_two_workers_never_send_one_delivery_twice(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    settings = delivery_settings(webhook_max_in_flight=8)
    async with (
        running_app(database_url, settings, clock=clock) as one,
        running_app(database_url, settings, clock=clock) as two,
    ):
        _, receiver.secret = await register(one.client, world, "provider_a", receiver.url)
        second = WebhookReceiver(secret=None)
        async with second:
            _, second.secret = await register(two.client, world, "provider_a", second.url)
            receiver.delay = second.delay = 0.005
            await queue_alert_events(sessions, provider_a_id, *[("alert.opened", None)] * 60)
            await receiver.wait_for(60, within=30)
            await second.wait_for(60, within=30)
            await one.worker.settled()
            await two.worker.settled()
    for got in (receiver, second):
        assert len(got.ids) == len(set(got.ids)) == 60
        assert got.max_in_flight <= 8
    async with sessions() as session:
        attempts = await session.scalar(select(func.sum(Delivery.attempts)))
    assert attempts == 120


async def test_a_host_that_now_resolves_to_a_private_address_is_not_called(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    clock: HandClock,
) -> None:
    answers = {"hooks.example.nl": ["93.184.215.14"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    settings = delivery_settings(webhook_allow_private=False)
    async with running_app(database_url, settings, clock=clock, resolver=resolver) as running:
        await register(running.client, world, "provider_a", "https://hooks.example.nl/in")
        answers["hooks.example.nl"] = ["10.0.0.7"]  # DNS rebinding after registration
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await running.worker.settled()
    [(delivery, [attempt])] = await deliveries_of(sessions)
    assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == 1  # retried later
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("refused before sending: the host hooks.example.nl resolves")
    assert "10.0.0.7, which is a private address" in attempt.error


async def test_the_call_goes_to_the_resolved_address_under_the_registered_name(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "receiver.invalid"  # never resolvable by real DNS
        return ["127.0.0.1"]

    url = f"http://receiver.invalid:{receiver.port}/hook"
    async with running_app(
        database_url, delivery_settings(), clock=clock, resolver=resolver
    ) as running:
        _, receiver.secret = await register(running.client, world, "provider_a", url)
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await receiver.wait_for(1)
    assert receiver.host_headers == [f"receiver.invalid:{receiver.port}"]


async def test_a_redirect_is_not_followed_and_a_slow_receiver_times_out(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    elsewhere = WebhookReceiver(secret="whsec_" + "A" * 44)
    settings = delivery_settings(webhook_timeout_seconds=0.3)
    async with elsewhere, running_app(database_url, settings, clock=clock) as running:
        _, receiver.secret = await register(running.client, world, "provider_a", receiver.url)
        receiver.redirect_to = elsewhere.url
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await running.worker.settled()
        receiver.redirect_to = None
        receiver.delay = 1.0
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await running.worker.settled()
    [(_, [redirected]), (_, [slow])] = await deliveries_of(sessions)
    assert redirected.status_code == 307
    assert redirected.error == f"HTTP 307: redirect to {elsewhere.url} not followed"
    assert elsewhere.calls == 0
    assert slow.error == "no answer within 0.3 s" and slow.status_code is None
    assert 300 <= slow.duration_ms < 900
    assert not receiver.accepted


async def test_the_worker_wakes_on_new_work_at_once(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    # A poll far too slow to matter: only the NOTIFY at commit can wake the worker in time.
    async with running_app(
        database_url, delivery_settings(), clock=clock, poll_interval=30
    ) as running:
        _, receiver.secret = await register(running.client, world, "provider_a", receiver.url)
        await running.worker.settled()
        started = asyncio.get_running_loop().time()
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await receiver.wait_for(1, within=2)
    assert asyncio.get_running_loop().time() - started < 1.0

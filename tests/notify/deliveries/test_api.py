"""`/v1/subscriptions` and `/v1/deliveries`: the secret shown once and never stored in clear, the
SSRF check at registration, scoping to the caller's organisation, the delivery log with its
attempts and its audit, and 4xx (never 500) for bad input."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import AuditEntry
from services.notify.deliveries.manage import SUBSCRIBABLE
from tests.ingest.conftest import World
from tests.notify.deliveries.conftest import (
    HandClock,
    delivery_settings,
    queue_alert_events,
    register,
    running_app,
)
from tests.support.receivers import WebhookReceiver


async def test_the_secret_is_shown_once_and_never_stored_in_clear(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        created = await running.client.post(
            "/v1/subscriptions",
            json={
                "url": receiver.url,
                "event_types": ["alert.resolved", "alert.opened", "alert.opened"],
                "description": "EPD-koppeling",
            },
            headers=world.auth("provider_a"),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        secret = body["secret"]
        listed = await running.client.get("/v1/subscriptions", headers=world.auth("provider_a"))
        one = await running.client.get(
            f"/v1/subscriptions/{body['id']}", headers=world.auth("provider_a")
        )
        receiver.secret = secret  # and it verifies what we send
        test = await running.client.post(
            f"/v1/subscriptions/{body['id']}/test", headers=world.auth("provider_a")
        )
        [received] = await receiver.wait_for(1)

    assert secret.startswith("whsec_") and len(secret) > 40
    assert body["event_types"] == ["alert.opened", "alert.resolved"]
    assert body["active"] is True and body["description"] == "EPD-koppeling"
    assert "secret" not in listed.json()["items"][0] and "secret" not in one.json()
    assert test.status_code == 202
    assert received.payload["type"] == "webhook.test"
    assert received.webhook_id == test.json()["delivery_id"]
    clear = secret.removeprefix("whsec_")
    async with sessions() as session:
        for table in ("webhook_subscriptions", "audit_log", "deliveries"):
            dump = await session.scalar(text(f"SELECT json_agg(t)::text FROM {table} t"))  # noqa: S608 (fixed names)
            assert clear not in (dump or ""), table


REFUSED_URLS = [
    ("http://hooks.example.nl/in", "must start with https://"),
    ("https://127.0.0.1/in", "loopback"),
    ("https://localhost:8443/in", "loopback"),
    ("https://10.20.30.40/in", "private"),
    ("https://192.168.0.10/in", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/in", "loopback"),
    ("https://[fe80::1]/in", "link-local"),
    ("https://100.64.12.1/in", "carrier-grade NAT"),
    ("https://[::ffff:10.0.0.1]/in", "private"),
    ("https://hooks.example.nl/in", "private"),  # a name that resolves to a private address
]


async def test_registration_refuses_urls_that_are_not_public_https(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    clock: HandClock,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"localhost": ["127.0.0.1", "::1"], "hooks.example.nl": ["192.168.1.20"]}[host]

    settings = delivery_settings(webhook_allow_private=False)
    async with running_app(database_url, settings, clock=clock, resolver=resolver) as running:
        answers = [
            await running.client.post(
                "/v1/subscriptions",
                json={"url": url, "event_types": ["alert.opened"]},
                headers=world.auth("provider_a"),
            )
            for url, _ in REFUSED_URLS
        ]
        listed = await running.client.get("/v1/subscriptions", headers=world.auth("provider_a"))
    for (url, message), answer in zip(REFUSED_URLS, answers, strict=True):
        assert answer.status_code == 422, url
        assert answer.headers["content-type"] == "application/problem+json"
        [error] = answer.json()["errors"]
        assert error["path"] == "url" and message in error["message"], (url, error)
    assert listed.json() == {"items": []}


async def test_another_organisation_can_neither_see_nor_touch_them(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        client = running.client
        subscription, receiver.secret = await register(client, world, "provider_a", receiver.url)
        receiver.fail_next = 1
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await running.worker.settled()
        [delivery] = (await client.get("/v1/deliveries", headers=world.auth("provider_a"))).json()[
            "items"
        ]
        other = world.auth("provider_b")
        answers = [
            await client.get(f"/v1/subscriptions/{subscription}", headers=other),
            await client.post(f"/v1/subscriptions/{subscription}/test", headers=other),
            await client.post(f"/v1/subscriptions/{subscription}/enable", headers=other),
            await client.delete(f"/v1/subscriptions/{subscription}", headers=other),
            await client.get(f"/v1/deliveries/{delivery['id']}", headers=other),
            await client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=other),
            await client.post(
                "/v1/deliveries/retry", json={"subscription": str(subscription)}, headers=other
            ),
        ]
        their_lists = [
            (await client.get("/v1/subscriptions", headers=other)).json(),
            (await client.get("/v1/deliveries", headers=other)).json(),
        ]
        still = await client.get(
            f"/v1/subscriptions/{subscription}", headers=world.auth("provider_a")
        )
        unauthenticated = await client.get("/v1/deliveries")
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert their_lists == [{"items": []}, {"items": [], "next_cursor": None}]
    assert still.status_code == 200 and still.json()["active"] is True
    assert unauthenticated.status_code == 401


async def test_the_delivery_log_shows_every_attempt_pages_and_is_audited(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        client, auth = running.client, world.auth("provider_a")
        subscription, receiver.secret = await register(client, world, "provider_a", receiver.url)
        receiver.fail_next = 1
        await queue_alert_events(sessions, provider_a_id, *[("alert.opened", None)] * 3)
        await running.worker.settled()
        first = (await client.get("/v1/deliveries?limit=2", headers=auth)).json()
        second = (
            await client.get(f"/v1/deliveries?limit=2&cursor={first['next_cursor']}", headers=auth)
        ).json()
        pending = (await client.get("/v1/deliveries?status=pending", headers=auth)).json()
        detail = await client.get(f"/v1/deliveries/{pending['items'][0]['id']}", headers=auth)
        of_endpoint = (
            await client.get(f"/v1/deliveries?subscription={subscription}", headers=auth)
        ).json()

    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and len(of_endpoint["items"]) == 3
    [failed] = pending["items"]  # the one the receiver refused, waiting for its retry
    [attempt] = failed["attempts"]
    assert attempt["status_code"] == 500 and attempt["error"].startswith("HTTP 500")
    assert attempt["duration_ms"] >= 0 and failed["next_attempt_at"] is not None
    assert detail.status_code == 200
    assert detail.json()["payload"]["type"] == "alert.opened"
    async with sessions() as session:
        entries = list(
            (
                await session.execute(
                    select(AuditEntry.action, AuditEntry.object_id).where(
                        AuditEntry.action.like("delivery.%")
                    )
                )
            ).all()
        )
    assert [a for a, _ in entries].count("delivery.list.read") == 4
    assert ("delivery.read", failed["id"]) in entries


async def test_retries_answer_409_unless_failed_and_bulk_needs_a_scope(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
) -> None:
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        client, auth = running.client, world.auth("provider_a")
        subscription, receiver.secret = await register(client, world, "provider_a", receiver.url)
        await queue_alert_events(sessions, provider_a_id, ("alert.opened", None))
        await receiver.wait_for(1)
        await running.worker.settled()
        [delivered] = (await client.get("/v1/deliveries", headers=auth)).json()["items"]
        not_failed = await client.post(f"/v1/deliveries/{delivered['id']}/retry", headers=auth)
        no_scope = await client.post("/v1/deliveries/retry", json={}, headers=auth)
        naive = await client.post(
            "/v1/deliveries/retry", json={"since": "2026-11-01T00:00:00"}, headers=auth
        )
        since = await client.post(
            "/v1/deliveries/retry", json={"since": "2026-11-01T00:00:00Z"}, headers=auth
        )
        deleted = await client.delete(f"/v1/subscriptions/{subscription}", headers=auth)
        gone = await client.get(f"/v1/subscriptions/{subscription}", headers=auth)
        log_kept = (await client.get("/v1/deliveries", headers=auth)).json()["items"]
    assert not_failed.status_code == 409 and "succeeded" in not_failed.json()["detail"]
    assert no_scope.status_code == 422
    assert naive.status_code == 422
    assert since.status_code == 202 and since.json() == {"retried": 0}
    assert deleted.status_code == 204 and gone.status_code == 404
    assert [d["id"] for d in log_kept] == [delivered["id"]]


BAD_SUBSCRIPTIONS: list[Any] = [
    {"url": "https://hooks.example.nl/in", "event_types": []},
    {"url": "https://hooks.example.nl/in", "event_types": ["alert.exploded"]},
    {"url": "https://hooks.example.nl/in", "event_types": ["signal.received"]},
    {"url": "https://hooks.example.nl/in"},
    {"event_types": ["alert.opened"]},
    {"url": "", "event_types": ["alert.opened"]},
    {"url": "not a url", "event_types": ["alert.opened"]},
    {"url": "https://hooks.example.nl/in", "event_types": "alert.opened"},
    {"url": "https://hooks.example.nl/in", "event_types": ["alert.opened"], "extra": 1},
    {"url": "https://hooks.example.nl/in", "event_types": ["alert.opened"], "description": 7},
    {"url": "https://" + "a" * 3000, "event_types": ["alert.opened"]},
    {"url": "https://hooks.example.nl/\x00", "event_types": ["alert.opened"]},
    {"url": "https://hooks.example.nl/in", "event_types": ["alert.opened"], "description": "\x00"},
    [],
    "x",
]


async def test_bad_input_gets_a_4xx_problem_never_a_500(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    clock: HandClock,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    settings = delivery_settings(webhook_allow_private=False)
    async with running_app(database_url, settings, clock=clock, resolver=resolver) as running:
        client, auth = running.client, world.auth("provider_a")
        answers: list[httpx.Response] = [
            await client.post("/v1/subscriptions", json=body, headers=auth)
            for body in BAD_SUBSCRIPTIONS
        ]
        answers += [
            await client.post(
                "/v1/subscriptions",
                content=b"{not json",
                headers={**auth, "content-type": "application/json"},
            ),
            await client.get("/v1/subscriptions/not-a-uuid", headers=auth),
            await client.get(f"/v1/subscriptions/{uuid.uuid4()}", headers=auth),
            await client.get("/v1/deliveries?status=lost", headers=auth),
            await client.get("/v1/deliveries?cursor=abc", headers=auth),
            await client.get("/v1/deliveries?cursor=99999999999999999999999", headers=auth),
            await client.get("/v1/deliveries?limit=0", headers=auth),
            await client.get("/v1/deliveries?subscription=x", headers=auth),
            await client.get(f"/v1/deliveries/{uuid.uuid4()}", headers=auth),
            await client.post(f"/v1/deliveries/{uuid.uuid4()}/retry", headers=auth),
            await client.post("/v1/deliveries/retry", json={"subscription": "x"}, headers=auth),
            await client.post(
                "/v1/deliveries/retry", json={"subscription": str(uuid.uuid4())}, headers=auth
            ),
        ]
        known = await client.post(
            "/v1/subscriptions",
            json={"url": "https://hooks.example.nl/in", "event_types": list(SUBSCRIBABLE)},
            headers=auth,
        )
    statuses = [a.status_code for a in answers]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert statuses[1] == 422 and "alert.exploded" in answers[1].text
    assert known.status_code == 201  # every listed type is accepted
    assert {"alert.opened", "coverage.changed", "digest.published"} <= set(SUBSCRIBABLE)

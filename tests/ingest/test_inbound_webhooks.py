"""Signals pushed by a provider system, signed per Standard Webhooks and verified as such."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from tests.ingest.conftest import World, signal, stored_counts

URL = "/v1/webhooks/inbound/vechtstroom-epd"


def signed(
    secret: str, body: str, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Headers as the reference `standardwebhooks` library makes them for a sender."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }


async def test_a_signed_push_is_stored(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = json.dumps({"signals": [signal(), signal("FACT-ZWOLLE")]})
    answer = await client.post(URL, content=body, headers=signed(world.inbound_secret, body))
    assert answer.status_code == 202, answer.text
    assert answer.json()["stored"] == 2
    assert await stored_counts(sessions) == (2, 2)


async def test_the_webhook_id_makes_redelivery_safe(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = json.dumps(signal())
    headers = signed(world.inbound_secret, body, msg_id="msg_fixed")
    first = await client.post(URL, content=body, headers=headers)
    again = await client.post(URL, content=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert await stored_counts(sessions) == (1, 1)


async def test_bad_signatures_and_replays_are_refused(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = json.dumps(signal())
    other_secret = "whsec_" + "A" * 43
    cases = {
        "wrong secret": signed(other_secret, body),
        "too old": signed(world.inbound_secret, body, at=datetime.now(UTC) - timedelta(minutes=6)),
        "from the future": signed(
            world.inbound_secret, body, at=datetime.now(UTC) + timedelta(minutes=6)
        ),
        "no signature": {"content-type": "application/json"},
        "garbage signature": {
            **signed(world.inbound_secret, body),
            "webhook-signature": "v1,not-base64!!",
        },
    }
    for name, headers in cases.items():
        answer = await client.post(URL, content=body, headers=headers)
        assert answer.status_code == 401, name
    tampered = signed(world.inbound_secret, body)
    changed = body.replace("30.0", "31.0")
    assert (await client.post(URL, content=changed, headers=tampered)).status_code == 401
    unknown = await client.post(
        "/v1/webhooks/inbound/nobody", content=body, headers=signed(world.inbound_secret, body)
    )
    assert unknown.status_code == 401
    assert await stored_counts(sessions) == (0, 0)


async def test_an_invalid_signed_push_gets_422(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = json.dumps(signal(kind="staffing", data={"fte_budgeted": -1}))
    answer = await client.post(URL, content=body, headers=signed(world.inbound_secret, body))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "data.fte_budgeted"
    assert await stored_counts(sessions) == (0, 0)

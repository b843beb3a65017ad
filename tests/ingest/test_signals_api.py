"""`POST /v1/signals` as a provider system and an insurer use it: every answer it can give."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.credentials import revoke_api_key
from services.core.db.models import OutboxEvent, Signal
from services.core.http.app import create_app
from tests.ingest.conftest import (
    PROVIDER_A,
    PROVIDER_B,
    World,
    open_client,
    settings,
    signal,
    stored_counts,
)

SIGNALS = "/v1/signals"


async def test_one_signal_is_stored_with_its_event(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    answer = await client.post(SIGNALS, json=signal(), headers=world.auth("provider_a"))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["accepted"] == 1 and body["stored"] == 1
    item = body["signals"][0]
    assert item == item | {"department": "HIC-ZWOLLE", "kind": "staffing", "status": "stored"}
    async with sessions() as session:
        stored = (await session.scalars(select(Signal))).one()
        event = (await session.scalars(select(OutboxEvent))).one()
    assert str(stored.id) == item["id"]
    assert stored.department_id == world.departments["HIC-ZWOLLE"]
    assert stored.data == {"fte_budgeted": 30.0, "fte_filled": 24.5, "sick_leave_pct": 8.5}
    # The event is a valid CloudEvent, keyed by the department.
    cloud_event = JSONFormat().read(CloudEvent, json.dumps(event.event).encode())
    assert cloud_event.get_type() == "nl.vroegsignaal.signal.received"
    assert cloud_event.get_source() == "/vroegsignaal/ingest"
    assert cloud_event.get_extension("partitionkey") == str(world.departments["HIC-ZWOLLE"])
    assert event.topic == "vroegsignaal.signals.v1"
    data = cloud_event.get_data()
    assert isinstance(data, dict)
    assert data["signal_id"] == item["id"] and data["region"] == "ijssel-vecht"


async def test_a_batch_of_kinds_is_stored_in_one_go(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batch = [
        signal(),
        signal(
            "FACT-ZWOLLE",
            kind="waitlist",
            data={"waiting_count": 41, "aanmeldwachttijd_weeks": 6.0},
        ),
        signal("HIC-ZWOLLE", kind="capacity", data={"beds_total": 24, "beds_occupied": 23}),
    ]
    answer = await client.post(SIGNALS, json={"signals": batch}, headers=world.auth("provider_a"))
    assert answer.status_code == 202, answer.text
    assert [s["kind"] for s in answer.json()["signals"]] == ["staffing", "waitlist", "capacity"]
    assert await stored_counts(sessions) == (3, 3)


async def test_one_bad_signal_refuses_the_whole_batch(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batch = [signal(), signal(), signal(), signal(data={"fte_budgeted": 30, "sick_leave_pct": 140})]
    answer = await client.post(SIGNALS, json={"signals": batch}, headers=world.auth("provider_a"))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    paths = [error["path"] for error in answer.json()["errors"]]
    assert paths == ["signals[3].data.sick_leave_pct"]
    assert "sick_leave_pct" in answer.json()["detail"]
    assert await stored_counts(sessions) == (0, 0)


async def test_an_unknown_department_in_a_batch_stores_nothing(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batch = [signal(), signal("HIC-NERGENS")]
    answer = await client.post(SIGNALS, json={"signals": batch}, headers=world.auth("provider_a"))
    assert answer.status_code == 404
    assert "signals[1]" in answer.json()["detail"] and "HIC-NERGENS" in answer.json()["detail"]
    assert await stored_counts(sessions) == (0, 0)


async def test_authentication(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert (await client.post(SIGNALS, json=signal())).status_code == 401
    wrong = {"Authorization": "Bearer vs_000000000000_nope"}
    answer = await client.post(SIGNALS, json=signal(), headers=wrong)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (await client.post(SIGNALS, json=signal(), headers=basic)).status_code == 401
    async with sessions() as session, session.begin():
        await revoke_api_key(session, world.keys["provider_b"])
    revoked = await client.post(SIGNALS, json=signal("HIC-GRN"), headers=world.auth("provider_b"))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    assert await stored_counts(sessions) == (0, 0)


async def test_each_role_reports_only_within_its_scope(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A provider may not report on another provider's department.
    other = await client.post(
        SIGNALS, json=signal("HIC-GRN", provider_agb=PROVIDER_B), headers=world.auth("provider_a")
    )
    assert other.status_code == 403
    # Without provider_agb a provider's codes are its own: HIC-GRN is not one of them.
    assert (
        await client.post(SIGNALS, json=signal("HIC-GRN"), headers=world.auth("provider_a"))
    ).status_code == 404
    # An insurer posts for providers in the regions it coordinates, naming the provider.
    ok = await client.post(
        SIGNALS, json=signal(provider_agb=PROVIDER_A), headers=world.auth("insurer_zk")
    )
    assert ok.status_code == 202, ok.text
    elsewhere = await client.post(
        SIGNALS, json=signal("HIC-GRN", provider_agb=PROVIDER_B), headers=world.auth("insurer_zk")
    )
    assert elsewhere.status_code == 403
    assert "does not coordinate" in elsewhere.json()["detail"]
    unnamed = await client.post(SIGNALS, json=signal(), headers=world.auth("insurer_zk"))
    assert unnamed.status_code == 422
    assert "provider_agb" in unnamed.json()["detail"]
    # Tables, the BO and the operator read; they do not report.
    for who in ("table_ijssel_vecht", "national_table", "governance", "operator"):
        answer = await client.post(
            SIGNALS, json=signal(provider_agb=PROVIDER_A), headers=world.auth(who)
        )
        assert answer.status_code == 403, who
    assert await stored_counts(sessions) == (1, 1)


async def test_media_type_and_malformed_bodies(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = world.auth("provider_a")
    text_body = await client.post(
        SIGNALS, content=json.dumps(signal()), headers={**auth, "Content-Type": "text/plain"}
    )
    assert text_body.status_code == 415
    for raw in (b"{", b"[1, 2", b'{"kind": NaN}', b"\xff\xfe{}", b"[" * 100_000):
        answer = await client.post(
            SIGNALS, content=raw, headers={**auth, "Content-Type": "application/json"}
        )
        assert answer.status_code == 400, (raw[:10], answer.text)
    assert (await client.post(SIGNALS, json=[signal()], headers=auth)).status_code == 422
    assert await stored_counts(sessions) == (0, 0)


async def test_a_note_with_a_bsn_is_refused_and_not_echoed(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bsn = "111222333"  # passes the 11-test
    answer = await client.post(
        SIGNALS, json=signal(note=f"opname van {bsn} uitgesteld"), headers=world.auth("provider_a")
    )
    assert answer.status_code == 422
    assert bsn not in answer.text
    assert [e["path"] for e in answer.json()["errors"]] == ["note"]
    assert await stored_counts(sessions) == (0, 0)


async def test_a_client_id_sent_twice_is_stored_once(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = signal(id=str(uuid.uuid4()))
    first = await client.post(SIGNALS, json=body, headers=world.auth("provider_a"))
    again = await client.post(SIGNALS, json=body, headers=world.auth("provider_a"))
    assert first.status_code == again.status_code == 202
    assert first.json()["signals"][0]["id"] == again.json()["signals"][0]["id"] == body["id"]
    assert again.json()["signals"][0]["status"] == "already_stored"
    assert await stored_counts(sessions) == (1, 1)
    changed = dict(body, data={"fte_budgeted": 31.0})
    conflict = await client.post(SIGNALS, json=changed, headers=world.auth("provider_a"))
    assert conflict.status_code == 409
    assert await stored_counts(sessions) == (1, 1)


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**world.auth("provider_a"), "Idempotency-Key": "export-2026-11-01"}
    batch = {"signals": [signal(), signal()]}
    first = await client.post(SIGNALS, json=batch, headers=headers)
    again = await client.post(SIGNALS, json=batch, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await stored_counts(sessions) == (2, 2)
    other = await client.post(SIGNALS, json={"signals": [signal("FACT-ZWOLLE")]}, headers=headers)
    assert other.status_code == 409
    # Keys belong to an organisation: another one may use the same string.
    theirs = {**world.auth("provider_b"), "Idempotency-Key": "export-2026-11-01"}
    assert (await client.post(SIGNALS, json=signal("HIC-GRN"), headers=theirs)).status_code == 202
    assert await stored_counts(sessions) == (3, 3)
    too_long = {**world.auth("provider_a"), "Idempotency-Key": "x" * 300}
    assert (await client.post(SIGNALS, json=signal(), headers=too_long)).status_code == 422


async def test_an_expired_key_starts_afresh(
    database_url: str, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(settings(idempotency_ttl=0), database_url, routers=ingest.routers())
    async for client in open_client(app):
        headers = {**world.auth("provider_a"), "Idempotency-Key": "k1"}
        assert (await client.post(SIGNALS, json=signal(), headers=headers)).status_code == 202
        again = await client.post(SIGNALS, json=signal(), headers=headers)
        assert again.status_code == 202 and "idempotent-replayed" not in again.headers
    assert await stored_counts(sessions) == (2, 2)


async def test_concurrent_repeats_store_once(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = signal(id=str(uuid.uuid4()))
    answers = await asyncio.gather(
        *(client.post(SIGNALS, json=body, headers=world.auth("provider_a")) for _ in range(15))
    )
    assert {a.status_code for a in answers} == {202}
    assert sum(a.json()["stored"] for a in answers) == 1
    assert await stored_counts(sessions) == (1, 1)

    headers = {**world.auth("provider_a"), "Idempotency-Key": str(uuid.uuid4())}
    batch = {"signals": [signal(), signal("FACT-ZWOLLE")]}
    answers = await asyncio.gather(
        *(client.post(SIGNALS, json=batch, headers=headers) for _ in range(15))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({json.dumps(a.json()["signals"], sort_keys=True) for a in answers}) == 1
    assert await stored_counts(sessions) == (3, 3)


async def test_bodies_over_the_limit_get_413_without_being_read(
    database_url: str, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(settings(max_body_bytes=4096), database_url, routers=ingest.routers())
    big = {"signals": [signal() for _ in range(60)]}
    async for client in open_client(app):
        declared = await client.post(SIGNALS, json=big, headers=world.auth("provider_a"))
        assert declared.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            raw = json.dumps(big).encode()
            for start in range(0, len(raw), 1000):
                yield raw[start : start + 1000]

        streamed = await client.post(
            SIGNALS,
            content=chunks(),
            headers={**world.auth("provider_a"), "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert streamed.headers["content-type"] == "application/problem+json"
    assert await stored_counts(sessions) == (0, 0)


async def test_an_organisation_sending_too_fast_gets_429(database_url: str, world: World) -> None:
    app = create_app(
        settings(rate_limit_per_second=0.5, rate_limit_burst=2),
        database_url,
        routers=ingest.routers(),
    )
    async for client in open_client(app):
        codes = [
            (
                await client.post(SIGNALS, json=signal(), headers=world.auth("provider_a"))
            ).status_code
            for _ in range(3)
        ]
        assert codes[:2] == [202, 202] and codes[2] == 429
        limited = await client.post(SIGNALS, json=signal(), headers=world.auth("provider_a"))
        assert int(limited.headers["retry-after"]) >= 1
        # The limit is per organisation: another one is not slowed down.
        other = await client.post(SIGNALS, json=signal("HIC-GRN"), headers=world.auth("provider_b"))
        assert other.status_code == 202


async def test_counters_by_kind_source_and_reason(client: httpx.AsyncClient, world: World) -> None:
    await client.post(SIGNALS, json=signal(), headers=world.auth("provider_a"))
    await client.post(SIGNALS, json=signal(kind="nonsense"), headers=world.auth("provider_a"))
    metrics = (await client.get("/metrics/")).text
    assert 'vroegsignaal_signals_accepted_total{kind="staffing",source="api"}' in metrics
    assert 'vroegsignaal_signals_rejected_total{reason="invalid"}' in metrics


async def test_control_characters_in_free_text_are_refused(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    nul = signal(note="regel\x00twee")
    answer = await client.post(SIGNALS, json=nul, headers=world.auth("provider_a"))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "note"
    listing = await client.get(
        "/v1/departments", params={"region": "a\x00b"}, headers=world.auth("provider_a")
    )
    assert listing.status_code == 422
    assert await stored_counts(sessions) == (0, 0)


async def test_a_revoked_key_stops_at_once_even_when_cached(
    database_url: str, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The key is cached by a first request; revoking it (as the CLI does, in a transaction of
    its own) reaches the app by NOTIFY, so the very next request is refused."""
    app = create_app(settings(), database_url, routers=ingest.routers())
    async for client in open_client(app):
        cache = app.state.key_cache
        for _ in range(200):
            if cache.listening:
                break
            await asyncio.sleep(0.02)
        assert cache.listening, "the app should listen for revocations"
        key = world.keys["provider_b"]
        first = await client.post(SIGNALS, json=signal("HIC-GRN"), headers=world.auth("provider_b"))
        assert first.status_code == 202, first.text
        assert cache.get(key) is not None, "the key should now be cached"
        async with sessions() as session, session.begin():
            await revoke_api_key(session, key)
        for _ in range(100):  # the notification crosses a connection: allow it a moment
            if cache.get(key) is None:
                break
            await asyncio.sleep(0.01)
        refused = await client.post(
            SIGNALS, json=signal("HIC-GRN"), headers=world.auth("provider_b")
        )
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]

"""Hostile input: bodies built to break a parser or a database get a clear 4xx problem, never a
5xx, and leave nothing behind (no signal, no outbox event, no idempotency key).

The ingest API runs in-process (httpx over ASGI); the slow bodies go over a real socket to a real
uvicorn server, because only there does a byte arrive late. The alert API's free-text notes get
the same treatment on the notifier's app.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.db.models import AlertEvent, IdempotencyKey, OutboxEvent, Signal
from services.core.http.app import create_app
from tests.ingest.conftest import World, build_world, open_client, settings, signal
from tests.notify.world import department_alert, eventually, notify_world, post, staffing
from tests.support.live_server import LiveServer

TEN_MB = 10 * 1024 * 1024
DEPTH = 100_000


BODY_TIMEOUT = 2.0  # seconds; the app's setting in these tests


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as session, session.begin():
        return await build_world(session)


@pytest.fixture
def app(database_url: str, world: World) -> FastAPI:
    # A short body timeout (the default is 30 s), so a stalled body is answered within the test.
    return create_app(
        settings(body_timeout_seconds=BODY_TIMEOUT), database_url, routers=ingest.routers()
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(app):
        yield client


async def _counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """(signals, outbox events, idempotency keys) in the database."""
    async with sessions() as session:
        counts = [
            int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Signal, OutboxEvent, IdempotencyKey)
        ]
    return counts[0], counts[1], counts[2]


def _valid(**data: Any) -> dict[str, Any]:
    body = signal()
    body["data"].update(data)
    return body


def _raw_signal(data_json: str, **top: str) -> bytes:
    """A signal whose `data.fte_budgeted` (or other top-level fields) is raw JSON text."""
    base = signal()
    fields = [f'"{k}": {json.dumps(v)}' for k, v in base.items() if k != "data" and k not in top]
    fields += [f'"{k}": {v}' for k, v in top.items()]
    fields.append(f'"data": {{"fte_budgeted": {data_json}, "fte_filled": 24.5}}')
    return ("{" + ", ".join(fields) + "}").encode()


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes
    content_type: str | None = "application/json"
    path: str = "/v1/signals"
    expect: frozenset[int] = frozenset({400})


def _cases() -> list[Hostile]:
    nested_arrays = b"[" * DEPTH + b"]" * DEPTH
    nested_objects = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    nested_in_data = _raw_signal("1").replace(
        b'"fte_filled": 24.5', b'"fte_filled": ' + b"[" * DEPTH + b"]" * DEPTH
    )
    csv_header = b"department,kind,observed_at,fte_budgeted,fte_filled\n"
    return [
        Hostile("deep arrays", nested_arrays),
        Hostile("deep objects", nested_objects),
        Hostile("deep nesting inside a signal", nested_in_data),
        Hostile("1e400 (overflows a float)", _raw_signal("1e400"), expect=frozenset({400, 422})),
        Hostile("-1e400", _raw_signal("-1e400"), expect=frozenset({400, 422})),
        Hostile("10**5000 as a literal", _raw_signal("1" + "0" * 5000)),
        # Under Python's 4,300-digit limit for int parsing, but far beyond any float.
        Hostile("10**4000 as a literal", _raw_signal("1" + "0" * 4000), expect=frozenset({422})),
        Hostile("1e-400 (underflows)", _raw_signal("1e-400"), expect=frozenset({422})),
        Hostile("NaN", _raw_signal("NaN")),
        Hostile("Infinity", _raw_signal("Infinity")),
        Hostile("-Infinity", _raw_signal("-Infinity")),
        Hostile("invalid UTF-8", _raw_signal("1").replace(b"HIC-ZWOLLE", b"HIC-\xff\xfe\xc3(")),
        Hostile("truncated JSON", json.dumps(signal()).encode()[:-7]),
        Hostile("empty body", b""),
        Hostile("a bare string", b'"signals"', expect=frozenset({400, 422})),
        Hostile("null", b"null", expect=frozenset({400, 422})),
        Hostile("a list of numbers", b"[1, 2, 3]", expect=frozenset({400, 422})),
        Hostile(
            "NUL in a note",
            json.dumps(signal(note="two\u0000staff")).encode(),
            expect=frozenset({400, 422}),
        ),
        Hostile(
            "NUL in the department code",
            json.dumps(signal(department="HIC-ZWOLLE\u0000")).encode(),
            expect=frozenset({400, 404, 422}),
        ),
        Hostile(
            "a lone surrogate in a note",
            _raw_signal("30.0").replace(b'"data"', b'"note": "\\ud800 x", "data"'),
            expect=frozenset({400, 422}),
        ),
        Hostile(
            "a lone surrogate in an id",
            _raw_signal("30.0").replace(b'"data"', b'"id": "\\udfff", "data"'),
            expect=frozenset({400, 422}),
        ),
        Hostile(
            "501 signals",
            json.dumps({"signals": [signal() for _ in range(501)]}).encode(),
            expect=frozenset({413, 422}),
        ),
        Hostile("text/plain", json.dumps(signal()).encode(), "text/plain", expect=frozenset({415})),
        Hostile("no content type", json.dumps(signal()).encode(), None, expect=frozenset({415})),
        Hostile(
            "a form",
            b"department=HIC-ZWOLLE&kind=staffing",
            "application/x-www-form-urlencoded",
            expect=frozenset({415}),
        ),
        Hostile(
            "multipart",
            b'--x\r\nContent-Disposition: form-data; name="f"\r\n\r\n{}\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            expect=frozenset({415}),
        ),
        Hostile(
            "JSON to the CSV route",
            json.dumps(signal()).encode(),
            "application/json",
            "/v1/signals/csv",
            frozenset({415}),
        ),
        Hostile(
            "CSV with NUL bytes",
            csv_header + b"HIC-ZWOLLE,staffing,2026-01-05T10:00:00+00:00,30\x00,24.5\n",
            "text/csv",
            "/v1/signals/csv",
            frozenset({400, 422}),
        ),
        Hostile(
            "CSV of only NUL bytes",
            b"\x00" * 4096,
            "text/csv",
            "/v1/signals/csv",
            frozenset({400, 422}),
        ),
        Hostile(
            "CSV in Latin-1",
            csv_header.replace(b"department", b"d\xe9partement") + b"x,y,z,1,1\n",
            "text/csv",
            "/v1/signals/csv",
            frozenset({400, 422}),
        ),
        Hostile(
            "CSV with a 1 MB field",
            csv_header + b"HIC-ZWOLLE,staffing," + b"9" * 1_000_000 + b",30,24\n",
            "text/csv",
            "/v1/signals/csv",
            frozenset({400, 413, 422}),
        ),
    ]


CASES = _cases()


def _assert_problem(response: httpx.Response, expect: frozenset[int], what: str) -> None:
    assert response.status_code in expect, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    assert problem["status"] == response.status_code, what
    assert problem.get("title") and problem.get("detail"), what


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_body_gets_a_clear_4xx_and_stores_nothing(
    case: Hostile,
    client: httpx.AsyncClient,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    before = await _counts(sessions)
    headers = {**world.auth("provider_a"), "Idempotency-Key": str(uuid.uuid4())}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    started = time.monotonic()
    response = await client.post(case.path, content=case.body, headers=headers)
    elapsed = time.monotonic() - started
    _assert_problem(response, case.expect, case.name)
    assert elapsed < 10, f"{case.name} took {elapsed:.1f} s"
    assert await _counts(sessions) == before, f"{case.name} left something behind"
    # ...and the service still works for the next, honest request.
    fine = await client.post("/v1/signals", json=signal(), headers=world.auth("provider_a"))
    assert fine.status_code == 202, fine.text


async def test_duplicate_keys_are_not_silently_resolved(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """`{"department": A, ..., "department": B}`: which one did the provider mean? A parser that
    keeps the last one stores a signal for a department the sender may not have meant."""
    body = _raw_signal("30.0").replace(b"{", b'{"department": "KIB-ZWOLLE", ', 1)
    assert body.count(b'"department"') == 2
    before = await _counts(sessions)
    response = await client.post(
        "/v1/signals",
        content=body,
        headers={**world.auth("provider_a"), "Content-Type": "application/json"},
    )
    _assert_problem(response, frozenset({400, 422}), "duplicate keys")
    assert await _counts(sessions) == before


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/v1/signals", "/v1/signals/csv"])
async def test_a_10_mb_body_is_refused_with_413(
    declared: bool,
    path: str,
    client: httpx.AsyncClient,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    chunk = json.dumps(signal()).encode() + b" " * (1024 * 1024 - 200)
    pieces = [chunk] * (TEN_MB // len(chunk) + 1)
    content_type = "text/csv" if path.endswith("csv") else "application/json"
    headers = {**world.auth("provider_a"), "Content-Type": content_type}
    before = await _counts(sessions)
    if declared:
        response = await client.post(path, content=b"".join(pieces), headers=headers)
    else:

        async def stream() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        response = await client.post(path, content=stream(), headers=headers)
        assert "content-length" not in response.request.headers
    _assert_problem(response, frozenset({413}), f"10 MB to {path}")
    assert await _counts(sessions) == before


# --- slow bodies, over a real socket ---------------------------------------------------------


@pytest.fixture
def live(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


async def _open(live: LiveServer, key: str, length: int) -> tuple[Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(
        (
            "POST /v1/signals HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nIdempotency-Key: {uuid.uuid4()}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    return reader, writer


async def test_a_trickled_body_is_answered_when_it_is_complete(
    live: LiveServer, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A valid body sent one piece every 0.2 s over 3 s: the server waits for it and stores it
    once; other callers are served meanwhile."""
    body = json.dumps(signal()).encode()
    before = await _counts(sessions)
    reader, writer = await _open(live, world.keys["provider_a"], len(body))
    pieces = [body[i : i + len(body) // 15 + 1] for i in range(0, len(body), len(body) // 15 + 1)]
    async with httpx.AsyncClient(base_url=live.base, timeout=5) as other:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.2)
            # the event loop is not held up by the slow sender
            assert (await other.get("/healthz")).status_code == 200
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"202", status_line
    signals, events, keys = await _counts(sessions)
    assert (signals, events, keys) == (before[0] + 1, before[1] + 1, before[2] + 1)


async def test_a_stalled_body_stores_nothing_and_does_not_block_others(
    live: LiveServer, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A caller that declares 1,000 bytes, sends 10 and stops: nothing is stored while it
    stalls, or after it gives up; every other caller is served meanwhile."""
    before = await _counts(sessions)
    stalled = [await _open(live, world.keys["provider_a"], 1000) for _ in range(20)]
    for _, writer in stalled:
        writer.write(b'{"departm')
        await writer.drain()
    async with httpx.AsyncClient(base_url=live.base, timeout=5) as other:
        answer = await other.post("/v1/signals", json=signal(), headers=world.auth("provider_a"))
        assert answer.status_code == 202, answer.text
    for _, writer in stalled:
        writer.close()
    await asyncio.sleep(0.5)
    signals, events, keys = await _counts(sessions)
    assert (signals, events, keys) == (before[0] + 1, before[1] + 1, before[2])


async def test_a_stalled_body_is_cut_off_by_the_server(
    live: LiveServer, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A body that stops coming is answered 408 once the body timeout has passed, and stores
    nothing (uvicorn itself would wait for as long as the client keeps the socket open)."""
    before = await _counts(sessions)
    reader, writer = await _open(live, world.keys["provider_a"], 1000)
    started = asyncio.get_running_loop().time()
    writer.write(b'{"departm')
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(4096), BODY_TIMEOUT + 5)
    except TimeoutError:
        answer = b""
    finally:
        writer.close()
    waited = asyncio.get_running_loop().time() - started
    assert answer, f"the server still waits for the rest of the body after {waited:.1f} s"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 408
    assert BODY_TIMEOUT - 0.5 <= waited <= BODY_TIMEOUT + 3
    assert await _counts(sessions) == before


# --- the alert API's notes -------------------------------------------------------------------

HOSTILE_NOTES: list[tuple[str, Any]] = [
    ("NUL", "we call\u0000 tomorrow"),
    ("escape", "\u001b[31mred\u001b[0m"),
    ("a lone surrogate", "\ud800"),
    ("2001 characters", "x" * 2001),
    ("1 MB", "x" * 1_000_000),
    ("only whitespace", " \n\t "),
    ("empty", ""),
    ("a number", 12345),
    ("an object", {"$ne": None}),
    ("a BSN", "client 111222333 waits"),
]


async def test_hostile_alert_notes_are_refused_and_leave_the_timeline_alone(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await notify_world(database_url, sessions)
    async for client in open_client(w.app):
        await post(client, w, staffing(1, vacancies_fte=2.4))
        alert = await eventually(lambda: department_alert(sessions, w.fact), "an alert")
        auth = {**w.auth("insurer_zk"), "Content-Type": "application/json"}

        async def timeline_length(alert_id: uuid.UUID = alert.id) -> int:
            async with sessions() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(AlertEvent)
                    .where(AlertEvent.alert_id == alert_id)
                )
            return int(count or 0)

        before = await timeline_length()
        for action in ("comment", "acknowledge", "resolve"):
            for name, note in HOSTILE_NOTES:
                if action == "acknowledge" and name == "empty":
                    continue
                raw = json.dumps({"note": note}, ensure_ascii=True).encode()
                response = await client.post(
                    f"/v1/alerts/{alert.id}/{action}", content=raw, headers=auth
                )
                _assert_problem(response, frozenset({400, 422}), f"{action} with {name}")
            for name, raw in (
                ("deep nesting", b'{"note":' + b"[" * DEPTH + b"]" * DEPTH + b"}"),
                ("invalid UTF-8", b'{"note": "caf\xe9"}'),
                ("NaN", b'{"note": NaN}'),
                ("a 10 MB note", b'{"note": "' + b"x" * TEN_MB + b'"}'),
            ):
                response = await client.post(
                    f"/v1/alerts/{alert.id}/{action}", content=raw, headers=auth
                )
                _assert_problem(response, frozenset({400, 413, 422}), f"{action} with {name}")
        assert await timeline_length() == before

        # Text that is merely unusual is kept verbatim, and returned as data, not markup.
        odd = "<script>alert(1)</script> '; DROP TABLE alerts; -- \u202egnp.exe 🚑"
        response = await client.post(
            f"/v1/alerts/{alert.id}/comment", json={"note": odd}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert any(entry.get("note") == odd for entry in response.json()["timeline"])
        assert await timeline_length() == before + 1

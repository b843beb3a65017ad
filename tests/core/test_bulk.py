"""Bulk inserts by COPY (`services/core/db/bulk.py`) on PostgreSQL: rows read back as an INSERT
would have written them, in the caller's transaction and nowhere else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import cast

import asyncpg
import pytest
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.bulk import copy_rows, draw_ids
from services.core.db.engine import async_url
from services.core.db.models import Assessment, DeadLetter, Organisation, OutboxEvent
from services.core.domain import OrgKind
from services.core.events.outbox import NewEvent, record_events
from services.core.events.types import EventType, Topic

ORGANISATIONS = cast(Table, Organisation.__table__)
DEAD_LETTERS = cast(Table, DeadLetter.__table__)


async def test_rows_read_back_as_an_insert_would_have_written_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Enums as their text, the uuid default, server defaults, JSON documents and JSON null."""
    rows: list[dict[str, object]] = [
        {
            "kind": OrgKind.PROVIDER,
            "name": "GGZ Voorbeeld",
            "agb_code": "73000001",
            "uzovi_code": None,
        },
        {
            "kind": OrgKind.INSURER,
            "name": "Zorgverzekeraar Voorbeeld",
            "agb_code": None,
            "uzovi_code": "3311",
        },
    ]
    letter = {
        "consumer_group": "rules",
        "event_id": uuid.uuid4(),
        "topic": "vroegsignaal.signals.v1",
        "event": {"id": "x", "data": {"figures": [1.5, None], "tekst": "wachttijd ≥ 4 weken"}},
        "error": "ValueError('x')",
        "attempts": 5,
    }
    async with sessions() as session, session.begin():
        await session.execute(select(1))  # the transaction begins on the database
        await copy_rows(session, ORGANISATIONS, rows)
        second = {**letter, "event_id": uuid.uuid4(), "event": None}
        await copy_rows(session, DEAD_LETTERS, [letter, second])
        await copy_rows(
            session,
            ORGANISATIONS,
            [{"kind": OrgKind.PROVIDER, "name": "Alleen", "agb_code": "73000003"}],
        )
        # The same rows through an INSERT, to compare with.
        await session.execute(
            insert(ORGANISATIONS), [{**rows[0], "name": "Via insert", "agb_code": "73000002"}]
        )
    async with sessions() as session:
        stored = {o.name: o for o in (await session.scalars(select(Organisation))).all()}
        parked, nothing = (await session.scalars(select(DeadLetter).order_by(DeadLetter.id))).all()
        raw = await session.execute(text("SELECT name, kind FROM organisations"))
        kinds = {str(row.name): str(row.kind) for row in raw}
    copied, inserted = stored["GGZ Voorbeeld"], stored["Via insert"]
    assert (
        copied.kind is OrgKind.PROVIDER
        and stored["Zorgverzekeraar Voorbeeld"].kind is OrgKind.INSURER
    )
    assert kinds["GGZ Voorbeeld"] == kinds["Via insert"]  # the same text in the column
    assert isinstance(copied.id, uuid.UUID) and copied.id != stored["Zorgverzekeraar Voorbeeld"].id
    assert copied.created_at is not None and copied.updated_at is not None
    assert inserted.created_at is not None
    assert stored["Zorgverzekeraar Voorbeeld"].agb_code is None
    assert parked.event == letter["event"] and parked.attempts == 5 and parked.replayed_at is None
    assert nothing.event is None  # JSON null, as an INSERT writes None
    assert stored["Alleen"].kind is OrgKind.PROVIDER  # one row: by INSERT


async def test_outside_a_begun_transaction_it_refuses(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """COPY before the transaction's first statement would commit on its own: refused."""
    async with sessions() as session, session.begin():
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await copy_rows(
                session,
                ORGANISATIONS,
                [
                    {"kind": OrgKind.PROVIDER, "name": "Los"},
                    {"kind": OrgKind.PROVIDER, "name": "Vast"},
                ],
            )
    async with sessions() as session:
        assert (await session.scalar(select(func.count()).select_from(Organisation))) == 0


async def test_a_violated_constraint_is_sqlalchemys_integrity_error_and_nothing_stays(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    twice = [  # the name is unique
        {"kind": OrgKind.PROVIDER, "name": "Dubbel", "agb_code": agb}
        for agb in ("73000010", "73000011")
    ]
    async with sessions() as session:
        await session.begin()
        await session.execute(select(1))
        with pytest.raises(IntegrityError):
            await copy_rows(session, ORGANISATIONS, twice)
        await session.rollback()
    async with sessions() as session:
        assert (await session.scalar(select(func.count()).select_from(Organisation))) == 0


async def test_drawn_ids_are_new_and_increasing(sessions: async_sessionmaker[AsyncSession]) -> None:
    table = cast(Table, Assessment.__table__)
    async with sessions() as session, session.begin():
        first = await draw_ids(session, table, 3)
        second = await draw_ids(session, table, 2)
        assert await draw_ids(session, table, 0) == []
    assert first == sorted(first) and second == sorted(second)
    assert len(set(first + second)) == 5 and max(first) < min(second)


async def test_events_copied_to_the_outbox_wake_their_topics_listeners_at_commit(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """The outbox trigger (one NOTIFY per topic a statement wrote) fires for COPY as for INSERT:
    the PostgreSQL bus's consumers wake on it."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(async_url(database_url).replace("+asyncpg", ""))
    try:
        await listener.add_listener("vroegsignaal_outbox", lambda *args: heard.put_nowait(args[3]))
        department = str(uuid.uuid4())
        events = [
            NewEvent(EventType.SIGNAL_RECEIVED, "ingest", department, department, {"n": n})
            for n in range(3)
        ]
        async with sessions() as session, session.begin():
            await record_events(session, events)
            assert heard.empty()  # not before the commit
        payload = await asyncio.wait_for(heard.get(), 5)
        assert payload == Topic.SIGNALS.value
    finally:
        await listener.close()
    async with sessions() as session:
        stored = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert [row.event["data"] for row in stored] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [row.event_id for row in stored] == [event.id for event in events]
    assert all(isinstance(row.created_at, datetime) and row.created_at.tzinfo for row in stored)
    assert all(row.created_at <= datetime.now(UTC) for row in stored)

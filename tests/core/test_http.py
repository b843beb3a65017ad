"""The shared HTTP app: health, readiness, reference lists and errors as problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.config import BusBackend, Settings
from services.core.db.migrate import schema_head
from services.core.http.app import create_app
from services.core.reference import seed_reference_data


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def client(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    async with sessions() as session, session.begin():
        await seed_reference_data(session)
    async for client in client_for(create_app(Settings(), database_url)):
        yield client


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "schema": "0009",
        "bus": "postgres",
    }


async def test_readiness_fails_while_the_kafka_bus_is_unreachable(database_url: str) -> None:
    settings = Settings(bus=BusBackend.KAFKA, kafka_bootstrap_servers="127.0.0.1:1")
    async for client in client_for(create_app(settings, database_url)):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"] == "5"
        assert ready.json()["bus"].startswith("kafka: Kafka unreachable")


async def test_the_signal_api_stays_ready_while_kafka_is_away(database_url: str) -> None:
    """Signals wait in the outbox for the relay; only the report says the bus is away."""
    settings = Settings(bus=BusBackend.KAFKA, kafka_bootstrap_servers="127.0.0.1:1")
    async for client in client_for(create_app(settings, database_url, ready_needs_bus=False)):
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["bus"].startswith("kafka: Kafka unreachable")


async def test_a_schema_migrated_ahead_by_newer_code_is_ready(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """During a rolling upgrade the new release migrates first; old replicas keep serving."""
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        async for client in client_for(create_app(Settings(), database_url)):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["schema"].startswith("9999 (newer than this code's")
    finally:
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": schema_head()}
            )


async def test_readiness_with_a_reachable_kafka_bus(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = Settings(
        bus=BusBackend.KAFKA, kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=4
    )
    async for client in client_for(create_app(settings, database_url)):
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["bus"] == "kafka"


async def test_readiness_fails_while_the_database_is_unreachable() -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/nothing"
    async for client in client_for(create_app(Settings(), unreachable)):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        assert "unreachable" in ready.json()["database"]


async def test_reference_lists(client: httpx.AsyncClient) -> None:
    regions = (await client.get("/v1/regions")).json()
    assert len(regions) == 42
    assert {"code": "zuid-limburg", "name": "Zuid-Limburg", "active": True}.items() <= next(
        r for r in regions if r["code"] == "zuid-limburg"
    ).items()
    care_types = (await client.get("/v1/care-types")).json()
    hic = next(c for c in care_types if c["code"] == "acute.hic")
    assert hic["cluster"] == "acute" and hic["waiting_norms_apply"] is False


async def test_errors_are_problem_details(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == missing.json() | {"status": 404, "title": "Not Found"}
    wrong_method = await client.delete("/v1/regions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405

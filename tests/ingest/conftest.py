"""An ingest API on the test database with a small world: two providers, two insurers, tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.credentials import create_api_key, create_inbound_source, role_for
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import (
    OrganisationSpec,
    add_organisation,
    resolve_organisation,
)
from services.core.config import Settings
from services.core.db.models import OutboxEvent, Signal
from services.core.domain import OrgKind
from services.core.http.app import create_app
from services.core.reference import seed_reference_data

PROVIDER_A = "73990001"  # Vechtstroom GGZ, IJssel-Vecht
PROVIDER_B = "73990002"  # Noorderlicht, Groningen


@dataclass
class World:
    """Keys by who holds them, department ids by code, the inbound secret."""

    keys: dict[str, str] = field(default_factory=dict)
    departments: dict[str, uuid.UUID] = field(default_factory=dict)
    inbound_secret: str = ""

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def build_world(session: AsyncSession) -> World:
    await seed_reference_data(session)
    world = World()
    await add_organisation(
        session, OrganisationSpec(OrgKind.PROVIDER, "Vechtstroom GGZ", agb=PROVIDER_A)
    )
    await add_organisation(
        session, OrganisationSpec(OrgKind.PROVIDER, "GGZ Noorderlicht", agb=PROVIDER_B)
    )
    await add_organisation(
        session,
        OrganisationSpec(
            OrgKind.INSURER, "Zilveren Kruis", uzovi="9901", coordinates=("ijssel-vecht",)
        ),
    )
    await add_organisation(
        session,
        OrganisationSpec(OrgKind.INSURER, "Menzis", uzovi="9904", coordinates=("groningen",)),
    )
    for agb, code, care_type, region, capacity in (
        (PROVIDER_A, "HIC-ZWOLLE", "acute.hic", "ijssel-vecht", 24),
        (PROVIDER_A, "FACT-ZWOLLE", "outreach.fact", "ijssel-vecht", 180),
        (PROVIDER_A, "KIB-ZWOLLE", "secure.kib", "ijssel-vecht", 10),
        (PROVIDER_B, "HIC-GRN", "acute.hic", "groningen", 20),
    ):
        department = await add_department(
            session,
            DepartmentSpec(agb, code, f"Afdeling {code}", care_type, region, None, capacity),
        )
        world.departments[code] = department.id
    for who, ref in (
        ("provider_a", PROVIDER_A),
        ("provider_b", PROVIDER_B),
        ("insurer_zk", "9901"),
        ("insurer_menzis", "9904"),
        ("table_ijssel_vecht", "ijssel-vecht"),
        ("national_table", "national_table"),
        ("governance", "governance"),
        ("operator", "operator"),
    ):
        organisation = await resolve_organisation(session, ref)
        _, clear = await create_api_key(
            session, organisation=organisation, role=role_for(organisation, None)
        )
        world.keys[who] = clear
    _, world.inbound_secret = await create_inbound_source(
        session,
        organisation=await resolve_organisation(session, PROVIDER_A),
        name="vechtstroom-epd",
    )
    return world


async def add_fact_teams(session: AsyncSession, world: World, count: int) -> None:
    """`count` FACT teams of provider A in IJssel-Vecht (FACT-000, FACT-001, …), 40 places
    each: many departments of one kind, for tests that need a signal per department."""
    for n in range(count):
        department = await add_department(
            session,
            DepartmentSpec(
                PROVIDER_A, f"FACT-{n:03d}", f"FACT {n}", "outreach.fact", "ijssel-vecht", None, 40
            ),
        )
        world.departments[department.code] = department.id


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as session, session.begin():
        return await build_world(session)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"rate_limit_per_second": 10_000, "rate_limit_burst": 10_000}
    values.update(overrides)
    return Settings(**values)


async def open_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def client(database_url: str, world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(), database_url, routers=ingest.routers())
    async for client in open_client(app):
        yield client


def signal(department: str = "HIC-ZWOLLE", **fields: Any) -> dict[str, Any]:
    """A valid staffing signal, an hour old, with fields replaced as given."""
    body: dict[str, Any] = {
        "department": department,
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "data": {"fte_budgeted": 30.0, "fte_filled": 24.5, "sick_leave_pct": 8.5},
    }
    body.update(fields)
    return body


async def stored_counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """(signals, outbox events) in the database."""
    async with sessions() as session:
        signals = await session.scalar(select(func.count()).select_from(Signal))
        events = await session.scalar(select(func.count()).select_from(OutboxEvent))
    return int(signals or 0), int(events or 0)

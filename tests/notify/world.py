"""A world for the notifier's tests: the ingest world, a second FACT team in IJssel-Vecht (so the
first is not the last of its kind), people at the tables, and an app that runs signals through
the rules engine and the notifier on the PostgreSQL bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.credentials import add_user
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import resolve_organisation
from services.core.db.models import Alert, AlertEvent, Delivery
from services.core.domain import AlertKind, DeliveryChannel
from services.core.http.app import create_app
from services.notify.policy import Policy, load_policy
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import PROVIDER_B, World, build_world, settings

AMS = ZoneInfo("Europe/Amsterdam")
REGIONAL_MEMBER = "anouk@tafel-ijssel-vecht.test"
NATIONAL_MEMBER = "ruben@landelijke-tafel.test"
INSURER_MEMBER = "inkoop@zk.test"
T = TypeVar("T")


@dataclass
class NotifyWorld:
    world: World
    app: FastAPI
    policy: Policy

    def auth(self, who: str) -> dict[str, str]:
        return self.world.auth(who)

    @property
    def fact(self) -> uuid.UUID:
        return self.world.departments["FACT-ZWOLLE"]


async def notify_world(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    *,
    deliver: bool = False,
    **overrides: Any,
) -> NotifyWorld:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        await add_department(
            session,
            DepartmentSpec(
                PROVIDER_B,
                "FACT-DEVENTER",
                "FACT Deventer",
                "outreach.fact",
                "ijssel-vecht",
                None,
                400,
            ),
        )
        for ref, email in (
            ("ijssel-vecht", REGIONAL_MEMBER),
            ("national_table", NATIONAL_MEMBER),
            ("9901", INSURER_MEMBER),
        ):
            await add_user(
                session,
                organisation=await resolve_organisation(session, ref),
                email=email,
                password="een lang wachtwoord",
                name=email.split("@")[0].title(),
            )
    config = settings(public_url="https://vroegsignaal.test", **overrides)
    policy = load_policy()
    notify = notify_service(config, policy)
    app = create_app(
        config,
        database_url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(load_ruleset()), *notify.subscriptions],
        # The delivery worker only where a test sends for real; the timers are swept by hand.
        background=[notify.deliveries] if deliver else [],
    )
    notify.install(app)
    return NotifyWorld(world, app, policy)


def staffing(days_ago: float, department: str = "FACT-ZWOLLE", **data: Any) -> dict[str, Any]:
    return {
        "department": department,
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "data": {"fte_budgeted": 20.0, **data},
    }


async def post(client: httpx.AsyncClient, w: NotifyWorld, body: dict[str, Any]) -> None:
    response = await client.post("/v1/signals", json=body, headers=w.auth("provider_a"))
    assert response.status_code == 202, response.text


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = 20.0
) -> T:
    """Poll until `probe` gives something truthy (the bus works asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def department_alert(
    sessions: async_sessionmaker[AsyncSession], department: uuid.UUID
) -> Alert | None:
    async with sessions() as session:
        return (
            await session.execute(
                select(Alert)
                .where(Alert.department_id == department, Alert.kind == AlertKind.DEPARTMENT)
                .order_by(Alert.opened_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()


async def timeline(sessions: async_sessionmaker[AsyncSession], alert_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(AlertEvent.type).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
        return [t.value for t in rows.scalars()]


async def emails(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(address, event type) of every e-mail delivery, in the order they were made."""
    async with sessions() as session:
        rows = await session.execute(
            select(Delivery.email, Delivery.event_type)
            .where(Delivery.channel == DeliveryChannel.EMAIL)
            .order_by(Delivery.seq)
        )
        return [(str(a), str(t)) for a, t in rows.all()]

"""Delivery tests: a world with organisations and keys, a real webhook receiver and SMTP server,
a controllable clock, and an app with the delivery routers and worker running.

Reusable by other notifier tests: `receiver`, `smtp`, `clock`, `world`, `provider_a_id`,
`delivery_settings`, `running_app`, `register`, `alert_event`, `queue_alert_events`,
`deliveries_of`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.credentials import add_user
from services.core.admin.organisations import resolve_organisation
from services.core.config import Settings
from services.core.db.models import Alert, Delivery, DeliveryAttempt
from services.core.domain import AlertKind, Level
from services.core.events.envelope import Event
from services.core.http.app import create_app
from services.notify import deliveries
from services.notify.deliveries import enqueue_webhooks
from services.notify.deliveries.ssrf import Resolver
from services.notify.deliveries.worker import DeliveryWorker, delivery_worker
from tests.ingest.conftest import PROVIDER_A, World, build_world
from tests.support.receivers import SmtpSink, WebhookReceiver

TEST_KEY = Fernet.generate_key().decode()
ADMIN_EMAIL = "beheer@vechtstroom.example"


class HandClock:
    """A clock the test moves by hand; the worker schedules retries by it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


def delivery_settings(**overrides: Any) -> Settings:
    """Settings for delivery tests: local receivers allowed, a known key, short timeouts."""
    values: dict[str, Any] = {
        "rate_limit_per_second": 10_000,
        "rate_limit_burst": 10_000,
        "secret_key": TEST_KEY,
        "webhook_allow_private": True,
        "webhook_timeout_seconds": 2.0,
        "public_url": "https://vroegsignaal.example",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    """The ingest tests' world, and an org admin (with an e-mail address) at provider A."""
    async with sessions() as session, session.begin():
        built = await build_world(session)
        await add_user(
            session,
            organisation=await resolve_organisation(session, PROVIDER_A),
            email=ADMIN_EMAIL,
            password="correct horse battery staple",
            org_admin=True,
        )
        await add_user(
            session,
            organisation=await resolve_organisation(session, PROVIDER_A),
            email="medewerker@vechtstroom.example",
            password="correct horse battery staple",
        )
    return built


async def organisation_id(sessions: async_sessionmaker[AsyncSession], ref: str) -> uuid.UUID:
    async with sessions() as session:
        return (await resolve_organisation(session, ref)).id


@pytest.fixture
async def provider_a_id(sessions: async_sessionmaker[AsyncSession], world: World) -> uuid.UUID:
    """Provider A's organisation id: whose endpoints the tests register and queue events for."""
    return await organisation_id(sessions, PROVIDER_A)


@dataclass
class Running:
    """An app with the delivery routers and a delivery worker, and a client for it."""

    app: FastAPI
    client: httpx.AsyncClient
    worker: DeliveryWorker


@asynccontextmanager
async def running_app(
    database_url: str,
    settings: Settings,
    *,
    clock: HandClock,
    resolver: Resolver | None = None,
    poll_interval: float = 0.05,
) -> AsyncIterator[Running]:
    """The app of a notifier process (routers and worker), on the test database."""

    @asynccontextmanager
    async def worker(app: FastAPI) -> AsyncIterator[DeliveryWorker]:
        extra: dict[str, Any] = {"resolver": resolver} if resolver else {}
        async with delivery_worker(
            app.state.settings,
            app.state.sessions,
            clock=clock,
            poll_interval=poll_interval,
            **extra,
        ) as started:
            app.state.delivery_worker = started
            yield started

    app = create_app(settings, database_url, routers=deliveries.routers, background=[worker])
    if resolver is not None:
        app.state.webhook_resolver = resolver
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Running(app=app, client=client, worker=app.state.delivery_worker)


async def register(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    url: str,
    event_types: Sequence[str] = ("alert.opened", "alert.escalated", "alert.resolved"),
) -> tuple[uuid.UUID, str]:
    """Register an endpoint through the API: its id and its secret."""
    answer = await client.post(
        "/v1/subscriptions",
        json={"url": url, "event_types": list(event_types), "description": "test"},
        headers=world.auth(who),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return uuid.UUID(body["id"]), str(body["secret"])


def alert_event(
    kind: str = "alert.opened",
    *,
    alert_id: uuid.UUID | None = None,
    department: str = "HIC-ZWOLLE",
    **data: Any,
) -> Event:
    """An alerts-topic event as the notifier consumes it."""
    alert = alert_id or uuid.uuid4()
    return Event(
        id=uuid.uuid4(),
        type=f"nl.vroegsignaal.{kind}",
        source="/vroegsignaal/rules",
        subject=str(alert),
        time=datetime.now(UTC),
        partition_key=str(uuid.uuid5(uuid.NAMESPACE_DNS, department)),
        data={"alert_id": str(alert), "department": department, "level": "watch", **data},
        topic="vroegsignaal.alerts.v1",
        document={},
    )


async def queue_alert_events(
    sessions: async_sessionmaker[AsyncSession],
    organisation: uuid.UUID,
    *events: tuple[str, uuid.UUID | None],
) -> int:
    """Queue alert events (type, alert id) for the organisation's endpoints in one transaction, as
    the notifier does; how many deliveries that made. An event without an alert is about a
    department of its own (so in no order among the others)."""
    queued = 0
    async with sessions() as session, session.begin():
        for kind, alert_id in events:
            department = "HIC-ZWOLLE" if alert_id else f"DEPT-{uuid.uuid4().hex[:8]}"
            queued += await enqueue_webhooks(
                session,
                organisation_id=organisation,
                event=alert_event(kind, alert_id=alert_id, department=department),
                alert_id=alert_id,
            )
    return queued


async def make_alert(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A stored alert for deliveries to refer to (a national coverage alert: the fewest ties)."""
    async with sessions() as session, session.begin():
        alert = Alert(
            kind=AlertKind.COVERAGE,
            care_type_code="acute.hic",
            level=Level.THREATENED,
            reasons=[],
            opened_at=datetime.now(UTC),
            ruleset_version="test",
        )
        session.add(alert)
        await session.flush()
        return alert.id


async def deliveries_of(
    sessions: async_sessionmaker[AsyncSession],
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    """Every delivery in creation order, with its attempts."""
    async with sessions() as session:
        rows = list((await session.scalars(select(Delivery).order_by(Delivery.seq))).all())
        attempts = list(
            (
                await session.scalars(
                    select(DeliveryAttempt).order_by(
                        DeliveryAttempt.attempted_at, DeliveryAttempt.id
                    )
                )
            ).all()
        )
    return [(row, [a for a in attempts if a.delivery_id == row.id]) for row in rows]

"""A world for the digest's tests: the notifier's world (two providers in IJssel-Vecht and
Groningen, insurers, tables, people), a third provider that never reports, a member of the
governance board, departments registered since January — and an app whose rules engine, notifier
and alert API all read one story clock, so a month can be told on its own dates."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.credentials import add_user
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import (
    OrganisationSpec,
    add_organisation,
    resolve_organisation,
)
from services.core.db.models import Department, Digest, OutboxEvent
from services.core.domain import OrgKind
from services.core.events.maintenance import log_status
from services.core.http.app import create_app
from services.notify import digest
from services.notify.policy import load_policy
from services.notify.service import notify_service
from services.notify.worker import Notifier
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import PROVIDER_B, World, build_world, settings
from tests.notify.world import NATIONAL_MEMBER, REGIONAL_MEMBER

AMS = ZoneInfo("Europe/Amsterdam")
PROVIDER_C = "73990003"  # GGZ De Stilte: one department, and it never reports
BOARD_MEMBER = "voorzitter@bo-cruciale-ggz.test"
REGISTERED = datetime(2026, 1, 1, tzinfo=UTC)


class StoryClock:
    """The one clock of the story: set it to the moment being told."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def at(self, year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
        self.now = datetime(year, month, day, hour, minute, tzinfo=AMS).astimezone(UTC)
        return self.now


@dataclass
class DigestWorld:
    world: World
    app: FastAPI
    clock: StoryClock
    options: digest.DigestOptions

    def auth(self, who: str) -> dict[str, str]:
        return self.world.auth(who)


async def build_digest_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    """The rows: the ingest world, FACT Deventer, a silent provider, people at the tables and
    on the board; every department registered on 1 January 2026."""
    async with sessions() as session, session.begin():
        world = await build_world(session)
        for agb, code, care_type, region, capacity in (
            (PROVIDER_B, "FACT-DEVENTER", "outreach.fact", "ijssel-vecht", 400),
            (PROVIDER_C, "CRISIS-PG", "crisis_beds.pg", "groningen", 8),
        ):
            if agb == PROVIDER_C:
                await add_organisation(
                    session, OrganisationSpec(OrgKind.PROVIDER, "GGZ De Stilte", agb=PROVIDER_C)
                )
            department = await add_department(
                session,
                DepartmentSpec(agb, code, f"Afdeling {code}", care_type, region, None, capacity),
            )
            world.departments[code] = department.id
        for ref, email in (
            ("ijssel-vecht", REGIONAL_MEMBER),
            ("national_table", NATIONAL_MEMBER),
            ("governance", BOARD_MEMBER),
        ):
            await add_user(
                session,
                organisation=await resolve_organisation(session, ref),
                email=email,
                password="een lang wachtwoord",
                name=email.split("@")[0].title(),
            )
        await session.execute(update(Department).values(created_at=REGISTERED))
    return world


def digest_app(
    database_url: str,
    clock: StoryClock,
    *,
    deliver: bool = False,
    **overrides: Any,
) -> tuple[FastAPI, digest.DigestOptions]:
    """Ingest, rules, notifier and the digest routes on one app, every part on `clock`."""
    config = settings(public_url="https://vroegsignaal.test", **overrides)
    notify = notify_service(config, load_policy())
    notify.runtime.clock = clock
    notifier = Notifier(
        notify.runtime.policy, zone=config.tz, public_url=config.public_url, clock=clock
    )
    app = create_app(
        config,
        database_url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(load_ruleset(), clock), notifier.subscription()],
        background=[notify.deliveries] if deliver else [],
    )
    notify.install(app)
    return app, digest.DigestOptions.from_settings(config)


async def digest_world(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    *,
    deliver: bool = False,
    **overrides: Any,
) -> DigestWorld:
    world = await build_digest_world(sessions)
    clock = StoryClock()
    app, options = digest_app(database_url, clock, deliver=deliver, **overrides)
    return DigestWorld(world, app, clock, options)


async def settle(sessions: async_sessionmaker[AsyncSession], within: float = 30.0) -> None:
    """Wait until the rules engine and the notifier have applied every event (lag 0)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with sessions() as session:
            status = await log_status(session)
        assert status.dead_letters == 0, "an event was parked as a dead letter"
        lags = {(g.group, g.topic): g.lag for g in status.groups}
        ready = {("rules", "vroegsignaal.signals.v1"), ("notify", "vroegsignaal.alerts.v1")}
        if ready <= lags.keys() and not any(lags.values()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the workers did not catch up: {lags}")
        await asyncio.sleep(0.05)


async def post_signal(
    client: httpx.AsyncClient,
    w: DigestWorld,
    sessions: async_sessionmaker[AsyncSession],
    who: str,
    body: dict[str, Any],
) -> None:
    """Post one signal observed at the story's now, and wait until it has been applied."""
    response = await client.post(
        "/v1/signals",
        json={**body, "observed_at": w.clock().isoformat()},
        headers=w.auth(who),
    )
    assert response.status_code == 202, response.text
    await settle(sessions)


async def digests_made(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, int]]:
    """(period, digest.published events) of every stored digest."""
    async with sessions() as session:
        periods = list((await session.scalars(select(Digest.period).order_by(Digest.period))).all())
        return [
            (
                period,
                int(
                    await session.scalar(
                        select(func.count())
                        .select_from(OutboxEvent)
                        .where(
                            OutboxEvent.type == "nl.vroegsignaal.digest.published",
                            OutboxEvent.event["subject"].astext == period,
                        )
                    )
                    or 0
                ),
            )
            for period in periods
        ]


def department(w: DigestWorld, code: str) -> uuid.UUID:
    return w.world.departments[code]

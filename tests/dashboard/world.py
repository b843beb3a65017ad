"""The dashboard's test world: the notifier's world (providers, insurers, tables, people, an app
running signals → rules → notifier on the PostgreSQL bus) with the dashboard installed, people
of another region and an organisation admin, and helpers to log in and make alerts through the
signal API."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.credentials import add_user
from services.core.admin.organisations import resolve_organisation
from services.core.db.models import Alert
from services.core.domain import EscalationStep, Level
from services.notify.dashboard import install_dashboard
from tests.ingest.conftest import settings
from tests.notify.world import (
    INSURER_MEMBER,
    NATIONAL_MEMBER,
    REGIONAL_MEMBER,
    NotifyWorld,
    department_alert,
    eventually,
    notify_world,
    post,
    staffing,
)

PASSWORD = "een lang wachtwoord"
OTHER_REGION_MEMBER = "inkoop@menzis.test"  # Menzis coordinates Groningen, not IJssel-Vecht
ORG_ADMIN = "beheer@zk.test"  # Zilveren Kruis's own admin
GOVERNANCE_MEMBER = "secretaris@bo.test"
PROVIDER_MEMBER = "kwaliteit@vechtstroom.test"
STEP_OF = {Level.WATCH: EscalationStep.PROVIDER, Level.THREATENED: EscalationStep.REGIONAL_TABLE}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
__all__ = [
    "GOVERNANCE_MEMBER",
    "INSURER_MEMBER",
    "NATIONAL_MEMBER",
    "ORG_ADMIN",
    "OTHER_REGION_MEMBER",
    "PASSWORD",
    "PROVIDER_MEMBER",
    "REGIONAL_MEMBER",
]


@dataclass
class DashboardWorld:
    notify: NotifyWorld

    @property
    def app(self) -> Any:
        return self.notify.app

    def department(self, code: str) -> uuid.UUID:
        return self.notify.world.departments[code]


async def dashboard_world(
    database_url: str, sessions: async_sessionmaker[AsyncSession], **overrides: Any
) -> DashboardWorld:
    """The notifier's world with the dashboard installed, before the app starts."""
    config: dict[str, Any] = {"secret_key": Fernet.generate_key().decode(), **overrides}
    notify = await notify_world(database_url, sessions, **config)
    async with sessions() as session, session.begin():
        for ref, email, admin in (
            ("9904", OTHER_REGION_MEMBER, False),
            ("9901", ORG_ADMIN, True),
            ("governance", GOVERNANCE_MEMBER, False),
            ("73990001", PROVIDER_MEMBER, False),
        ):
            await add_user(
                session,
                organisation=await resolve_organisation(session, ref),
                email=email,
                password=PASSWORD,
                name=email.split("@")[0].title(),
                org_admin=admin,
            )
    dashboard = install_dashboard(
        notify.app, settings(public_url="https://vroegsignaal.test", **config)
    )
    dashboard.state.dashboard.poll_seconds = 0.2
    dashboard.state.dashboard.stream_seconds = 3.0
    return DashboardWorld(notify)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the form, as a browser does: fetch it (session + token), post it."""
    form = await client.get("/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
    )


async def make_alert(
    client: httpx.AsyncClient,
    w: DashboardWorld,
    sessions: async_sessionmaker[AsyncSession],
    *,
    department: str = "FACT-ZWOLLE",
    level: Level = Level.THREATENED,
) -> Alert:
    """Signals through the API until the department's alert has `level` (watch or threatened)."""
    await post(client, w.notify, staffing(4, department, vacancies_fte=2.4, psychiatrist_fte=2.0))
    if level is Level.THREATENED:
        for days_ago in (3, 2, 1):
            await post(
                client,
                w.notify,
                staffing(days_ago, department, vacancies_fte=3.2, psychiatrist_fte=2.0),
            )

    async def probe() -> Alert | None:
        alert = await department_alert(sessions, w.department(department))
        if alert is None or alert.level is not level:
            return None
        # The notifier puts it on its step (a threatened one: the regional table) a moment later.
        wanted = STEP_OF[level]
        return alert if alert.escalation is wanted and alert.step_due_at is not None else None

    return await eventually(probe, f"a {level.value} alert on {department}")

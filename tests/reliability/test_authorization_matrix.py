"""Tenant isolation: every API operation, called by every role and organisation, on objects that
belong to one provider (Vechtstroom GGZ) in one region (IJssel-Vecht) and to its coordinating
insurer. The operations come from the app's own OpenAPI document, so a new endpoint without a row
here fails the test instead of being forgotten. Lists are checked for leaks: an organisation that
may not see an object must not find its id anywhere in the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.organisations import resolve_organisation
from services.core.config import Settings
from services.core.db.models import Alert, Assessment, Delivery, Department, Silence
from services.core.domain import (
    AlertKind,
    AlertStatus,
    DeliveryChannel,
    DeliveryStatus,
    EscalationStep,
    Level,
)
from services.core.http.app import create_app
from services.notify.digest import DigestOptions, Outcome, make_digest
from services.notify.digest.period import Period
from services.notify.service import notify_service
from services.rules import api as rules_api
from tests.ingest.conftest import PROVIDER_A, World, build_world, open_client, signal

CALLERS = (
    "anonymous",
    "provider_a",  # the owner of the department
    "provider_b",  # another provider
    "insurer_zk",  # coordinates IJssel-Vecht
    "insurer_menzis",  # coordinates Groningen only
    "table_ijssel_vecht",
    "national_table",
    "governance",
    "operator",
)
PERIOD = "2026-10"
# Signed by a provider system, not an API key: its own tests cover it (tests/ingest).
NOT_KEYED = {"POST /v1/webhooks/inbound/{source}"}


def expect(default: int, **per_caller: int) -> dict[str, int]:
    """The status per caller: `default` for every keyed caller not named; 401 anonymous."""
    table = dict.fromkeys(CALLERS, default) | {"anonymous": 401}
    table.update(per_caller)
    return table


PUBLIC = dict.fromkeys(CALLERS, 200)
READ_ALL = expect(200)
# Departments of a provider in IJssel-Vecht: the provider, its coordinating insurer, the region's
# table, the board and the operator; not another provider, another insurer or the national table
# (regional care).
DEPARTMENT = expect(200, provider_b=403, insurer_menzis=403, national_table=403)
SIGNALS_OF = DEPARTMENT | {"governance": 403}  # the board sees no raw signals
POSTING = expect(403, provider_a=202, insurer_zk=202)
ALERT = DEPARTMENT
ACTING_AT_REGIONAL_STEP = expect(403, insurer_zk=200, table_ijssel_vecht=200)
COMMENT = ACTING_AT_REGIONAL_STEP | {"provider_a": 200}
SILENCING = expect(403, insurer_zk=201, table_ijssel_vecht=201)
LIFTING = expect(403, insurer_zk=200, table_ijssel_vecht=200)
INSURERS_OWN = expect(404, insurer_zk=200)  # another organisation's endpoint: not found
DIGEST = expect(200, provider_a=403, provider_b=403)

EXPECTED: dict[str, dict[str, int]] = {
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /v1/regions": PUBLIC,
    "GET /v1/care-types": PUBLIC,
    "POST /v1/signals": POSTING,
    "POST /v1/signals/csv": POSTING,
    "GET /v1/departments": READ_ALL,
    "POST /v1/departments": expect(403, provider_a=201, provider_b=201),
    "GET /v1/departments/{department_id}": DEPARTMENT,
    "GET /v1/departments/{department_id}/signals": SIGNALS_OF,
    "GET /v1/departments/{department_id}/assessment": DEPARTMENT,
    "GET /v1/departments/{department_id}/assessments": DEPARTMENT,
    "GET /v1/coverage": READ_ALL,
    "GET /v1/alerts": READ_ALL,
    "GET /v1/alerts/{alert_id}": ALERT,
    "POST /v1/alerts/{alert_id}/acknowledge": ACTING_AT_REGIONAL_STEP,
    "POST /v1/alerts/{alert_id}/comment": COMMENT,
    "POST /v1/alerts/{alert_id}/resolve": ACTING_AT_REGIONAL_STEP,
    "GET /v1/alerts/{alert_id}/nza-notification": ACTING_AT_REGIONAL_STEP,
    "POST /v1/departments/{department_id}/silences": SILENCING,
    "GET /v1/silences": READ_ALL,
    "DELETE /v1/silences/{silence_id}": LIFTING,
    "GET /v1/subscriptions": READ_ALL,
    "POST /v1/subscriptions": expect(201),
    "GET /v1/subscriptions/{subscription_id}": INSURERS_OWN,
    "DELETE /v1/subscriptions/{subscription_id}": expect(404, insurer_zk=204),
    "POST /v1/subscriptions/{subscription_id}/enable": INSURERS_OWN,
    "POST /v1/subscriptions/{subscription_id}/test": expect(404, insurer_zk=202),
    "GET /v1/deliveries": READ_ALL,
    "GET /v1/deliveries/{delivery_id}": INSURERS_OWN,
    "POST /v1/deliveries/retry": expect(404, insurer_zk=202),
    "POST /v1/deliveries/{delivery_id}/retry": expect(404, insurer_zk=202),
    "GET /v1/digests": DIGEST,
    "GET /v1/digests/{period}": DIGEST,
    "GET /v1/digests/{period}.json": DIGEST,
    "GET /v1/digests/{period}.html": DIGEST,
    "GET /v1/digests/{period}.pdf": DIGEST,
}


def _settings() -> Settings:
    return Settings(
        rate_limit_per_second=1e6,
        rate_limit_burst=1e6,
        secret_key=Fernet.generate_key().decode(),
        webhook_allow_private=True,
    )


def _app(database_url: str) -> FastAPI:
    config = _settings()
    notify = notify_service(config)
    app = create_app(
        config, database_url, routers=[*ingest.routers(), *rules_api.routers(), *notify.routers]
    )
    return notify.install(app)


def test_every_operation_has_a_row_in_the_matrix() -> None:
    app = _app("postgresql://nobody@localhost/none")
    operations = {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    }
    assert operations - NOT_KEYED == set(EXPECTED), (
        "every endpoint needs its expected status per role here"
    )


@dataclass
class Objects:
    """Vechtstroom GGZ's FACT team in IJssel-Vecht, and what hangs off it."""

    world: World
    sessions: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    department: uuid.UUID
    subscription: uuid.UUID

    async def alert(self) -> uuid.UUID:
        """A fresh open alert at the regional table's step (the old one resolved)."""
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Alert)
                .where(Alert.department_id == self.department, Alert.status != AlertStatus.RESOLVED)
                .values(status=AlertStatus.RESOLVED, resolved_at=now, resolution="manual")
            )
            alert = Alert(
                kind=AlertKind.DEPARTMENT,
                department_id=self.department,
                region_id=await self._region(session),
                care_type_code="outreach.fact",
                level=Level.THREATENED,
                status=AlertStatus.OPEN,
                escalation=EscalationStep.REGIONAL_TABLE,
                reasons=[],
                opened_at=now,
                ruleset_version="test",
            )
            session.add(alert)
            await session.flush()
            return alert.id

    async def _region(self, session: AsyncSession) -> int:
        department = await session.get(Department, self.department)
        assert department is not None
        return department.region_id

    async def silence(self) -> uuid.UUID:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            insurer = await resolve_organisation(session, "9901")
            silence = Silence(
                department_id=self.department,
                organisation_id=insurer.id,
                reason="Aangekondigde fusie",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=30),
            )
            session.add(silence)
            await session.flush()
            return silence.id

    async def failed_delivery(self) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            insurer = await resolve_organisation(session, "9901")
            delivery = Delivery(
                channel=DeliveryChannel.WEBHOOK,
                organisation_id=insurer.id,
                subscription_id=self.subscription,
                event_id=uuid.uuid4(),
                event_type="alert.opened",
                payload={"type": "alert.opened", "timestamp": "2026-11-01T00:00:00Z", "data": {}},
                status=DeliveryStatus.FAILED,
                attempts=8,
            )
            session.add(delivery)
            await session.flush()
            return delivery.id


async def _prepare(
    database_url: str, sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> Objects:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        department = world.departments["FACT-ZWOLLE"]
        session.add(
            Assessment(
                department_id=department,
                level=Level.THREATENED,
                score=2,
                reasons=[],
                no_alternative=False,
                rule_memory={},
                ruleset_version="test",
                assessed_at=datetime.now(UTC),
            )
        )
    async with sessions() as session, session.begin():
        digest = await make_digest(
            session,
            Period.parse(PERIOD),
            options=DigestOptions.from_settings(_settings()),
            now=datetime.now(UTC),
            force=True,
            publish=False,
        )
        assert digest.outcome in (Outcome.MADE, Outcome.REMADE), digest
    made = await client.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["alert.opened"]},
        headers=world.auth("insurer_zk"),
    )
    assert made.status_code == 201, made.text
    return Objects(world, sessions, client, department, uuid.UUID(made.json()["id"]))


Call = Callable[[Objects, dict[str, str]], Awaitable[httpx.Response]]


def _body(operation: str, objects: Objects) -> tuple[dict[str, Any] | None, str | None]:
    """The request body: valid, so that only who calls decides the answer."""
    unique = uuid.uuid4().hex[:8]
    match operation:
        case "POST /v1/signals":
            return signal("FACT-ZWOLLE", provider_agb=PROVIDER_A), None
        case "POST /v1/signals/csv":
            observed = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            csv = (
                "department,provider_agb,kind,observed_at,fte_budgeted\n"
                f"FACT-ZWOLLE,{PROVIDER_A},staffing,{observed},20\n"
            )
            return None, csv
        case "POST /v1/departments":
            return {
                "code": f"NEW-{unique}",
                "name": "Nieuwe afdeling",
                "care_type": "outreach.fact",
                "region": "ijssel-vecht",
            }, None
        case "POST /v1/alerts/{alert_id}/acknowledge":
            return {"note": "Wij pakken dit op."}, None
        case "POST /v1/alerts/{alert_id}/comment":
            return {"note": "Besproken."}, None
        case "POST /v1/alerts/{alert_id}/resolve":
            return {"note": "Opgelost."}, None
        case "POST /v1/departments/{department_id}/silences":
            ends = (datetime.now(UTC) + timedelta(days=10)).isoformat()
            return {"ends_at": ends, "reason": "Reorganisatie"}, None
        case "POST /v1/subscriptions":
            return {"url": f"http://127.0.0.1:9/{unique}", "event_types": ["alert.opened"]}, None
        case "POST /v1/deliveries/retry":
            return {"subscription": str(objects.subscription)}, None
    return None, None


async def _path(operation: str, objects: Objects) -> str:
    """The operation's path with the ids of the owner's objects (fresh ones where it acts)."""
    _, path = operation.split(" ", 1)
    values: dict[str, str] = {
        "department_id": str(objects.department),
        "subscription_id": str(objects.subscription),
        "period": PERIOD,
    }
    if "{alert_id}" in path:
        values["alert_id"] = str(await objects.alert())
    if "{silence_id}" in path:
        values["silence_id"] = str(await objects.silence())
    if "{delivery_id}" in path:
        values["delivery_id"] = str(await objects.failed_delivery())
    return path.format(**values)


async def _call(operation: str, caller: str, objects: Objects) -> httpx.Response:
    method = operation.split(" ", 1)[0]
    path = await _path(operation, objects)
    headers = {} if caller == "anonymous" else objects.world.auth(caller)
    body, csv = _body(operation, objects)
    if csv is not None:
        headers = headers | {"content-type": "text/csv"}
        return await objects.client.request(method, path, content=csv, headers=headers)
    return await objects.client.request(method, path, json=body, headers=headers)


async def test_every_operation_answers_each_role_as_the_matrix_says(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = _app(database_url)
    wrong: list[str] = []
    async for client in open_client(app):
        objects = await _prepare(database_url, sessions, client)
        for operation, table in EXPECTED.items():
            for caller in CALLERS:
                if (
                    operation == "DELETE /v1/subscriptions/{subscription_id}"
                    and caller == "insurer_zk"
                ):
                    continue  # run last: it deletes the endpoint the other rows use
                answer = await _call(operation, caller, objects)
                if answer.status_code != table[caller]:
                    wrong.append(
                        f"{operation} as {caller}: {answer.status_code}, expected"
                        f" {table[caller]} ({answer.text[:120]})"
                    )
                assert answer.status_code < 500, (operation, caller, answer.text)
        deleted = await _call("DELETE /v1/subscriptions/{subscription_id}", "insurer_zk", objects)
        if deleted.status_code != 204:
            wrong.append(f"DELETE subscription as insurer_zk: {deleted.status_code}")
    assert not wrong, "\n".join(wrong)


LISTS = ("/v1/departments", "/v1/alerts", "/v1/silences", "/v1/subscriptions", "/v1/deliveries")
NOT_TO_SEE = ("provider_b", "insurer_menzis")


async def test_no_list_shows_an_organisation_what_belongs_to_another(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = _app(database_url)
    async for client in open_client(app):
        objects = await _prepare(database_url, sessions, client)
        secrets = {
            "department": str(objects.department),
            "alert": str(await objects.alert()),
            "silence": str(await objects.silence()),
            "subscription": str(objects.subscription),
            "delivery": str(await objects.failed_delivery()),
        }
        for caller in NOT_TO_SEE:
            for path in LISTS:
                answer = await client.get(path, headers=objects.world.auth(caller))
                assert answer.status_code == 200, (path, caller, answer.text)
                leaked = [name for name, ident in secrets.items() if ident in answer.text]
                assert not leaked, f"{path} shows {caller} another's {leaked}"
        # The owner and its insurer do see them: the check above could fail.
        for path, caller, what in (
            ("/v1/alerts", "provider_a", "alert"),
            ("/v1/silences", "insurer_zk", "silence"),
            ("/v1/subscriptions", "insurer_zk", "subscription"),
            ("/v1/deliveries", "insurer_zk", "delivery"),
        ):
            answer = await client.get(path, headers=objects.world.auth(caller))
            assert secrets[what] in answer.text, (path, caller)

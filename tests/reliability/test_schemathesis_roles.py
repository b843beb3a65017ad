"""schemathesis over the whole app's OpenAPI document in one run, once per role.

The app is the one `vroegsignaal up` serves (services/cli/run.py): the ingest, rules and notifier
routers (signals, departments, assessments, coverage, alerts, silences, webhooks and deliveries,
digests), the rules engine and the notifier on the PostgreSQL bus, and the dashboard (whose
pages are not in the document). For each role a valid API key of that role calls every
documented operation with generated requests: no answer may be a 5xx or break its own
documented schema (tests/support/fuzzing.py). The per-router fuzz tests (tests/ingest,
tests/notify, tests/digest) go deeper with one or two roles each; this one makes sure no role
meets an operation that breaks.

Bounded in time: VROEGSIGNAAL_FUZZ_EXAMPLES examples per operation and role (default 6).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from services import ingest
from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.http.app import create_app
from services.notify.dashboard import install_dashboard
from services.notify.digest import DigestOptions, make_digest
from services.notify.digest.period import Period
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import World, build_world
from tests.ingest.test_fuzz import _reset
from tests.notify.world import staffing
from tests.support.fuzzing import examples, fuzz_operation, load_schema, operations
from tests.support.live_server import LiveServer

# One API key per role (tests/ingest/conftest.py `build_world`).
ROLES = {
    "provider": "provider_a",
    "insurer": "insurer_zk",
    "regional_table": "table_ijssel_vecht",
    "national_table": "national_table",
    "governance": "governance",
    "admin": "operator",
}
TAGS = {
    "operations",
    "reference",
    "signals",
    "departments",
    "assessments",
    "coverage",
    "alerts",
    "silences",
    "webhooks",
    "digests",
}


def _settings() -> Settings:
    return Settings(
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
        secret_key=Fernet.generate_key().decode(),
    )


async def _public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]  # every name is public here: no real DNS lookups while fuzzing


def _app(database_url: str) -> FastAPI:
    config = _settings()
    notify = notify_service(config)
    app = create_app(
        config,
        database_url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(load_ruleset()), *notify.subscriptions],
    )
    notify.install(app)
    install_dashboard(app, config)
    app.state.webhook_resolver = _public
    return app


async def _world(database_url: str) -> World:
    await _reset(database_url, build=False)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            world = await build_world(session)
        async with make_sessions(engine)() as session, session.begin():
            await make_digest(
                session,
                Period(2026, 10),
                options=DigestOptions.from_settings(_settings()),
                now=datetime(2026, 11, 1, 6, tzinfo=UTC),
            )
        return world
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    world = asyncio.run(_world(database_url))
    with LiveServer(_app(database_url)) as server:
        # A real alert, so that some generated filters meet data.
        response = httpx.post(
            f"{server.base}/v1/signals",
            json=staffing(1, vacancies_fte=4.0, psychiatrist_fte=0.0),
            headers=world.auth("provider_a"),
        )
        assert response.status_code == 202, response.text
        yield server, world
    asyncio.run(_reset(database_url, build=False))


def test_the_run_covers_every_router_of_the_app() -> None:
    document = _app("postgresql://nobody@localhost/none").openapi()
    tags = {
        tag for item in document["paths"].values() for op in item.values() for tag in op["tags"]
    }
    assert tags == TAGS, "a router is missing from the app, or a new tag needs a look here"


@pytest.mark.parametrize("role", list(ROLES))
def test_no_role_gets_a_server_error_or_an_answer_off_its_schema(
    role: str, live: tuple[LiveServer, World]
) -> None:
    server, world = live
    schema = load_schema(server.base)
    everything = operations(_app("postgresql://nobody@localhost/none"))
    assert len(everything) >= 35
    broken: list[str] = []
    for label in everything:
        try:
            fuzz_operation(
                server.base,
                label,
                world.auth(ROLES[role]),
                max_examples=examples(6),
                schema=schema,
            )
        # Collect every operation's failure, then fail (schemathesis raises a FailureGroup, a
        # BaseExceptionGroup).
        except (Exception, BaseExceptionGroup) as exc:
            broken.append(f"{label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not broken, f"as {role}:\n\n" + "\n\n".join(broken)

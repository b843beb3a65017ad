"""Schema-based fuzzing of the notifier's routes (alerts, silences, subscriptions, deliveries)
with schemathesis against a real server: no answer may be a 5xx or break its own schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from services import ingest
from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.http.app import create_app
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import World, build_world
from tests.ingest.test_fuzz import _reset
from tests.notify.world import staffing
from tests.support.fuzzing import examples, fuzz_operation, operations
from tests.support.live_server import LiveServer

ROLES = ("insurer_zk", "national_table")


def _app(database_url: str) -> Any:
    config = Settings(
        rate_limit_per_second=1e6,
        rate_limit_burst=1e6,
        secret_key=Fernet.generate_key().decode(),
    )
    notify = notify_service(config)
    app = create_app(
        config,
        database_url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(load_ruleset()), *notify.subscriptions],
    )
    return notify.install(app)


async def _world(database_url: str) -> World:
    await _reset(database_url, build=False)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            return await build_world(session)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    world = asyncio.run(_world(database_url))
    with LiveServer(_app(database_url)) as server:
        # One real alert, so that some generated ids and filters meet data.
        response = httpx.post(
            f"{server.base}/v1/signals",
            json=staffing(1, vacancies_fte=4.0, psychiatrist_fte=0.0),
            headers=world.auth("provider_a"),
        )
        assert response.status_code == 202, response.text
        yield server, world
    asyncio.run(_reset(database_url, build=False))


def _operations() -> list[str]:
    """Every documented operation of the notifier's routers (the document needs no database)."""
    app = _app("postgresql://nobody@localhost/none")
    notify_paths = (
        "/v1/alerts",
        "/v1/silences",
        "/v1/subscriptions",
        "/v1/deliveries",
    )  # digests: tests/digest
    return operations(app, lambda path: path.startswith(notify_paths) or path.endswith("/silences"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", _operations())
def test_no_server_errors_on_the_notifier_routes(
    label: str, role: str, live: tuple[LiveServer, World]
) -> None:
    server, world = live
    fuzz_operation(server.base, label, world.auth(role), max_examples=examples(25))

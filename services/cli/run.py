"""`up`, `migrate` and `seed`: bring the database and the service to life."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import typer
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from services import ingest
from services.cli.common import (
    JSON_OPTION,
    checked,
    describe_counts,
    emit,
    err,
    fail,
    out,
    run_in_transaction,
    run_service,
    settings,
)
from services.core.config import Settings
from services.core.db import migrate as migrations
from services.core.db.engine import make_engine, make_sessions
from services.core.db.server import open_database
from services.core.demo import DemoWorld, load_demo_world
from services.core.http.app import create_app
from services.core.reference import seed_reference_data
from services.notify.dashboard import install_dashboard
from services.notify.policy import load_policy
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.reload import RulesetHolder, reload_on_sighup
from services.rules.ruleset import Ruleset, load_ruleset, record_ruleset
from services.rules.silence import silence_schedule


def _step(message: str) -> float:
    err.print(f"[dim]•[/] {message}…", end=" ")
    return time.monotonic()


def _done(started: float, detail: str = "") -> None:
    err.print(
        f"[green]done[/] ({time.monotonic() - started:.1f} s){' ' + detail if detail else ''}"
    )


def migrate_command(as_json: bool = JSON_OPTION) -> None:
    """Upgrade the database schema to the newest revision."""
    config = settings()
    with open_database(config) as url:
        started = _step("Migrating the database schema")
        asyncio.run(migrations.upgrade(url))
        _done(started)
    emit(as_json, {"migrated": "head"}, lambda: None)


def seed_command(as_json: bool = JSON_OPTION) -> None:
    """Load the reference data (regions, care types, norms, tables); safe to run again."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        return (await seed_reference_data(session)).as_dict()

    report = run_in_transaction(work)
    emit(as_json, report, lambda: out.print(f"Reference data: {describe_seed(report)}"))


def describe_seed(report: dict[str, dict[str, int]]) -> str:
    """One line for people: how much of each kind of reference data there is, and what changed."""
    labels = {
        "regions": "regions",
        "care_types": "care types",
        "norms": "waiting-time norms",
        "organisations": "governance organisations",
    }
    return ", ".join(describe_counts(report[kind], label) for kind, label in labels.items())


async def _prepare(url: str, demo: bool) -> DemoWorld | None:
    started = _step("Migrating the database schema")
    await migrations.upgrade(url)
    _done(started)
    engine = make_engine(url, pool_size=2)
    try:
        async with make_sessions(engine)() as session, session.begin():
            started = _step("Loading reference data")
            report = await seed_reference_data(session)
            _done(started, describe_seed(report.as_dict()))
            if not demo:
                return None
            started = _step("Loading the demo world")
            world = await load_demo_world(session)
            _done(started, world.summary())
            return world
    finally:
        await engine.dispose()


async def _record_ruleset(url: str, ruleset: Ruleset) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            await record_ruleset(session, ruleset)
    finally:
        await engine.dispose()
    out.print(f"Ruleset {ruleset.file.name} {ruleset.version} ({len(ruleset.rules)} rules)")


async def _serve(config: Settings, url: str, host: str, port: int, demo: bool) -> None:
    ruleset = checked(lambda: load_ruleset(config.ruleset))
    world = await _prepare(url, demo)
    await _record_ruleset(url, ruleset)
    holder = RulesetHolder(ruleset, config.ruleset)
    notify = checked(lambda: notify_service(config, load_policy(config.escalation_policy)))
    out.print(f"Escalation policy {notify.runtime.policy().version}")
    app = create_app(
        config,
        url,
        routers=[*ingest.routers(), *rules_api.routers(), *notify.routers],
        subscriptions=[rules_worker.subscription(holder), *notify.subscriptions],
        relay=True,
        background=[
            lambda app: silence_schedule(app.state.sessions, holder),
            lambda app: reload_on_sighup(holder, app.state.sessions),
            *notify.background,
        ],
    )
    notify.install(app)
    checked(lambda: install_dashboard(app, config, ruleset=holder))
    app.state.no_alternative_share = ruleset.file.no_alternative_share
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # Open live-update streams end by themselves; a stop does not wait for them.
            timeout_graceful_shutdown=5,
        )
    )
    base = f"http://{host}:{port}"
    if world is not None:
        credentials_file = config.data_dir / "demo-credentials.json"
        world.write_credentials(credentials_file)
        world.print_credentials(out, base)
        out.print(f"Every demo key and login: {credentials_file}")
    out.print(
        f"\nVroegsignaal runs at [bold]{base}[/]  ·  dashboard {base}/  ·  API docs {base}/docs"
        "  ·  Ctrl-C stops it"
    )
    await server.serve()
    if not server.started:
        fail(f"could not listen on {host}:{port} (is another process using the port?)")


def up_command(
    demo: bool = typer.Option(False, "--demo", help="Add demo organisations, departments, keys."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Migrate, seed and run every service in one process (a single machine, a pilot)."""
    config = settings()
    where = config.data_dir / "pgdata"
    started = _step(
        f"Starting embedded PostgreSQL in {where}"
        if config.database_url is None
        else "Connecting to PostgreSQL"
    )
    with open_database(config) as url:
        _done(started)
        # Ctrl-C and SIGTERM end the server; leaving the `with` then stops embedded PostgreSQL.
        with contextlib.suppress(KeyboardInterrupt):
            run_service(_serve(config, url, host, port, demo))
        err.print("[dim]Stopping…[/]")

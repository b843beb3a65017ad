"""`ingest`, `rules` and `notify`: one service per process, for the production topology.

Each runs until SIGTERM (or Ctrl-C), then stops taking work, lets the work in hand finish and
commit, leaves its consumer groups and exits 0 — within `SHUTDOWN_GRACE_SECONDS`, or it is
stopped hard and exits 1, so an orchestrator's kill never meets a process still half-way. None
of them migrates: run `vroegsignaal migrate` first (a Job); `/readyz` answers 503 until the schema
is at head. Logs are JSON lines on stdout.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from types import FrameType

import typer
import uvicorn
from fastapi import FastAPI

from services import ingest
from services.cli.common import checked, err, fail, run_service, settings
from services.core import heap
from services.core.config import Settings
from services.core.db.server import open_database
from services.core.http.app import create_app
from services.core.logs import configure_logging
from services.notify.dashboard import install_dashboard
from services.notify.policy import load_policy
from services.notify.service import notify_service
from services.rules import api as rules_api
from services.rules import worker as rules_worker
from services.rules.reload import RulesetHolder, reload_on_sighup
from services.rules.ruleset import Ruleset, load_ruleset, record_ruleset
from services.rules.silence import silence_schedule

log = logging.getLogger("vroegsignaal.process")
HOST = typer.Option("0.0.0.0", help="Address to listen on.")  # noqa: S104 (a container's port)


def ingest_command(host: str = HOST, port: int = typer.Option(8000, help="Port.")) -> None:
    """The signal API (and, on the Kafka bus, the outbox relay)."""

    def build(config: Settings, url: str) -> FastAPI:
        ruleset = checked(lambda: load_ruleset(config.ruleset))
        app = create_app(
            config,
            url,
            routers=[*ingest.routers(), *rules_api.routers()],
            relay=True,
            ready_needs_bus=False,  # signals wait in the outbox while Kafka is away
        )
        app.state.no_alternative_share = ruleset.file.no_alternative_share
        return app

    _run("ingest", build, host, port)


def rules_command(
    metrics_port: int = typer.Option(9100, help="Port of /healthz, /readyz and /metrics."),
    host: str = HOST,
) -> None:
    """The rules worker: signals in, assessments, alerts and coverage out (any number of them)."""

    def build(config: Settings, url: str) -> FastAPI:
        ruleset = checked(lambda: load_ruleset(config.ruleset))
        holder = RulesetHolder(ruleset, config.ruleset)
        return create_app(
            config,
            url,
            subscriptions=[rules_worker.subscription(holder)],
            gc_thresholds=heap.BATCH_WORKER,
            background=[
                lambda app: _recorded(app, ruleset),
                lambda app: silence_schedule(app.state.sessions, holder),
                lambda app: reload_on_sighup(holder, app.state.sessions),
            ],
        )

    _run("rules", build, host, metrics_port)


def notify_command(host: str = HOST, port: int = typer.Option(8001, help="Port.")) -> None:
    """The notifier: alert API, dashboard, deliveries, escalation timers, monthly digest."""

    def build(config: Settings, url: str) -> FastAPI:
        notify = checked(lambda: notify_service(config, load_policy(config.escalation_policy)))
        app = create_app(
            config,
            url,
            routers=notify.routers,
            subscriptions=notify.subscriptions,
            background=notify.background,
        )
        notify.install(app)
        holder = RulesetHolder(checked(lambda: load_ruleset(config.ruleset)), config.ruleset)
        checked(lambda: install_dashboard(app, config, ruleset=holder))
        return app

    _run("notify", build, host, port)


@asynccontextmanager
async def _recorded(app: FastAPI, ruleset: Ruleset) -> AsyncIterator[None]:
    """Record the ruleset this worker judges with (version, hash, when), as `up` does."""
    async with app.state.sessions() as session, session.begin():
        await record_ruleset(session, ruleset)
    log.info("ruleset", extra={"version": ruleset.version, "rules": len(ruleset.rules)})
    yield


class _Server(uvicorn.Server):
    """uvicorn, with a hard stop when a graceful one takes longer than the grace period."""

    def __init__(self, config: uvicorn.Config, grace: float) -> None:
        super().__init__(config)
        self.grace = grace
        self.stopped_hard = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.info("stopping", extra={"signal": sig, "grace_seconds": self.grace})
            timer = threading.Timer(self.grace, self._hard_stop)
            timer.daemon = True
            timer.start()
        super().handle_exit(sig, frame)

    def _hard_stop(self) -> None:
        log.error("did not stop within the grace period: stopping hard")
        logging.shutdown()
        os._exit(1)


def _run(name: str, build: Callable[[Settings, str], FastAPI], host: str, port: int) -> None:
    config = settings()
    configure_logging(
        json=config.log_format == "json"
        or (config.log_format == "auto" and not sys.stdout.isatty())
    )
    with open_database(config) as url:
        app = build(config, url)
        server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                lifespan="on",
                log_config=None,  # our JSON lines, not uvicorn's own format
                timeout_graceful_shutdown=max(1, int(config.shutdown_grace_seconds / 2)),
            ),
            grace=config.shutdown_grace_seconds,
        )
        log.info("starting", extra={"service": name, "host": host, "port": port})
        with suppress(KeyboardInterrupt):
            run_service(server.serve())
        if not server.started:
            fail(f"could not listen on {host}:{port} (is another process using the port?)")
        err.print(f"[dim]{name} stopped[/]")

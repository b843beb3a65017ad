"""The `vroegsignaal` command: run the services and administer who takes part."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import typer

from services.cli import (
    admin,
    digest,
    escalation,
    events,
    reference,
    rules,
    run,
    services,
    signals,
)

app = typer.Typer(
    name="vroegsignaal",
    help="Early warning for continuity risks in crucial mental health care (cruciale ggz).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(run.up_command)
app.command("ingest")(services.ingest_command)
app.command("notify")(services.notify_command)
app.command("migrate")(run.migrate_command)
app.command("seed")(run.seed_command)
app.add_typer(reference.regions, name="region")
app.add_typer(reference.care_types, name="care-type")
app.add_typer(admin.orgs, name="org")
app.add_typer(admin.departments, name="department")
app.add_typer(admin.apikeys, name="apikey")
app.add_typer(admin.users, name="user")
app.add_typer(signals.inbound, name="inbound")
app.add_typer(signals.signals, name="signals")
app.add_typer(events.events, name="events")
app.add_typer(rules.rules, name="rules")
app.add_typer(escalation.escalation, name="escalation")
app.command("digest")(digest.digest_command)


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so `finally` blocks run and embedded PostgreSQL is stopped.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

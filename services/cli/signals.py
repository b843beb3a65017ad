"""`inbound add`, `signals import` and `signals replay`: how systems and files bring signals in."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.common import (
    JSON_OPTION,
    checked,
    emit,
    err,
    fail,
    out,
    progress_bar,
    run_in_transaction,
    settings,
)
from services.core.access import load_caller
from services.core.admin.credentials import create_inbound_source
from services.core.admin.organisations import resolve_organisation
from services.core.domain import ROLE_FOR_KIND, SignalSource, slugify
from services.ingest.csv_format import parse_signals_csv
from services.ingest.intake import now
from services.ingest.recording import record_signals
from services.ingest.replay_nza import parse_observed_on, plan_replay, read_nza_file
from services.ingest.replay_nza_store import ReplayReport, store_plan
from services.ingest.validation import SignalsRefused

ORG_HELP = "AGB code, UZOVI code or exact name of the provider or insurer."
CHUNK = 500  # signals per statement: the progress bar moves, memory stays flat

inbound = typer.Typer(
    help="Provider systems that push signals by signed webhook.", no_args_is_help=True
)
signals = typer.Typer(help="Signals from files.", no_args_is_help=True)


@inbound.command("add")
def inbound_add(
    org: str = typer.Option(..., help=ORG_HELP),
    name: str | None = typer.Option(
        None, help="The source's name in the URL; default: from the organisation's name."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a system that pushes signals; prints its signing secret once."""

    async def work(session: AsyncSession) -> dict[str, object]:
        organisation = await resolve_organisation(session, org)
        source, secret = await create_inbound_source(
            session, organisation=organisation, name=name or slugify(organisation.name)
        )
        return {
            "name": source.name,
            "organisation": organisation.name,
            "url": f"/v1/webhooks/inbound/{source.name}",
            "secret": secret,
        }

    made = run_in_transaction(work)

    def human() -> None:
        out.print(f"Inbound source {made['name']} for {made['organisation']}: POST {made['url']}")
        out.print(f"Signing secret: {made['secret']}", highlight=False)
        err.print("Store the secret now: it is not shown again.")

    emit(as_json, made, human)


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{file}: no such file")
    except UnicodeDecodeError:
        fail(f"{file.name}: not UTF-8 text")


@signals.command("import")
def signals_import(
    file: Path = typer.Argument(..., help="CSV file, columns as in docs/csv.md"),
    org: str = typer.Option(..., help=ORG_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store the signals of a CSV file for an organisation; a file with a bad row is refused
    whole, naming each row and field."""
    text = _read(file)
    try:
        parsed = parse_signals_csv(text, source=file.name, now=now())
    except SignalsRefused as exc:
        lines = "\n  ".join(f"{error.path}: {error.message}" for error in exc.errors)
        fail(f"{file.name} refused, nothing stored ({len(exc.errors)} problem(s)):\n  {lines}")

    async def work(session: AsyncSession) -> dict[str, object]:
        organisation = await resolve_organisation(session, org)
        caller = await load_caller(
            session, organisation, ROLE_FOR_KIND[organisation.kind], channel="cli"
        )
        received_at = now()
        stored = 0
        kinds: Counter[str] = Counter()
        with progress_bar(as_json) as progress:
            task = progress.add_task(f"{file.name}: storing", total=len(parsed))
            for start in range(0, len(parsed), CHUNK):
                chunk = parsed[start : start + CHUNK]
                for item in await record_signals(
                    session,
                    caller=caller,
                    signals=chunk,
                    source=SignalSource.CSV,
                    received_at=received_at,
                ):
                    stored += item.stored
                    kinds[item.kind] += 1
                progress.advance(task, len(chunk))
        return {
            "file": file.name,
            "organisation": organisation.name,
            "rows": len(parsed),
            "stored": stored,
            "already_stored": len(parsed) - stored,
            "by_kind": dict(sorted(kinds.items())),
        }

    report = run_in_transaction(work)
    emit(
        as_json,
        report,
        lambda: out.print(
            f"{report['file']}: {report['rows']} signals for {report['organisation']} —"
            f" {report['stored']} stored, {report['already_stored']} already there"
            f" ({', '.join(f'{k} {v}' for k, v in report['by_kind'].items())})"  # type: ignore[attr-defined]
        ),
    )


class _DryRun(Exception):
    """Raised inside the transaction so that a dry run rolls back everything it did."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__("dry run")
        self.report = report


class _Bar:
    """The replay's phases on one rich progress bar (stderr, terminals only)."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, progress.add_task("reading", total=None)

    def phase(self, description: str, total: int) -> None:
        self.progress.update(self.task, description=description, total=total, completed=0)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)


@signals.command("replay")
def signals_replay(
    file: Path = typer.Argument(
        ..., help="NZa ggz waiting-time file (2018 layout), docs/replay.md"
    ),
    observed_at: str | None = typer.Option(
        None,
        "--observed-at",
        help="Day (YYYY-MM-DD) of every signal; default: each row's Peildatum",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and count, store nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay a published waiting-time file: providers, departments and signals, idempotently."""
    text = _read(file)
    config = settings()
    day = checked(lambda: parse_observed_on(observed_at, today=now().astimezone(config.tz).date()))
    plan = checked(
        lambda: plan_replay(read_nza_file(text, file.name), observed_on=day, tz=config.tz)
    )

    async def work(session: AsyncSession) -> ReplayReport:
        with progress_bar(as_json) as progress:
            report = await store_plan(
                session,
                plan,
                file=file.name,
                received_at=now(),
                progress=_Bar(progress),
                dry_run=dry_run,
            )
        if dry_run:
            raise _DryRun(report)
        return report

    try:
        report = run_in_transaction(work)
    except _DryRun as stopped:
        report = stopped.report
    emit(as_json, report.as_dict(), lambda: out.print("\n".join(report.lines()), highlight=False))

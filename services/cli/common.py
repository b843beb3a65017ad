"""What every command shares: the database for one command, errors, and output for people or JSON.

A command's work runs in one transaction: if it raises, nothing it did is kept.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.db.migrate import schema_head
from services.core.db.server import open_database
from services.core.errors import InvalidInput

T = TypeVar("T")
EXIT_INVALID = 2  # the status Click uses for usage errors; scripts can tell bad input apart

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document, for scripts.")


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit with status 2; the caller has changed nothing."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(EXIT_INVALID)


def settings() -> Settings:
    """Settings from the environment; a bad variable is an input error like any other."""
    try:
        return Settings()
    except ValueError as exc:
        fail(f"bad configuration: {exc}".replace("\n", " "))


async def _schema_revision(session: AsyncSession) -> str | None:
    try:
        revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:
        return None
    return str(revision) if revision else None


def run_in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured (or embedded) database."""
    config = settings()

    async def run(url: str) -> T:
        engine = make_engine(url, pool_size=2)
        try:
            async with make_sessions(engine)() as session:
                revision, expected = await _schema_revision(session), schema_head(url)
                if revision is None:
                    fail("the database has no schema yet: run `vroegsignaal migrate` first")
                if revision != expected:
                    fail(
                        f"the database schema is at revision {revision}, this version needs"
                        f" {expected}: run `vroegsignaal migrate` first"
                    )
                await session.rollback()
                async with session.begin():
                    return await work(session)
        finally:
            await engine.dispose()

    try:
        with open_database(config) as url:
            return asyncio.run(run(url))
    except InvalidInput as exc:
        fail(str(exc))
    except (OSError, DBAPIError) as exc:
        fail(f"database: {_first_line(exc)}")


def run_service(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived service (`up`, `ingest`, `rules`, `notify`) on uvloop, the event loop
    uvicorn itself would choose, where it is installed (everywhere but Windows); else on
    asyncio's own loop. uvicorn only picks its loop in `uvicorn.run`, not for `Server.serve`."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)


def checked(call: Callable[[], T]) -> T:
    """Run a check that needs no database (reading a file); bad input exits with status 2."""
    try:
        return call()
    except InvalidInput as exc:
        fail(str(exc))


def describe_counts(counts: dict[str, int], label: str) -> str:
    """`{"created": 2, "updated": 1, "unchanged": 39}` → `42 regions (2 new, 1 updated)`."""
    total = counts.get("created", 0) + counts.get("updated", 0) + counts.get("unchanged", 0)
    changes = [
        f"{counts[key]} {word}"
        for key, word in (("created", "new"), ("updated", "updated"), ("retired", "retired"))
        if counts.get(key)
    ]
    return f"{total} {label}" + (f" ({', '.join(changes)})" if changes else "")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def emit(as_json: bool, document: Any, human: Callable[[], None]) -> None:
    """Print either the JSON document (for scripts) or the human form."""
    if as_json:
        sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str, indent=2) + "\n")
    else:
        human()


def progress_bar(as_json: bool) -> Progress:
    """A progress bar on standard error, shown on a terminal only and never beside JSON."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )


def print_problems(
    as_json: bool,
    file: Path | None,
    problems: Sequence[object],
    documents: Sequence[Any] | None = None,
) -> None:
    """Why a file is not valid: `{"valid": false, "problems": [...]}` (the `documents`, else the
    problems themselves), or a line a problem on standard error."""
    if as_json:
        listed = problems if documents is None else documents
        emit(True, {"valid": False, "problems": listed}, lambda: None)
    else:
        err.print(f"[bold red]{len(problems)} problem(s)[/] in {file}:", highlight=False)
        for problem in problems:
            err.print(f"  {problem}", highlight=False, markup=False)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A plain table on standard output."""
    view = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if value is None else str(value) for value in row))
    out.print(view)

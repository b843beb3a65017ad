"""`vroegsignaal digest --period YYYY-MM [--force]`: make one month's digest on demand.

The same use case as the notifier's monthly job (`make_digest`), in one transaction: the row, the
`digest.published` event and the deliveries commit together. A digest that exists is left alone
unless `--force` makes it again (and publishes the new version). While another process makes the
same month, this one stops at once and says so (exit status 1).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.common import JSON_OPTION, checked, emit, err, fail, out, run_in_transaction
from services.cli.common import settings as load_settings
from services.core.charts import format_datetime
from services.notify.digest import DigestOptions, DigestResult, Outcome, Period, make_digest
from services.notify.digest.figures import DEFAULT_LONG_OPEN_DAYS


class _Steps:
    """Progress on standard error, each step with the seconds the one before took."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.perf_counter()
        self.last = self.started

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        if not self.quiet:
            err.print(f"• {step}… [dim](+{now - self.last:.1f} s)[/]", highlight=False)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.started


def digest_command(
    period: str = typer.Option(..., "--period", help="The month, YYYY-MM (a month that is over)."),
    force: bool = typer.Option(
        False, "--force", help="Make it again over the stored one, and publish that version."
    ),
    publish: bool = typer.Option(
        True,
        "--publish/--no-publish",
        help="Announce it (digest.published) and send it to the governance board.",
    ),
    long_open_days: int = typer.Option(
        DEFAULT_LONG_OPEN_DAYS,
        "--long-open-days",
        min=1,
        max=3650,
        help="List the alerts open longer than this many days.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make the monthly escalation digest for the governance board (HTML, PDF, JSON)."""
    month = checked(lambda: Period.parse(period))
    config = load_settings()
    now = datetime.now(UTC)
    if not month.is_over(now, config.tz):
        fail(
            f"{month} is not over yet: its digest can be made from"
            f" {format_datetime(month.ends_at(config.tz), config.tz)}"
        )
    options = DigestOptions.from_settings(config, long_open_days=long_open_days)
    steps = _Steps(quiet=as_json)

    async def work(session: AsyncSession) -> DigestResult:
        return await make_digest(
            session, month, options=options, now=now, force=force, publish=publish, progress=steps
        )

    result = run_in_transaction(work)

    def human() -> None:
        made = format_datetime(result.made_at, config.tz) if result.made_at else "?"
        if result.outcome is Outcome.BUSY:
            err.print(f"Another process is making the digest of {month} right now; try later.")
            return
        if result.outcome is Outcome.EXISTS:
            out.print(
                f"The digest of {month} was made on {made}"
                f" ({'published' if result.published else 'not published'}); nothing done."
                " Use --force to make it again."
            )
            return
        verb = "Made again" if result.outcome is Outcome.REMADE else "Made"
        out.print(f"{verb}: the digest of {month} ({month.label}), in {steps.total():.1f} s.")
        if result.counts is not None:
            c = result.counts
            out.print(
                f"  {c.departments} departments · {c.alerts_opened} alerts opened ·"
                f" {c.escalated_regional_table + c.escalated_national_table} escalations"
                f" ({c.escalated_national_table} to the national table) ·"
                f" {c.alerts_resolved} resolved · {c.alerts_open} open at the end"
            )
        if result.published:
            out.print(
                f"  Published: {result.emails} e-mail(s) to the governance board and"
                f" {result.webhooks} webhook(s) queued."
            )
        else:
            out.print("  Not published (--no-publish): stored only.")
        out.print(f"  Read it: /v1/digests/{month}.html · .pdf · .json")

    emit(as_json, result.as_json(), human)
    if result.outcome is Outcome.BUSY:
        raise typer.Exit(1)

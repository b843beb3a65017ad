"""Digest benchmark: time and peak memory to make one monthly digest at national scale.

    .venv/bin/python -m bench.digest [--database-url URL] [--runs 3] [--json PATH]

One run, one database: the script makes a database of its own on the server (default the local
server at 127.0.0.1:5432), migrates it, seeds the reference data, loads a year with COPY and drops
the database at the end. The year is November 2025 to October 2026; the digest is October's. The
world: 40 regions, 500 providers, 5,000 departments over the 17 care types (registered before the
year began), one staffing report per department per month (60,000 signals; 4 % of the departments
and five whole providers send nothing in October), an assessment per report, and 1,800 alerts
spread over the year (3 % of the departments a month, one alert each) with their timelines —
opened, escalated to a regional table (60 %) and on to the national table (20 %), acknowledged
(30 %), resolved after 5 to 90 days (75 %, by hand or recovered) — plus 30 coverage alerts.

The digest is made in a fresh process (`--child`), as `vroegsignaal digest --period` makes it:
`make_digest` in one transaction (read, count, draw, HTML, PDF, store, publish: the event and the
e-mails with the PDF to three people of the board). The first run is cold (imports, fonts,
matplotlib's caches), like the command; the runs after it remake the same month (`force`), like
a notifier that has made one before. Then each phase once on its own. Peak memory is the child's
resident high-water mark (`ru_maxrss`), next to the same figure right after its imports: the
baseline, a process that has loaded everything but made nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pypdf import PdfReader
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench import worlds
from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions
from services.core.db.models import CareType, Organisation, Region
from services.core.domain import OrgKind

AMS = ZoneInfo("Europe/Amsterdam")
REGIONS = 40
PROVIDERS = 500
DEPARTMENTS = 5_000
MONTHS = 12
ALERT_SHARE = 0.03  # of the departments, each month
COVERAGE_ALERTS = 30
PERIOD = "2026-10"
FIRST_MONTH = datetime(2025, 11, 1, tzinfo=AMS)
MADE_AT = datetime(2026, 11, 1, 7, 0, tzinfo=AMS).astimezone(UTC)
RULESET = "2026.11.1"
console = Console(stderr=True)
REASON: dict[str, Any] = {
    **worlds.VACANCY_REASON,
    "figures": {"staffing.vacancy_pct": 16.0},
    "signal_ids": [],
}


def _month_start(index: int) -> datetime:
    """The first moment of month `index` of the year (0 = November 2025), in UTC."""
    year, month = divmod(FIRST_MONTH.month - 1 + index, 12)
    return datetime(FIRST_MONTH.year + year, month + 1, 1, tzinfo=AMS).astimezone(UTC)


def _in_month(rng: random.Random, index: int) -> datetime:
    start, end = _month_start(index), _month_start(index + 1)
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds() - 1))


async def load_world(url: str, rng: random.Random) -> dict[str, Any]:
    """Organisations, departments, a year of signals and assessments, alerts and timelines."""
    async with worlds.seeded(url) as session:
        regions = [r.id for r in await session.scalars(select(Region).order_by(Region.code))][
            :REGIONS
        ]
        care_types = [c.code for c in await session.scalars(select(CareType))]
        tables = {
            o.region_id: o.id
            for o in await session.scalars(
                select(Organisation).where(Organisation.kind == OrgKind.REGIONAL_TABLE)
            )
        }
        board = await session.scalar(
            select(Organisation.id).where(Organisation.kind == OrgKind.GOVERNANCE)
        )
    registered = _month_start(0) - timedelta(days=30)
    end = _month_start(MONTHS)
    async with worlds.copying(url) as connection:
        providers = await worlds.copy_providers(connection, PROVIDERS)
        await connection.copy_records_to_table(
            "users",
            records=[
                (uuid.uuid4(), board, f"lid{n}@bo.bench.test", f"Lid {n}", "-", "governance")
                for n in range(3)
            ],
            columns=["id", "organisation_id", "email", "name", "password_hash", "role"],
        )
        departments = [
            worlds.department(
                rng,
                n,
                provider_id=providers[n % PROVIDERS].id,
                care_type=care_types[rng.randrange(len(care_types))],
                region_id=regions[rng.randrange(len(regions))],
            )
            for n in range(DEPARTMENTS)
        ]
        await worlds.copy_departments(connection, departments, created_at=registered)
        silent_providers = {providers[n].id for n in range(5)}
        signals, assessments = [], []
        for department in departments:
            quiet = department.provider_id in silent_providers or rng.random() < 0.04
            for month in range(MONTHS):
                if month == MONTHS - 1 and quiet:
                    continue  # nothing in October
                signal_id, when = uuid.uuid4(), _in_month(rng, month)
                data = {"fte_budgeted": 20.0, "vacancies_fte": round(rng.uniform(0.0, 4.0), 1)}
                signals.append(worlds.staffing_report(signal_id, department, when, data))
                level = rng.choices(("ok", "watch", "threatened", "critical"), (85, 9, 5, 1))[0]
                reasons = [] if level == "ok" else [{**REASON, "level": level}]
                assessments.append(
                    (department.id, signal_id, level, 0, json.dumps(reasons),
                     level != "ok" and rng.random() < 0.1, RULESET, when)
                )  # fmt: skip
        await worlds.copy_signals(connection, signals)
        await connection.copy_records_to_table(
            "assessments",
            records=assessments,
            columns=[
                "department_id",
                "signal_id",
                "level",
                "score",
                "reasons",
                "no_alternative",
                "ruleset_version",
                "assessed_at",
            ],
        )
        alerts: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        per_month = int(DEPARTMENTS * ALERT_SHARE)
        chosen = rng.sample(departments, per_month * MONTHS)  # one alert per department at most
        for index, department in enumerate(chosen):
            month = index // per_month
            opened = _in_month(rng, month)
            level = rng.choice(("watch", "threatened", "critical"))
            alert_id, step, at = uuid.uuid4(), "provider", opened
            timeline: list[tuple[Any, ...]] = [
                (alert_id, "opened", opened, level, "provider", "{}", None, None)
            ]
            for to_step, chance in (("regional_table", 0.6), ("national_table", 1 / 3)):
                if rng.random() >= chance:
                    break
                at += timedelta(days=rng.uniform(1, 10))
                details = {"from_step": step, "to_step": to_step, "reason": "timer"}
                step = to_step
                timeline.append(
                    (alert_id, "escalated", at, level, step, json.dumps(details), None, None)
                )
            if rng.random() < 0.3:
                at += timedelta(days=rng.uniform(0.5, 3))
                timeline.append((alert_id, "acknowledged", at, level, step, "{}", None, None))
            resolved: datetime | None = opened + timedelta(days=rng.uniform(5, 90))
            resolution = None
            if rng.random() < 0.75 and resolved is not None and resolved < end:
                resolved = max(resolved, at + timedelta(hours=1))
                resolution = "manual" if rng.random() < 0.3 else "recovered"
                actor = tables.get(department.region_id) if resolution == "manual" else None
                note = "Opgelost in overleg met de regio." if actor else None
                timeline.append(
                    (alert_id, "resolved", resolved, level, step,
                     json.dumps({"reason": resolution}), note, actor)
                )  # fmt: skip
            else:
                resolved = None
            alerts.append(
                (alert_id, "department", department.id, department.region_id,
                 department.care_type, level, "resolved" if resolved else "open", step,
                 json.dumps([REASON]), opened, resolved, resolution, RULESET)
            )  # fmt: skip
            events += timeline
        cells = rng.sample([(r, c) for r in regions for c in care_types], COVERAGE_ALERTS)
        for region_id, care_type in cells:
            alert_id, opened = uuid.uuid4(), _in_month(rng, rng.randrange(MONTHS))
            details = {"from_step": "regional_table", "to_step": "national_table"}
            resolved = opened + timedelta(days=rng.uniform(5, 60))
            if resolved >= end or rng.random() < 0.3:
                resolved = None
            alerts.append(
                (alert_id, "coverage", None, region_id, care_type, "critical",
                 "resolved" if resolved else "open", "national_table", json.dumps([REASON]),
                 opened, resolved, "recovered" if resolved else None, RULESET)
            )  # fmt: skip
            events += [
                (alert_id, "opened", opened, "critical", "regional_table", "{}", None, None),
                (alert_id, "escalated", opened + timedelta(seconds=1), "critical",
                 "national_table", json.dumps({**details, "reason": "coverage"}), None, None),
            ]  # fmt: skip
            if resolved:
                events.append(
                    (alert_id, "resolved", resolved, "critical", "national_table", "{}", None, None)
                )
        await worlds.copy_alerts(connection, alerts)
        await connection.copy_records_to_table(
            "alert_events",
            records=events,
            columns=[
                "alert_id",
                "type",
                "at",
                "level",
                "escalation",
                "details",
                "note",
                "actor_organisation_id",
            ],
        )
    return {
        "regions": len(regions),
        "providers": PROVIDERS,
        "departments": len(departments),
        "signals": len(signals),
        "assessments": len(assessments),
        "alerts": len(alerts),
        "timeline_entries": len(events),
    }


def _rss_mb() -> float:
    """This process's resident high-water mark (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child(url: str, runs: int) -> dict[str, Any]:
    """Make the digest `runs` times in this process, then each phase on its own."""
    started = time.perf_counter()
    from services.notify.digest import DigestOptions, Period, make_digest
    from services.notify.digest.figures import digest_figures
    from services.notify.digest.render import render_html, render_pdf
    from services.notify.digest.rows import load_rows

    imported = time.perf_counter() - started
    baseline = _rss_mb()
    period = Period.parse(PERIOD)
    options = DigestOptions(zone=AMS, public_url="https://vroegsignaal.bench")
    engine = make_engine(url, pool_size=2)
    sessions = make_sessions(engine)
    made: list[dict[str, Any]] = []
    try:
        for run in range(runs):
            began = time.perf_counter()
            async with sessions() as session, session.begin():
                result = await make_digest(
                    session, period, options=options, now=MADE_AT, force=run > 0
                )
            made.append(
                {
                    "seconds": time.perf_counter() - began,
                    "outcome": result.outcome.value,
                    "emails": result.emails,
                    "peak_rss_mb": _rss_mb(),
                }
            )
        phases: dict[str, float] = {}
        began = time.perf_counter()
        async with sessions() as session:
            rows = await load_rows(session, period, AMS)
        phases["read rows"] = time.perf_counter() - began
        began = time.perf_counter()
        figures = digest_figures(rows, made_at=MADE_AT)
        phases["figures"] = time.perf_counter() - began
        began = time.perf_counter()
        html = render_html(figures, zone=AMS)
        phases["HTML with charts"] = time.perf_counter() - began
        began = time.perf_counter()
        pdf = render_pdf(html)
        phases["PDF"] = time.perf_counter() - began
    finally:
        await engine.dispose()
    return {
        "import_seconds": imported,
        "baseline_rss_mb": baseline,
        "runs": made,
        "phases": phases,
        "rows": {
            "departments": len(rows.departments),
            "alerts": len(rows.alerts),
            "timeline": len(rows.timeline),
            "judgements": len(rows.judgements),
            "reporting": len(rows.reporting),
        },
        "counts": figures.counts.model_dump(),
        "lists": {
            "national_table": len(figures.national_table),
            "long_open": len(figures.long_open),
            "resolved": len(figures.resolved),
            "silent_departments": figures.completeness.silent,
            "silent_providers": len(figures.completeness.silent_providers),
        },
        "html_bytes": len(html.encode()),
        "pdf_bytes": len(pdf),
        "pdf_pages": len(PdfReader(io.BytesIO(pdf)).pages),
        "peak_rss_mb": _rss_mb(),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch.scratch_database(args.database_url, prefix="vroegsignaal_bench") as url:
        began = time.perf_counter()
        world = await load_world(url, random.Random(args.seed))  # noqa: S311 - repeatable data
        world["load_seconds"] = time.perf_counter() - began
        console.print(f"world loaded in {world['load_seconds']:.1f} s: {world}")
        # A fresh process makes the digest, so its memory is the digest's and not the loader's.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.digest",
            "--child",
            url,
            "--runs",
            str(args.runs),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the digest process failed ({process.returncode})")
        return {"world": world, "digest": json.loads(out)}


def report(results: dict[str, Any]) -> None:
    made = results["digest"]
    table = Table(title="Making the October digest (5,000 departments, a year of signals)")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("peak RSS (MB)", justify="right")
    table.add_row("imports (baseline process)", f"{made['import_seconds']:.2f}",
                  f"{made['baseline_rss_mb']:.0f}")  # fmt: skip
    for n, run in enumerate(made["runs"], start=1):
        label = f"make_digest run {n} ({'cold' if n == 1 else 'warm'}, {run['outcome']})"
        table.add_row(label, f"{run['seconds']:.2f}", f"{run['peak_rss_mb']:.0f}")
    for phase, seconds in made["phases"].items():
        table.add_row(f"  phase: {phase}", f"{seconds:.2f}", "")
    console.print(table)
    console.print(
        f"rows: {made['rows']}; counts: {made['counts']}; lists: {made['lists']};"
        f" HTML {made['html_bytes']:,} bytes;"
        f" PDF {made['pdf_bytes']:,} bytes, {made['pdf_pages']} pages;"
        f" peak RSS {made['peak_rss_mb']:.0f} MB"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default=worlds.DEFAULT_DATABASE_URL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(asyncio.run(child(args.child, args.runs))))
        return
    results = asyncio.run(main(args))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    cli()

"""Evaluation time per signal: the default ruleset judging one department, a pure function.

Each sample evaluates a department of a realistic shape (a year of monthly reports of every kind
its care type has) right after a signal arrives, as the worker does. The baseline, measured in the
same run, is one compiled CEL comparison on a prepared context: the unit the ruleset is made of.

    .venv/bin/python -m bench.rules [--samples 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cel
from rich.console import Console
from rich.table import Table

from services.core.domain import Cluster, SignalKind
from services.core.reference.files import packaged_care_types
from services.rules.evaluate import evaluate
from services.rules.ruleset import load_ruleset
from services.rules.state import DepartmentState, Report

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
console = Console(stderr=True)


def _reports(rng: random.Random, kind: SignalKind, months: int) -> tuple[Report, ...]:
    made = []
    for month in range(months):
        at = NOW - timedelta(days=30 * (months - month))
        data: dict[str, Any]
        if kind is SignalKind.STAFFING:
            data = {
                "fte_budgeted": 30.0,
                "fte_filled": 30.0 - rng.uniform(0, 6),
                "vacancies_fte": rng.uniform(0, 6),
                "sick_leave_pct": rng.uniform(3, 11),
                "temp_staff_pct": rng.uniform(0, 25),
                "psychiatrist_fte": rng.choice([0.0, 1.0, 2.0, 3.0]),
                "unfilled_shifts_pct": rng.uniform(0, 8),
            }
        elif kind is SignalKind.WAITLIST:
            data = {
                "waiting_count": rng.randint(20, 90),
                "aanmeldwachttijd_weeks": rng.uniform(1, 7),
                "behandelwachttijd_weeks": rng.uniform(4, 13),
            }
        else:
            data = {
                "beds_total": 24,
                "beds_occupied": rng.randint(15, 24),
                "beds_closed": rng.randint(0, 4),
            }
        made.append(Report(uuid.uuid4(), kind, at, data))
    return tuple(made)


def departments(count: int, seed: int = 11) -> list[DepartmentState]:
    """Departments of every care type, each with a year of reports of the kinds it has."""
    rng = random.Random(seed)  # noqa: S311 - repeatable data, not a secret
    care_types = packaged_care_types()
    made = []
    for n in range(count):
        row = care_types[n % len(care_types)]
        kinds = [SignalKind.STAFFING]
        if row.waiting_norms_apply:
            kinds.append(SignalKind.WAITLIST)
        if row.has_beds:
            kinds.append(SignalKind.CAPACITY)
        made.append(
            DepartmentState(
                department_id=uuid.uuid4(),
                care_type=row.code,
                cluster=Cluster(row.cluster),
                scope=row.default_scope.value,
                capacity=24,
                registered_at=NOW - timedelta(days=800),
                norms={"aanmeld_weeks": 4.0, "behandel_weeks": 10.0}
                if row.waiting_norms_apply
                else None,
                reports={kind: _reports(rng, kind, 12) for kind in kinds},
            )
        )
    return made


def _timed(call: Callable[[], object], samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_us": statistics.median(ordered),
        "p99_us": ordered[int(len(ordered) * 0.99) - 1],
        "mean_us": statistics.fmean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    ruleset = load_ruleset()
    states = departments(64)
    console.print(f"ruleset {ruleset.file.name} {ruleset.version}: {len(ruleset.rules)} rules")

    probe = cel.compile("has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 8.0")
    context = cel.Context({"staffing": {"sick_leave_pct": 9.0}})
    baseline = _summary(_timed(lambda: probe.execute(context), args.samples))

    kinds = [SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.CAPACITY]
    picks = [(states[i % len(states)], kinds[i % 3]) for i in range(args.samples)]
    iterator = iter(picks)

    def one() -> object:
        state, trigger = next(iterator)
        return evaluate(state, ruleset, NOW, trigger=trigger)

    with console.status("evaluating"):
        for state, trigger in picks[:500]:  # warm up
            evaluate(state, ruleset, NOW, trigger=trigger)
        evaluation = _summary(_timed(one, args.samples))

    result = {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "ruleset": {"version": ruleset.version, "rules": len(ruleset.rules)},
        "samples": args.samples,
        "baseline_one_cel_expression": baseline,
        "evaluate_per_signal": evaluation,
        "ratio_median": evaluation["median_us"] / baseline["median_us"],
    }
    table = Table(title="Pure evaluation per signal (µs)")
    for column in ("", "median", "p99", "mean"):
        table.add_column(column)
    for name, figures in (
        ("one CEL expression (baseline)", baseline),
        ("evaluate(), default ruleset", evaluation),
    ):
        table.add_row(
            name,
            f"{figures['median_us']:.1f}",
            f"{figures['p99_us']:.1f}",
            f"{figures['mean_us']:.1f}",
        )
    Console().print(table)
    Console().print(f"evaluate() costs {result['ratio_median']:.1f}× one CEL expression (median)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

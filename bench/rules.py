"""The rules engine: evaluation time per signal (a pure function), and the rules worker's
throughput end to end on PostgreSQL (`--worker`, see bench/rules_worker.py).

    .venv/bin/python -m bench.rules [--samples 20000] [--json out.json]
    .venv/bin/python -m bench.rules --worker [--departments 2000] [--signals 20000]
        [--server-url URL] [--breakdown] [--py-spy PATH] [--json out.json]

**Pure evaluation.** Each sample evaluates a department of a realistic shape (a year of monthly
reports of every kind its care type has) right after a signal arrives, as the worker does: the
newest report of the signal's kind is new, its figures not yet worked out. Four
figures, all measured in the same run, in turns of 1,000 samples so that a busy second of the
machine falls on all of them alike:

- `one CEL expression`: one compiled CEL comparison on a prepared context, the unit the ruleset
  is made of (the baseline).
- `evaluate()`: the engine as the worker calls it. Explanation texts are rendered when read.
- `evaluate() + texts`: the same, then every reason's Dutch and English text, as the worker
  stores them: what a judgement costs the worker.
- `evaluate(), CEL only`: the same ruleset with every condition run by its CEL program (no
  closures, `Ruleset.cel_only()`): what the closures save.

The evaluation runs compiled by mypyc where `make` built it; `VROEGSIGNAAL_NATIVE=0` measures
its Python source instead (the bench prints which ran).

Each sample is timed by the wall clock (`perf_counter_ns`): median, p99 and mean per figure, and
the ratio of the medians to the baseline's. The thread's CPU clock, read once per turn, gives the
CPU mean besides: on a shared machine it leaves out the time the process waited for a core.
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
from services.rules import native
from services.rules.evaluate import evaluate
from services.rules.ruleset import Ruleset, load_ruleset
from services.rules.state import DepartmentState, Report

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
AIM_MEDIAN_US = 20.0
TURN = 1_000  # samples of one figure before the next figure's turn
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


def _arrived(state: DepartmentState, kind: SignalKind) -> DepartmentState:
    """The department with its newest report of `kind` made anew, as loading a signal that
    just arrived makes it (same id, time and figures)."""
    series = state.reports[kind]
    newest = series[-1]
    fresh = Report(newest.id, newest.kind, newest.observed_at, dict(newest.data))
    return state.with_reports({**state.reports, kind: (*series[:-1], fresh)})


def _timed(call: Callable[[], object], count: int, wall: list[float], cpu: list[float]) -> None:
    """`count` samples of `call` in µs by the wall clock, and their mean by the CPU clock (read
    once per turn: the thread's CPU clock is a system call, dearer than a CEL expression)."""
    started_cpu = time.thread_time_ns()
    for _ in range(count):
        started = time.perf_counter_ns()
        call()
        wall.append((time.perf_counter_ns() - started) / 1000)
    cpu.append((time.thread_time_ns() - started_cpu) / 1000 / count)


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_us": round(statistics.median(ordered), 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 2),
        "mean_us": round(statistics.fmean(ordered), 2),
    }


def _rendered(state: DepartmentState, ruleset: Ruleset, trigger: SignalKind) -> int:
    """A judgement with every reason's texts, as the worker stores it (their length)."""
    assessment = evaluate(state, ruleset, NOW, trigger=trigger)
    return sum(
        len(reason.explanation["nl"]) + len(reason.explanation["en"])
        for reason in assessment.reasons
    )


def measure_pure(samples: int) -> dict[str, Any]:
    """The four figures of the pure evaluation, measured in turns in one run."""
    ruleset = load_ruleset()
    cel_only = ruleset.cel_only()
    states = departments(64)
    kinds = [SignalKind.STAFFING, SignalKind.WAITLIST, SignalKind.CAPACITY]

    def arrived(count: int) -> list[tuple[DepartmentState, SignalKind]]:
        """Departments as the worker holds them right after a signal arrived (staffing, waiting
        list or capacity in turn, of the kinds the department reports): that newest report is
        new, its figures not yet worked out; the older ones are the ones the worker kept. No
        sample is given to two figures."""
        made = []
        for i in range(count):
            state, kind = states[i % len(states)], kinds[i % 3]
            if kind not in state.reports:  # a kind this department does not report
                kind = SignalKind.STAFFING  # which every department does
            made.append((_arrived(state, kind), kind))
        return made

    picks = {name: arrived(samples) for name in ("evaluate", "texts", "cel")}
    probe = cel.compile("has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 8.0")
    context = cel.Context({"staffing": {"sick_leave_pct": 9.0}})

    def cycling(
        own: list[tuple[DepartmentState, SignalKind]],
        make: Callable[[DepartmentState, SignalKind], object],
    ) -> Callable[[], object]:
        position = 0

        def one() -> object:
            nonlocal position
            state, trigger = own[position % samples]
            position += 1
            return make(state, trigger)

        return one

    figures: dict[str, Callable[[], object]] = {
        "one CEL expression (baseline)": lambda: probe.execute(context),
        "evaluate()": cycling(picks["evaluate"], lambda s, t: evaluate(s, ruleset, NOW, trigger=t)),
        "evaluate() + texts": cycling(picks["texts"], lambda s, t: _rendered(s, ruleset, t)),
        "evaluate(), CEL only": cycling(
            picks["cel"], lambda s, t: evaluate(s, cel_only, NOW, trigger=t)
        ),
    }
    for state, trigger in arrived(500):  # warm up: the plans, the caches, the branch predictors
        _rendered(state, ruleset, trigger)
        evaluate(state, cel_only, NOW, trigger=trigger)
    wall: dict[str, list[float]] = {name: [] for name in figures}
    cpu: dict[str, list[float]] = {name: [] for name in figures}
    with console.status("evaluating"):
        for _ in range(0, samples, TURN):
            for name, call in figures.items():
                _timed(call, min(TURN, samples), wall[name], cpu[name])
    found: dict[str, dict[str, Any]] = {}
    baseline = _summary(wall["one CEL expression (baseline)"])
    for name in figures:
        figure = found[name] = _summary(wall[name])
        figure["cpu_mean_us"] = round(statistics.fmean(cpu[name]), 2)
        figure["ratio_median"] = round(figure["median_us"] / baseline["median_us"], 1)
    return {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "ruleset": {"version": ruleset.version, "rules": len(ruleset.rules)},
        "samples": samples,
        "aim_median_us": AIM_MEDIAN_US,
        "figures": found,
    }


def pure_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"Pure evaluation per signal (µs), {result['samples']:,} samples each")
    for column in ("", "median", "p99", "mean", "CPU mean", "median × baseline"):
        table.add_column(column, justify="right" if column else "left")
    for name, figure in result["figures"].items():
        table.add_row(
            name,
            f"{figure['median_us']:.1f}",
            f"{figure['p99_us']:.1f}",
            f"{figure['mean_us']:.1f}",
            f"{figure['cpu_mean_us']:.1f}",
            f"{figure['ratio_median']:.0f}×",
        )
    return table


def worker_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"Rules worker on PostgreSQL: {result['signals']:,} signals,"
        f" {result['departments']:,} departments, ONE consumer"
    )
    for column in ("", "signals/s", "× baseline", "consumer CPU ms", "PostgreSQL CPU ms", "SQL"):
        table.add_column(column, justify="right" if column else "left")
    for name in ("baseline", "rules"):
        figure = result[name]
        table.add_row(
            "no-op handler (baseline)" if name == "baseline" else "rules worker",
            f"{figure['events_per_s']:,.0f}",
            f"{figure['events_per_s'] / result['baseline']['events_per_s']:.3f}",
            f"{figure['consumer_cpu_ms_per_event']:.2f}",
            f"{figure['postgres_cpu_ms_per_event']:.2f}",
            f"{figure['statements_per_event']}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--worker", action="store_true", help="the worker end to end instead")
    parser.add_argument("--departments", type=int, default=2_000)
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--server-url", default=None, help="PostgreSQL server (default: local)")
    parser.add_argument("--breakdown", action="store_true", help="time the worker's steps")
    parser.add_argument("--py-spy", help="record the rules phase with py-spy into this file")
    parser.add_argument(
        "--rounds",
        action="store_true",
        help="record and judge the signals a consumer batch at a time, as a worker that keeps"
        " up sees them (default: all recorded first, a backlog)",
    )
    parser.add_argument(
        "--forget",
        action="store_true",
        help="the worker without its cache of departments (read in full at every batch)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    # Compiled by mypyc (`make native`) or interpreted, and why: VROEGSIGNAAL_NATIVE=0 measures
    # the Python source on the same machine (docs/rules.md, "Speed: the rules engine compiled").
    console.print(f"rules engine: {native.MODE}")
    if args.breakdown and native.MODE.startswith("compiled"):
        # The compiled worker calls its steps directly: wrapping their names times nothing.
        parser.error("--breakdown times the worker's Python steps: run with VROEGSIGNAAL_NATIVE=0")
    result: dict[str, Any]
    if args.worker:
        import uvloop

        from bench.rules_worker import DEFAULT_SERVER_URL, run_worker_bench

        result = uvloop.run(
            run_worker_bench(
                args.server_url or DEFAULT_SERVER_URL,
                departments=args.departments,
                signals=args.signals,
                breakdown=args.breakdown,
                py_spy=args.py_spy,
                rounds=args.rounds,
                remember=not args.forget,
                say=console.print,
            )
        )
        Console().print(worker_table(result))
        Console().print(
            f"aim {result['aim_signals_per_s']:,.0f} signals/s per worker;"
            f" events the worker recorded: {result['events_recorded']}"
        )
        if "breakdown_ms_per_signal" in result:
            Console().print(f"wall ms per signal by step: {result['breakdown_ms_per_signal']}")
    else:
        ruleset = load_ruleset()
        console.print(f"ruleset {ruleset.file.name} {ruleset.version}: {len(ruleset.rules)} rules")
        result = measure_pure(args.samples)
        Console().print(pure_table(result))
        median = result["figures"]["evaluate()"]["median_us"]
        Console().print(f"evaluate(): median {median:.1f} µs (aim: under {AIM_MEDIAN_US:.0f} µs)")
    result["evaluation"] = native.MODE
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

"""`rules check` and `rules test`: a domain expert's ruleset, checked and tested before use."""

from __future__ import annotations

from pathlib import Path

import typer

from services.cli import services
from services.cli.common import EXIT_INVALID, JSON_OPTION, emit, err, fail, out, print_problems
from services.core.errors import InvalidInput
from services.rules.cases import run_cases
from services.rules.ruleset import RuleKind, RulesetInvalid, load_ruleset

rules = typer.Typer(
    help="The rules worker (without a command); `check` and `test` a ruleset before it is used.",
    invoke_without_command=True,
)


@rules.callback()
def worker_command(
    context: typer.Context,
    metrics_port: int = typer.Option(9100, help="Port of /healthz, /readyz and /metrics."),
    host: str = typer.Option("0.0.0.0", help="Address to listen on."),  # noqa: S104
) -> None:
    """Run the rules worker (any number of replicas, up to the topic's partitions)."""
    if context.invoked_subcommand is None:
        services.rules_command(metrics_port=metrics_port, host=host)


@rules.command("check")
def check_command(
    file: Path | None = typer.Argument(None, help="Ruleset YAML; default: the packaged one."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate the schema and compile every condition; problems come with their line."""
    try:
        ruleset = load_ruleset(file)
    except RulesetInvalid as exc:
        problems = [{"line": p.line, "where": p.where, "message": p.message} for p in exc.problems]
        print_problems(as_json, file, exc.problems, problems)
        raise typer.Exit(EXIT_INVALID) from exc
    except InvalidInput as exc:
        fail(str(exc))
    kinds = {kind.value: 0 for kind in RuleKind}
    for compiled in ruleset.rules:
        kinds[compiled.rule.kind.value] += 1
    report = {
        "valid": True,
        "version": ruleset.version,
        "name": ruleset.file.name,
        "rules": len(ruleset.rules),
        "kinds": {kind: count for kind, count in kinds.items() if count},
        "sha256": ruleset.sha256,
    }
    emit(
        as_json,
        report,
        lambda: out.print(
            f"{ruleset.path}: ruleset {ruleset.file.name} {ruleset.version} is valid:"
            f" {len(ruleset.rules)} rules ("
            + ", ".join(f"{count} {kind}" for kind, count in report["kinds"].items())  # type: ignore[attr-defined]
            + ")"
        ),
    )


@rules.command("test")
def cases_command(
    file: Path = typer.Argument(..., help="Test cases (YAML), as in docs/rules.md."),
    ruleset_file: Path | None = typer.Option(
        None, "--ruleset", help="Ruleset to test; default: the packaged one."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a domain expert's cases: given these signals, this level and these rules."""
    try:
        ruleset = load_ruleset(ruleset_file)
        outcomes = run_cases(file, ruleset)
    except RulesetInvalid as exc:
        err.print(f"[bold red]error:[/] the ruleset has problems: {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    except InvalidInput as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from exc
    failed = [o for o in outcomes if not o.passed]
    report = {
        "ruleset": ruleset.version,
        "passed": len(outcomes) - len(failed),
        "failed": len(failed),
        "cases": [
            {
                "name": o.name,
                "line": o.line,
                "passed": o.passed,
                "failures": list(o.failures),
                "level": o.assessment.level.value,
                "rules": [r.rule_id for r in o.assessment.reasons],
            }
            for o in outcomes
        ],
    }

    def human() -> None:
        for outcome in outcomes:
            mark = "[green]✓[/]" if outcome.passed else "[red]✗[/]"
            out.print(f"{mark} line {outcome.line}: {outcome.name}", highlight=False)
            for failure in outcome.failures:
                out.print(f"    {failure}", highlight=False, markup=False)
        out.print(
            f"{report['passed']} passed, {report['failed']} failed"
            f" (ruleset {ruleset.file.name} {ruleset.version})"
        )

    emit(as_json, report, human)
    if failed:
        raise typer.Exit(1)

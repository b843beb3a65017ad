"""`escalation check`: a table's escalation policy, checked before the notifier uses it."""

from __future__ import annotations

from pathlib import Path

import typer

from services.cli.common import EXIT_INVALID, JSON_OPTION, emit, fail, out, print_problems
from services.core.errors import InvalidInput
from services.notify.policy import LADDER, PolicyInvalid, load_policy

escalation = typer.Typer(
    help="The escalation policy: who hears of what, when.", no_args_is_help=True
)


@escalation.command("check")
def check_command(
    file: Path | None = typer.Argument(None, help="Policy YAML; default: the packaged one."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate the policy; problems come with their line."""
    try:
        policy = load_policy(file)
    except PolicyInvalid as exc:
        print_problems(as_json, file, exc.problems)
        raise typer.Exit(EXIT_INVALID) from exc
    except InvalidInput as exc:
        fail(str(exc))
    ladder = [
        {
            "step": step.value,
            "tell": [a.value for a in policy.step(step).tell],
            "acknowledge_within_working_days": policy.step(step).acknowledge_within_working_days,
        }
        for step in LADDER
    ]
    report = {"valid": True, "version": policy.version, "sha256": policy.sha256, "ladder": ladder}

    def human() -> None:
        out.print(f"{policy.path}: escalation policy {policy.version} is valid")
        for row in ladder:
            days = row["acknowledge_within_working_days"]
            timer = f"{days} working days" if days else "no timer (top)"
            told = ", ".join(row["tell"])  # type: ignore[arg-type]
            out.print(f"  {row['step']}: tells {told}; {timer}", highlight=False)

    emit(as_json, report, human)

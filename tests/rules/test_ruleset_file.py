"""A ruleset file is checked whole before use: every problem is reported with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.rules.ruleset import RuleKind, RulesetInvalid, load_ruleset

GOOD = """\
version: "2026.11.1"
name: test
rules:
  - id: staffing.sick_leave_high
    kind: threshold
    level: watch
    signals: [staffing]
    clusters: [acute, clinical]
    when: has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 8.0
    explain:
      nl: "Ziekteverzuim {staffing.sick_leave_pct:.1f} %"
      en: "Sick leave {staffing.sick_leave_pct:.1f} %"
    source: working threshold
  - id: waitlist.behandel_forecast
    kind: forecast
    level: watch
    signals: [waitlist]
    measure: waitlist.behandelwachttijd_weeks
    limit: norm.behandel_weeks
    horizon_days: 56
    explain:
      nl: "Over {days} dagen boven de Treeknorm van {limit} weken"
      en: "Above the Treeknorm of {limit} weeks in {days} days"
    source: Treeknorm
  - id: staffing.sustained_vacancies
    kind: sustained
    level: threatened
    signals: [staffing]
    when: "[1.0].exists(x, x > 0.0) && has(staffing.vacancy_pct) && staffing.vacancy_pct > 15.0"
    for: {reports: 3}
    explain: {nl: "Vacatures", en: "Vacancies"}
    source: working threshold
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(RulesetInvalid) as raised:
        load_ruleset(path)
    return [str(problem) for problem in raised.value.problems]


def test_a_good_file_loads_compiled_with_its_version_and_hash(tmp_path: Path) -> None:
    ruleset = load_ruleset(write(tmp_path, GOOD))
    assert ruleset.version == "2026.11.1"
    assert [c.rule.kind for c in ruleset.rules] == [
        RuleKind.THRESHOLD,
        RuleKind.FORECAST,
        RuleKind.SUSTAINED,
    ]
    assert ruleset.rules[0].condition is not None
    assert ruleset.rules[1].limit is not None and ruleset.rules[1].condition is None
    assert ruleset.rules[2].rule.hold is not None and ruleset.rules[2].rule.hold.reports == 3
    assert len(ruleset.sha256) == 64


def test_a_syntax_error_in_a_condition_names_its_line(tmp_path: Path) -> None:
    bad = GOOD.replace("staffing.sick_leave_pct >= 8.0", "staffing.sick_leave_pct >=> 8.0")
    (problem,) = problems_of(write(tmp_path, bad))
    assert problem.startswith("line 9: staffing.sick_leave_high.when:")
    assert "Syntax error" in problem


def test_a_misspelt_figure_group_or_function_is_refused(tmp_path: Path) -> None:
    bad = GOOD.replace("has(staffing.sick_leave_pct) &&", "has(stafing.sick_leave_pct) &&")
    bad = bad.replace("x > 0.0) &&", "x > 0.0) && avg(1.0) > 0.0 &&")
    found = problems_of(write(tmp_path, bad))
    assert found[0].startswith("line 9: staffing.sick_leave_high.when: unknown name 'stafing'")
    assert found[1].startswith("line 29: staffing.sustained_vacancies.when: unknown name 'avg()'")
    assert len(found) == 2, "the loop variable x is not taken for a typo"


def test_schema_problems_are_all_listed_with_their_lines(tmp_path: Path) -> None:
    bad = (
        GOOD.replace(
            "level: watch\n    signals: [staffing]", "level: alarm\n    signals: [staffing]"
        )
        .replace("    for: {reports: 3}\n", "")
        .replace("horizon_days: 56", "horizon_days: -1")
    )
    found = problems_of(write(tmp_path, bad))
    assert any(p.startswith("line 6: rules.0.level:") for p in found), found
    assert any(p.startswith("line 20: rules.1.horizon_days:") for p in found), found
    assert any("a sustained rule needs hold" in p and p.startswith("line 25") for p in found), found
    assert not any("at least 1 item" in p for p in found), found
    assert "Input should be 'watch', 'threatened' or 'critical'" in found[0]


def test_an_unknown_figure_in_an_explanation_and_a_reused_id_are_refused(tmp_path: Path) -> None:
    bad = GOOD.replace("Ziekteverzuim {staffing", "Ziekteverzuim {personeel")
    assert problems_of(write(tmp_path, bad)) == [
        "line 11: staffing.sick_leave_high.explain.nl:"
        " unknown figure {personeel.sick_leave_pct} in the explanation"
    ]
    twice = GOOD.replace("id: waitlist.behandel_forecast", "id: staffing.sick_leave_high")
    assert any("used twice" in p for p in problems_of(write(tmp_path, twice)))


def test_not_yaml_and_unreadable_files(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "rules: [\n  - id: x\n"))
    assert problem.startswith("line ") and "not valid YAML" in problem
    with pytest.raises(Exception, match="cannot read ruleset"):
        load_ruleset(tmp_path / "missing.yaml")


def test_rules_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["rules", "check", str(write(tmp_path, GOOD)), "--json"])
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["kinds"] == {"threshold": 1, "sustained": 1, "forecast": 1}
    human = runner.invoke(app, ["rules", "check", str(tmp_path / "rules.yaml")])
    assert "is valid: 3 rules" in human.stdout

    bad = write(tmp_path, GOOD.replace(">= 8.0", ">=> 8.0"))
    refused = runner.invoke(app, ["rules", "check", str(bad)])
    assert refused.exit_code == 2
    assert "line 9: staffing.sick_leave_high.when" in refused.stderr
    document = json.loads(runner.invoke(app, ["rules", "check", str(bad), "--json"]).stdout)
    assert document["valid"] is False and document["problems"][0]["line"] == 9

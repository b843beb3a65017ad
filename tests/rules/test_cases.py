"""`vroegsignaal rules test`: a domain expert's cases run against a ruleset."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from tests.rules.test_evaluate import RULES

CASES = """\
cases:
  - name: "HIC: de psychiaters vertrekken"
    department: {care_type: acute.hic, capacity: 24}
    now: 2026-10-05
    signals:
      - {kind: staffing, observed_at: 2026-09-01, data: {fte_budgeted: 30, psychiatrist_fte: 1}}
      - {kind: staffing, observed_at: 2026-10-01, data: {fte_budgeted: 30, psychiatrist_fte: 0}}
    expect:
      levels: [ok, critical]
      level: critical
      rules: [staffing.no_psychiatrist]
  - name: "FACT: vacatures, drie maanden achter elkaar"
    department: {care_type: outreach.fact}
    now: 2026-11-02
    signals:
      - {kind: staffing, observed_at: 2026-09-01, data: {fte_budgeted: 20, vacancies_fte: 4}}
      - {kind: staffing, observed_at: 2026-10-01, data: {fte_budgeted: 20, vacancies_fte: 4}}
      - {kind: staffing, observed_at: 2026-11-01, data: {fte_budgeted: 20, vacancies_fte: 5}}
    expect:
      levels: [ok, ok, threatened]
      level: threatened
      rules: [staffing.vacancies_sustained]
"""


def files(tmp_path: Path, cases: str = CASES) -> tuple[Path, Path]:
    rules, tests = tmp_path / "rules.yaml", tmp_path / "cases.yaml"
    rules.write_text(RULES, encoding="utf-8")
    tests.write_text(cases, encoding="utf-8")
    return rules, tests


def test_passing_cases(tmp_path: Path) -> None:
    rules, cases = files(tmp_path)
    result = CliRunner().invoke(app, ["rules", "test", str(cases), "--ruleset", str(rules)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "2 passed, 0 failed" in result.stdout
    assert "line 2: HIC: de psychiaters vertrekken" in result.stdout


def test_a_failing_case_says_what_differs_and_exits_1(tmp_path: Path) -> None:
    wrong = CASES.replace("levels: [ok, ok, threatened]", "levels: [ok, threatened, threatened]")
    wrong = wrong.replace("now: 2026-11-02", "now: 2026-12-31")  # silent for two months
    rules, cases = files(tmp_path, wrong)
    result = CliRunner().invoke(
        app, ["rules", "test", str(cases), "--ruleset", str(rules), "--json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["passed"], report["failed"]) == (1, 1)
    failed = report["cases"][1]
    assert failed["line"] == 12
    assert failed["failures"] == [
        "rules ['silence.three_weeks', 'staffing.vacancies_sustained'],"
        " expected ['staffing.vacancies_sustained']",
        "levels after each signal ['ok', 'ok', 'threatened'],"
        " expected ['ok', 'threatened', 'threatened']",
    ]


def test_a_bad_case_file_is_refused_with_its_line(tmp_path: Path) -> None:
    rules, cases = files(
        tmp_path,
        CASES.replace(
            "kind: staffing, observed_at: 2026-09-01", "kind: staff, observed_at: 2026-09-01", 1
        ),
    )
    result = CliRunner().invoke(app, ["rules", "test", str(cases), "--ruleset", str(rules)])
    assert result.exit_code == 2
    assert "line 6: cases.0.signals.0.kind" in result.stderr

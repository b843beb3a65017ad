"""The packaged ruleset: it loads, every rule says where its threshold comes from, and the
domain cases in `default_cases.yaml` give the levels and reasons a policy officer would expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.rules.cases import Outcome, run_cases
from services.rules.ruleset import PACKAGED, load_ruleset

CASES = Path(__file__).with_name("default_cases.yaml")


def test_the_packaged_ruleset_loads_and_documents_itself() -> None:
    ruleset = load_ruleset()
    assert ruleset.path == PACKAGED
    assert len(ruleset.rules) >= 20
    documented = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    for compiled in ruleset.rules:
        rule = compiled.rule
        assert rule.source.strip(), rule.id
        assert f"`{rule.id}`" in documented, f"{rule.id} is not in docs/rules.md"


@pytest.mark.parametrize(
    "outcome", run_cases(CASES, load_ruleset()), ids=lambda outcome: outcome.name
)
def test_domain_case(outcome: Outcome) -> None:
    assert outcome.passed, outcome.failures

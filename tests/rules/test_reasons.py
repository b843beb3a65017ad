"""A stored reason is built by hand for speed; it must be what the event contract's model makes."""

from __future__ import annotations

from services.rules.cases import run_cases
from services.rules.reasons import contract_document, reason_document
from services.rules.ruleset import load_ruleset
from tests.rules.test_default_ruleset import CASES as CASES_FILE


def test_every_reason_of_the_expert_cases_is_stored_as_the_contract_makes_it() -> None:
    ruleset = load_ruleset()
    reasons = [r for outcome in run_cases(CASES_FILE, ruleset) for r in outcome.assessment.reasons]
    assert len({r.rule_id for r in reasons}) >= 10, "the cases should fire many kinds of rule"
    for reason in reasons:
        assert reason_document(reason) == contract_document(reason), reason.rule_id

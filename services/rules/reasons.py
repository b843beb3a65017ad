"""Reasons as stored with assessments and alerts, and as events carry them.

Stored reasons keep the Dutch explanation beside the English one (`explanation_nl`); the event
contract (`payloads.Reason`) carries English only, so events get them without it.
"""

from __future__ import annotations

from typing import Any

from services.core.events.payloads import Reason
from services.rules.evaluate import Reason as Found

_FIGURE = (float, int, bool, str)


def reason_document(reason: Found) -> dict[str, Any]:
    """A reason as stored and as events carry it (the `Reason` of docs/events.md).

    Built directly, as `contract_document` would through the contract's model: the worker makes
    one per reason per judgement, and the model's validation cost more than the rest of a
    judgement (tests/rules/test_reasons.py holds the two equal).
    """
    kinds = reason.signal_kinds
    explanation = reason.explanation
    return {
        "rule_id": reason.rule_id,
        "level": reason.level.value,
        "kind": kinds[0].value if len(kinds) == 1 else None,
        "explanation": explanation["en"],
        "figures": {k: v for k, v in reason.figures.items() if isinstance(v, _FIGURE)},
        "thresholds": {"limit": reason.limit} if reason.limit is not None else {},
        "norm": None,
        "signal_ids": [str(signal_id) for signal_id in reason.signal_ids],
        "explanation_nl": explanation["nl"],
    }


def contract_document(reason: Found) -> dict[str, Any]:
    """`reason_document` through the event contract's model (validated; slower)."""
    return Reason(
        rule_id=reason.rule_id,
        level=reason.level,
        kind=reason.signal_kinds[0] if len(reason.signal_kinds) == 1 else None,
        explanation=reason.explanation["en"],
        figures={
            k: v for k, v in reason.figures.items() if isinstance(v, float | int | bool | str)
        },
        thresholds={"limit": reason.limit} if reason.limit is not None else {},
        norm=None,
        signal_ids=list(reason.signal_ids),
    ).model_dump(mode="json") | {"explanation_nl": reason.explanation["nl"]}


def for_event(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored reasons as events carry them: the contract's fields in its order, no Dutch text.

    A stored reason without one of the contract's fields fails here (KeyError), as the model
    would refuse it; read back from jsonb, their keys come in jsonb's order, which this undoes.
    """
    return [
        {
            "rule_id": r["rule_id"],
            "level": r["level"],
            "kind": r["kind"],
            "explanation": r["explanation"],
            "figures": r["figures"],
            "thresholds": r["thresholds"],
            "norm": r["norm"],
            "signal_ids": r["signal_ids"],
        }
        for r in reasons
    ]

"""Schema-based fuzzing with schemathesis against a live server (tests/support/live_server.py):
one documented operation, called with generated requests under a caller's credentials.

Every answer is checked by schemathesis's own checks (no 5xx, status code, content type,
headers and body as documented, ...) except "valid data is accepted": business rules (an
unknown department, an id that names nothing of the caller's, a full quota) refuse some
schema-valid requests on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

EXAMPLES_VARIABLE = "VROEGSIGNAAL_FUZZ_EXAMPLES"


def examples(default: int) -> int:
    """Examples per operation: `default`, unless VROEGSIGNAAL_FUZZ_EXAMPLES says otherwise."""
    return int(os.environ.get(EXAMPLES_VARIABLE, str(default)))


def operations(app: FastAPI, keep: Callable[[str], bool] = lambda path: True) -> list[str]:
    """`METHOD /path` of every documented operation whose path `keep`s (no database needed)."""
    return [
        f"{method.upper()} {path}"
        for path, item in sorted(app.openapi()["paths"].items())
        if keep(path)
        for method in item
    ]


def load_schema(base: str) -> Any:
    """The live server's own OpenAPI document."""
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def fuzz_operation(
    base: str,
    label: str,
    headers: Mapping[str, str],
    *,
    max_examples: int,
    schema: Any | None = None,
) -> None:
    """Call the operation `label` ("GET /v1/alerts") `max_examples` times with generated
    requests and `headers` (the caller's credentials) on top; raises on the first answer that
    is a 5xx or breaks the documented schema (hypothesis shows the smallest such request)."""
    schema = schema if schema is not None else load_schema(base)
    method, path = label.split(" ", 1)
    operation = schema[path][method.lower()]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Case[Any]) -> None:
        merged = {**dict(case.headers or {}), **headers}
        response = case.call_and_validate(
            base_url=base, headers=merged, excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code < 500

    check()

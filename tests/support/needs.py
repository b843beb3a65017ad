"""A test that needs something a fresh machine may lack skips with the reason; under CI
(`CI=true`, where `.ci/run` installs everything) it fails instead, so nothing is left out."""

from __future__ import annotations

import os

import pytest


def need(missing: str | None, what: str) -> None:
    """Go on when `missing` is None; else skip, or under CI fail, saying why."""
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (under CI the {what} tests must run)")
    pytest.skip(missing)

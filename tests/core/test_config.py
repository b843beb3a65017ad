"""Settings come from VROEGSIGNAAL_* variables and refuse nonsense at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.core.config import BusBackend, Settings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DATA_DIR", "BUS", "TIMEZONE", "WEBHOOK_ALLOW_PRIVATE"):
        monkeypatch.delenv(f"VROEGSIGNAAL_{name}", raising=False)
    settings = Settings()
    assert settings.database_url is None  # embedded PostgreSQL
    assert settings.data_dir == Path(".vroegsignaal")
    assert settings.bus is BusBackend.POSTGRES
    assert settings.timezone == "Europe/Amsterdam"
    assert settings.webhook_allow_private is False


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VROEGSIGNAAL_DATABASE_URL", "postgresql://db.example/vroegsignaal")
    monkeypatch.setenv("VROEGSIGNAAL_BUS", "kafka")
    monkeypatch.setenv("VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE", "true")
    settings = Settings()
    assert settings.database_url == "postgresql://db.example/vroegsignaal"
    assert settings.bus is BusBackend.KAFKA and settings.webhook_allow_private


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/x"),
        ("BUS", "rabbitmq"),
        ("TIMEZONE", "Europe/Amsterdan"),
    ],
)
def test_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"VROEGSIGNAAL_{name}", value)
    with pytest.raises(ValidationError):
        Settings()

"""Settings for every Vroegsignaal process, read from `VROEGSIGNAAL_*` environment variables.

The names are part of the public contract (DESIGN.md, "Configuration"); `deploy/` uses them too.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BusBackend(StrEnum):
    """Which event bus carries the topics between the services."""

    POSTGRES = "postgres"
    KAFKA = "kafka"


class Settings(BaseSettings):
    """One settings object per process; build it with `get_settings()` or directly in tests."""

    model_config = SettingsConfigDict(env_prefix="VROEGSIGNAAL_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql:// or postgresql+asyncpg:// URL; unset starts embedded PostgreSQL",
    )
    data_dir: Path = Field(default=Path(".vroegsignaal"), description="embedded database home")
    bus: BusBackend = BusBackend.POSTGRES
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_partitions: int = Field(
        default=16, ge=1, le=1000, description="partitions of each topic created at start-up"
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="replicas of each topic created at start-up (production: 3)"
    )
    kafka_enable_idempotence: bool = Field(
        default=True, description="idempotent producer; off only for brokers without it (tests)"
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=500, description="a silent group member is dropped after this"
    )
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=50)
    kafka_fetch_max_wait_ms: int = Field(
        default=500, ge=1, description="how long a fetch waits for new events"
    )
    ruleset: Path | None = Field(default=None, description="ruleset YAML; unset: packaged")
    escalation_policy: Path | None = Field(default=None, description="policy YAML; unset: packaged")
    smtp_url: str | None = Field(
        default=None,
        description="smtp://[user:password@]host:port (smtps:// for TLS); unset: no e-mail",
    )
    mail_from: str = Field(
        default="Vroegsignaal <noreply@vroegsignaal.nl>", description="sender of every e-mail"
    )
    public_url: str = Field(
        default="http://localhost:8000",
        description="where people reach the dashboard: the links in e-mails and the digest",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts webhook signing secrets at rest; unset: a key"
        " kept in DATA_DIR (development only)",
    )
    webhook_allow_private: bool = Field(
        default=False, description="allow webhook URLs on private, loopback or link-local hosts"
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="how long one webhook call may take"
    )
    webhook_max_in_flight: int = Field(
        default=4, ge=1, le=64, description="concurrent calls to one webhook endpoint"
    )
    digest_cron: str = Field(
        default="0 7 1 * *",
        description="when the monthly digest of the previous month is made (cron, in TIMEZONE)",
    )
    digest_long_open_days: int = Field(
        default=60, ge=1, le=3650, description="the digest lists alerts open longer than this"
    )
    webhook_disable_after: timedelta = Field(
        default=timedelta(days=5),
        description="an endpoint failing without a success for this long is disabled",
    )
    timezone: str = "Europe/Amsterdam"
    environment: str = Field(default="development", description="development or production")
    shutdown_grace_seconds: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="on SIGTERM: finish and commit the work in hand, leave the group, exit within",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="JSON lines, or readable lines; auto: JSON unless a terminal"
    )
    idempotency_ttl: timedelta = timedelta(hours=24)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="longest wait for the next piece of a request body; then 408",
    )
    rate_limit_per_second: float = Field(
        default=50.0, gt=0, description="requests per second per organisation, on average"
    )
    rate_limit_burst: int = Field(default=200, gt=0, description="requests allowed in a burst")

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgresql+asyncpg://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)  # a typo fails at start-up, not at the first digest
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The zone for calendars, schedules and the Dutch texts."""
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

"""What the notifier's HTTP routes share with its workers: the policy, the zone and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request

from services.notify.policy import Policy


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class NotifyRuntime:
    """Set on `app.state.notify`; a test swaps the clock, SIGHUP the policy."""

    policy: Callable[[], Policy]
    zone: ZoneInfo
    clock: Callable[[], datetime] = field(default=_utcnow)


def install_runtime(app: FastAPI, runtime: NotifyRuntime) -> FastAPI:
    app.state.notify = runtime
    return app


def runtime_of(request: Request) -> NotifyRuntime:
    runtime = getattr(request.app.state, "notify", None)
    assert isinstance(runtime, NotifyRuntime), "the notify routes need install_runtime()"
    return runtime

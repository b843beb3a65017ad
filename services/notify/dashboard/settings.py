"""What the dashboard keeps for the life of the process: templates, the zone, the ruleset (for
thresholds), the login guard and a small cache of drawn charts. Set on `app.state.dashboard`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2 import Environment

from services.core.config import Settings
from services.core.errors import InvalidInput
from services.rules.ruleset import Rule, Ruleset

SESSION_COOKIE = "vroegsignaal_session"
SESSION_IDLE_SECONDS = 8 * 3600  # the cookie's lifetime, renewed by each page
SESSION_MAX_SECONDS = 24 * 3600  # a login counts for a day at most, however busy
LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_MAX_FAILURES = 10


class DashboardConfigProblem(InvalidInput):
    """The dashboard must not start (production without a secret key)."""


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies, derived from VROEGSIGNAAL_SECRET_KEY.

    Derived (HMAC with a fixed label) rather than the key itself, so the webhook-secret key and
    the cookie key are never the same bytes. Development without a key gets a random one per
    process (logins last until a restart); production refuses to start without one.
    """
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        first = settings.secret_key.get_secret_value().split(",")[0].strip().encode()
        return hmac.new(first, b"vroegsignaal dashboard session v1", hashlib.sha256).hexdigest()
    if settings.environment != "development":
        raise DashboardConfigProblem(
            "VROEGSIGNAAL_SECRET_KEY is not set: outside development the dashboard's session"
            " cookies must be signed with a key kept apart from the code"
        )
    return secrets.token_hex(32)


class LoginGuard:
    """Failed logins per e-mail address and per client address in a sliding window: after too
    many, further tries are refused for a while (argon2 makes each try slow, not impossible)."""

    def __init__(
        self, max_failures: int = LOGIN_MAX_FAILURES, window: float = LOGIN_WINDOW_SECONDS
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        while found and found[0] < now - self.window:
            found.popleft()
        return found

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(key, now)) >= self.max_failures for key in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 50_000:  # bounded: a flood of names cannot grow it forever
                self._failures.clear()
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class ChartCache:
    """Drawn charts by a digest of what they show: drawing one costs tens of milliseconds."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, svg: str) -> None:
        with self._lock:
            self._items[key] = svg
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass
class DashboardSettings:
    zone: ZoneInfo
    templates: Environment
    ruleset: Callable[[], Ruleset]
    secure_cookies: bool
    page_size: int = 50
    stream_seconds: float = 25.0  # one SSE response; the browser reconnects (see sse.py)
    poll_seconds: float = 1.0
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    charts: ChartCache = field(default_factory=ChartCache)

    def rule(self, rule_id: str) -> Rule | None:
        """The rule of the ruleset in use with this id (None for a rule since removed)."""
        for compiled in self.ruleset().rules:
            if compiled.rule.id == rule_id:
                return compiled.rule
        return None


def dashboard_of(request: Request) -> DashboardSettings:
    found = getattr(request.app.state, "dashboard", None)
    assert isinstance(found, DashboardSettings), "install_dashboard() was not called"
    return found

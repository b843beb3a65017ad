"""The alert dashboard: a Dutch web interface for insurers and the tables, served at `/`.

Server-rendered pages (Jinja2) that read without JavaScript; a little script adds the live feed
(Server-Sent Events). Every page is scoped exactly as the alert API scopes the viewer's
organisation, acts through the API's own functions, and audits every view (channel
`dashboard`). See docs/dashboard.md.

Wiring, in the process that serves the notifier's routes (after `create_app`, before serving):

    app = create_app(settings, url, routers=[..., *notify.routers], ...)
    notify.install(app)                       # the dashboard uses the notifier's runtime
    install_dashboard(app, settings, ruleset=holder)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from services.core.config import Settings
from services.notify.dashboard import (
    alerts,
    auth,
    departments,
    digests,
    overview,
    regions,
    sse,
    webhooks,
)
from services.notify.dashboard.settings import (
    SESSION_COOKIE,
    SESSION_IDLE_SECONDS,
    DashboardConfigProblem,
    DashboardSettings,
    session_secret,
)
from services.notify.dashboard.web import (
    LoginRequired,
    PageError,
    error_page,
    login_redirect,
    make_environment,
)
from services.rules.ruleset import Ruleset, load_ruleset

STATIC = Path(__file__).parent / "static"
routers = [
    auth.router,
    overview.router,
    alerts.router,
    departments.router,
    regions.router,
    digests.router,
    webhooks.router,
    sse.router,
]


def install_dashboard(
    app: FastAPI,
    settings: Settings,
    *,
    ruleset: Callable[[], Ruleset] | None = None,
    secret: str | None = None,
) -> FastAPI:
    """Add the dashboard to an app that serves the notifier's routes (its runtime installed).

    `ruleset` gives the ruleset in use (for the thresholds drawn in the charts; a
    `RulesetHolder` follows a reload); by default the configured file is read on first use.
    `secret` signs the session cookies; by default it is derived from `secret_key`.
    Raises DashboardConfigProblem in production without a secret key.
    """
    if ruleset is None:
        ruleset = cache(lambda: load_ruleset(settings.ruleset))
    app.state.dashboard = DashboardSettings(
        zone=settings.tz,
        templates=make_environment(),
        ruleset=ruleset,
        secure_cookies=settings.environment != "development",
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret or session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_IDLE_SECONDS,
        same_site="lax",
        https_only=settings.environment != "development",
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")
    for router in routers:
        app.include_router(router)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return login_redirect(exc)

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(LoginRequired, login_required)
    return app


__all__ = ["DashboardConfigProblem", "install_dashboard", "routers"]

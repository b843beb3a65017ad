"""What every dashboard page shares: the signed-in viewer, one transaction per page, rendering
with the viewer's language, forms with their CSRF check, and the answers for what went wrong.

A page handler reads like this:

    async with open_page(request) as page:          # the viewer, a session, one transaction
        rows = await some_query(page.session, page.caller)
        await page.audit("alert.list", "alert", details={...})
        return page.render("alerts.html", rows=rows)

Errors are exceptions (`PageError`, `LoginRequired`) that `install_dashboard` turns into an HTML
page or a redirect, so a handler never builds an error answer by hand.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller, load_caller
from services.core.audit import record_audit
from services.core.db.models import Organisation, User
from services.core.http.state import sessions_of
from services.notify.dashboard import csrf
from services.notify.dashboard.i18n import Words, parse_lang
from services.notify.dashboard.settings import (
    SESSION_MAX_SECONDS,
    DashboardSettings,
    dashboard_of,
)

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_FIELDS = 20

# Scripts and styles only from our own origin: no inline script can run, even if some text slipped
# past the escaping. `frame-ancestors 'none'` keeps the pages out of other sites' frames.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none';"
        " object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class PageError(Exception):
    """An answer other than the page: a status and the text key saying why."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.values = values


class LoginRequired(Exception):
    """No (valid) session: the browser goes to the login page and comes back afterwards."""

    def __init__(self, next_path: str, expired: bool = False) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


def make_environment() -> Environment:
    """The Jinja environment: HTML escaped everywhere, undefined names an error in tests."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.globals["quote"] = lambda value: quote(str(value), safe="")
    return environment


def words_of(request: Request) -> Words:
    """The viewer's language (Dutch unless they switched), with the configured time zone."""
    return Words(parse_lang(request.session.get("lang")), dashboard_of(request).zone)


def take_flash(request: Request) -> list[tuple[str, str]]:
    """Messages left for the next page by a form (each shown once)."""
    found = request.session.pop("flash", None)
    if not isinstance(found, list):
        return []
    return [(str(kind), str(text)) for kind, text in found if isinstance(kind, str)][:5]


def flash(request: Request, kind: str, text: str) -> None:
    messages = request.session.get("flash")
    messages = messages if isinstance(messages, list) else []
    request.session["flash"] = [*messages, [kind, text]][-5:]


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    page: Page | None = None,
    **context: Any,
) -> HTMLResponse:
    """A template as a page, with the shared context and the security headers."""
    settings = dashboard_of(request)
    words = page.words if page else words_of(request)
    html = settings.templates.get_template(template).render(
        t=words,
        lang=words.lang,
        page=page,
        csrf_token=csrf.token_of(request),
        path=request.url.path,
        flashes=take_flash(request),
        live_since=context.pop("live_since", None),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(path: str) -> RedirectResponse:
    """After a form: see the result with a GET (303), so a reload does not post again."""
    return RedirectResponse(path, status_code=303)


def safe_next(value: object) -> str:
    """Only a path on this site (never `//host` or a scheme): no open redirect after login."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 for c in value) or len(value) > 500:
        return "/"
    return value


async def read_form(request: Request) -> dict[str, str]:
    """A posted form (urlencoded, UTF-8) whose CSRF token matches the session's; 403 otherwise.

    Any other content type is refused the same way: a cross-site form can post multipart or
    text/plain, and neither carries our token.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(403, "csrf_failed")
    try:
        body = (await request.body()).decode("utf-8")
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(400, "bad_request") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    if not csrf.matches(request, form.get(csrf.FIELD)):
        raise PageError(403, "csrf_failed")
    return form


@dataclass
class Page:
    """The signed-in viewer of one request, with its session and language."""

    request: Request
    session: AsyncSession
    user: User
    organisation: Organisation
    caller: Caller
    words: Words
    settings: DashboardSettings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_org_admin(self) -> bool:
        return bool(self.user.is_org_admin)

    @property
    def client_address(self) -> str | None:
        client = self.request.client
        return client.host if client else None

    async def audit(
        self,
        action: str,
        object_type: str,
        object_id: object | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Every view of alert data is in the audit log, channel `dashboard`, like the API's."""
        await record_audit(
            self.session,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            channel=self.caller.channel,
            organisation_id=self.caller.organisation_id,
            user_id=self.caller.user_id,
            client_address=self.client_address,
            details={"view": "dashboard", **(details or {})},
        )

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status=status, page=self, **context)


def login_is_fresh(request: Request) -> bool:
    """A login counts for SESSION_MAX_SECONDS, however often the cookie was renewed since."""
    login_at = request.session.get("login_at")
    return isinstance(login_at, int | float) and time.time() - login_at < SESSION_MAX_SECONDS


def _user_id(request: Request) -> uuid.UUID | None:
    if not login_is_fresh(request):
        return None
    raw = request.session.get("uid")
    if not isinstance(raw, str):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def load_viewer(
    session: AsyncSession, request: Request
) -> tuple[User, Organisation, Caller] | None:
    """The user behind the session cookie, if they still exist and are active."""
    user_id = _user_id(request)
    if user_id is None:
        return None
    row = (
        await session.execute(
            select(User, Organisation)
            .join(Organisation, Organisation.id == User.organisation_id)
            .where(User.id == user_id, User.active.is_(True))
        )
    ).one_or_none()
    if row is None:
        return None
    user, organisation = row
    caller = await load_caller(session, organisation, user.role, user=user, channel="dashboard")
    return user, organisation, caller


def login_path(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return safe_next(path)


@asynccontextmanager
async def open_page(request: Request, *, write: bool = True) -> AsyncIterator[Page]:
    """The viewer and one transaction for the page (committed when the handler returns)."""
    settings = dashboard_of(request)
    async with sessions_of(request)() as session, session.begin():
        viewer = await load_viewer(session, request)
        if viewer is None:
            expired = "uid" in request.session
            request.session.pop("uid", None)
            raise LoginRequired(login_path(request), expired=expired)
        user, organisation, caller = viewer
        yield Page(
            request=request,
            session=session,
            user=user,
            organisation=organisation,
            caller=caller,
            words=words_of(request),
            settings=settings,
        )


def error_page(request: Request, error: PageError) -> Response:
    """The HTML answer for a PageError, in the viewer's language."""
    words = words_of(request)
    return render(
        request,
        "error.html",
        status=error.status,
        message=words(error.key, **error.values),
        signed_in="uid" in request.session,
    )


def login_redirect(error: LoginRequired) -> Response:
    target = f"/login?next={quote(error.next_path, safe='')}"
    if error.expired:
        target += "&expired=1"
    return redirect(target)

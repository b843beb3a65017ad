"""Logging in and out, and the language switch.

The session is a signed cookie (Starlette's SessionMiddleware with itsdangerous: HttpOnly,
`SameSite=Lax`, `Secure` outside development) that holds the user's id, the CSRF token, the
language and when the login happened; nothing else. Each page loads the user again, so a user
made inactive is out at their next click. A wrong e-mail address and a wrong password get the
same message, after the same argon2 work, so the answer does not tell which one was wrong.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select, update

from services.core.audit import record_audit
from services.core.auth import hash_password, password_matches
from services.core.db.models import User
from services.core.http.state import sessions_of
from services.notify.dashboard import csrf
from services.notify.dashboard.i18n import parse_lang
from services.notify.dashboard.settings import dashboard_of
from services.notify.dashboard.web import (
    PageError,
    flash,
    login_is_fresh,
    read_form,
    redirect,
    render,
    safe_next,
    words_of,
)

router = APIRouter(include_in_schema=False)
# Verified against when no user has the address: the wrong address costs what a wrong password does.
_DUMMY_HASH = hash_password("no user has this password, it only spends the same time")
MAX_EMAIL = 320
MAX_PASSWORD = 1024


def _login_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    words = words_of(request)
    notice = words("session_expired") if request.query_params.get("expired") else None
    return render(
        request,
        "login.html",
        status=status,
        error=error,
        notice=notice,
        next_path=next_path,
        email=request.query_params.get("email", "")[:MAX_EMAIL],
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    if login_is_fresh(request) and "uid" in request.session:
        return redirect(safe_next(request.query_params.get("next")))
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    settings = dashboard_of(request)
    words = words_of(request)
    email = form.get("email", "").strip().lower()[:MAX_EMAIL]
    password = form.get("password", "")[:MAX_PASSWORD]
    if any(ord(c) < 32 for c in email):
        email = ""  # no address has control characters (and PostgreSQL text cannot hold NUL)
    next_path = safe_next(form.get("next"))
    client = request.client.host if request.client else "unknown"
    guard_keys = (f"email:{email}", f"client:{client}")

    def failed_page(key: str, status: int) -> Response:
        return render(
            request,
            "login.html",
            status=status,
            error=words(key),
            notice=None,
            next_path=next_path,
            email=email,
        )

    if settings.login_guard.blocked(*guard_keys):
        return failed_page("login_throttled", 429)
    async with sessions_of(request)() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == email)) if email else None
        ok = password_matches(password, user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok or not user.active:
            await record_audit(
                session,
                action="user.login_failed",
                object_type="user",
                object_id=str(user.id) if user else None,
                channel="dashboard",
                client_address=client,
            )
            settings.login_guard.failed(*guard_keys)
            return failed_page("login_failed", 401)
        await session.execute(
            update(User).where(User.id == user.id).values(last_login_at=datetime.now(UTC))
        )
        await record_audit(
            session,
            action="user.login",
            object_type="user",
            object_id=str(user.id),
            channel="dashboard",
            organisation_id=user.organisation_id,
            user_id=user.id,
            client_address=client,
        )
    settings.login_guard.succeeded(f"email:{email}")
    lang = request.session.get("lang")
    request.session.clear()  # nothing from before the login carries over (session fixation)
    request.session.update({"uid": str(user.id), "login_at": int(time.time())})
    if lang:
        request.session["lang"] = parse_lang(lang)
    csrf.renew(request)
    return redirect(next_path)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    lang = request.session.get("lang")
    uid = request.session.get("uid")
    if isinstance(uid, str):
        async with sessions_of(request)() as session, session.begin():
            await record_audit(
                session,
                action="user.logout",
                object_type="user",
                object_id=uid,
                channel="dashboard",
                client_address=request.client.host if request.client else None,
            )
    request.session.clear()
    if lang:
        request.session["lang"] = parse_lang(lang)
    flash(request, "info", words_of(request)("logged_out"))
    return redirect("/login")


@router.post("/language")
async def switch_language(request: Request) -> Response:
    """Dutch or English for this browser's session; back to the page it came from."""
    form = await read_form(request)
    wanted = form.get("lang")
    if wanted not in ("nl", "en"):
        raise PageError(400, "bad_request")
    request.session["lang"] = wanted
    return redirect(safe_next(form.get("next")))

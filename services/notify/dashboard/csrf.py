"""CSRF tokens: one random token per session, in a hidden field of every form.

The session cookie is `SameSite=Lax`, which already keeps most cross-site posts out; the token
covers the rest (older browsers, a sibling subdomain) and is the check the tests rely on. It is
compared in constant time and renewed at login, so a token seen before login is worth nothing
after it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

FIELD = "csrf_token"
_KEY = "csrf"


def token_of(request: Request) -> str:
    """The session's token, made on first use (the login form needs one before any login)."""
    token = request.session.get(_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[_KEY] = token
    return token


def renew(request: Request) -> str:
    """A fresh token, at login: what an attacker may have planted before no longer counts."""
    token = secrets.token_urlsafe(32)
    request.session[_KEY] = token
    return token


def matches(request: Request, presented: str | None) -> bool:
    """Whether a posted token is the session's."""
    expected = request.session.get(_KEY)
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())

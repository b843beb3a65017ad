"""Credentials: API keys (stored as hashes) and dashboard passwords (argon2).

An API key is `vs_<prefix>_<secret>` with 256 bits of randomness. Because it is long and random, a
single SHA-256 is the right hash for it (as GitHub and Stripe do): a slow hash would only slow
every request. Passwords are chosen by people, so they get argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

KEY_PREFIX = "vs"
_password_hasher = PasswordHasher()


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: `clear` is shown once and then only `prefix` and `hash` are kept."""

    clear: str
    prefix: str
    hash: str


def hash_api_key(clear: str) -> str:
    """The stored form of a key: hex SHA-256."""
    return hashlib.sha256(clear.encode()).hexdigest()


def new_api_key() -> NewApiKey:
    """A new random key with a lookup prefix that is unique in practice (48 random bits)."""
    prefix = secrets.token_hex(6)
    clear = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(clear=clear, prefix=prefix, hash=hash_api_key(clear))


def key_prefix(clear: str) -> str | None:
    """The lookup prefix of a presented key, or None when it is not shaped like one of ours."""
    parts = clear.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def api_key_matches(clear: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_api_key(clear), stored_hash)


def hash_password(password: str) -> str:
    """An argon2id hash with the library's current parameters."""
    return _password_hasher.hash(password)


def password_matches(password: str, stored_hash: str) -> bool:
    """True when the password fits the hash; never raises for a wrong or malformed one."""
    try:
        return _password_hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


KEYS_CHANNEL = "vroegsignaal_keys"  # NOTIFY channel: a key was revoked (services/core/http/auth.py)


async def notify_revoked(session: AsyncSession) -> None:
    """Tell every process to forget its cached keys when this transaction commits."""
    await session.execute(select(func.pg_notify(KEYS_CHANNEL, "revoked")))

"""Webhook signing secrets at rest: encrypted with Fernet, never stored or logged in clear.

The secret must be kept (we sign with it on every call), so it cannot be hashed like an API key.
It is encrypted with `VROEGSIGNAAL_SECRET_KEY`: one Fernet key, or several separated by commas to
rotate (the first encrypts, all decrypt). In development, without a key, one is made once in
`DATA_DIR` (file mode 0600); in production a missing key refuses to start, because a key file
beside the data is no protection worth the name.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.core.config import Settings

KEY_FILE = "webhook-secret.key"


class SecretKeyProblem(RuntimeError):
    """The key is missing (in production) or not a Fernet key: the service must not start."""


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with the configured keys (the key was changed)."""


class SecretBox:
    """Encrypts and decrypts signing secrets with the configured key(s)."""

    def __init__(self, keys: list[bytes]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyProblem(
                "VROEGSIGNAAL_SECRET_KEY must be Fernet keys (32 url-safe base64-encoded bytes,"
                " e.g. from `python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'`), separated by commas"
            ) from exc

    def encrypt(self, secret: str) -> str:
        """The token to store."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The clear secret, to sign with; SecretUnreadable if no configured key opens it."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable(
                "the endpoint's signing secret does not decrypt with VROEGSIGNAAL_SECRET_KEY"
            ) from exc


def _development_key(data_dir: Path) -> bytes:
    """The key in DATA_DIR, made on first use; two processes starting at once agree on one."""
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: a reader never sees a
    # half-written key, and of two processes racing here the second takes the first's key.
    temporary = data_dir / f".{KEY_FILE}.{uuid.uuid4().hex}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(Fernet.generate_key() + b"\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_bytes().strip()


def secret_box(settings: Settings) -> SecretBox:
    """The box for these settings; SecretKeyProblem when the service must not start."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        keys = [
            key.strip().encode("ascii", "replace")
            for key in settings.secret_key.get_secret_value().split(",")
            if key.strip()
        ]
        return SecretBox(keys)
    if settings.environment == "production":
        raise SecretKeyProblem(
            "VROEGSIGNAAL_SECRET_KEY is not set: in production webhook signing secrets must be"
            " encrypted with a key kept apart from the data"
        )
    return SecretBox([_development_key(settings.data_dir)])

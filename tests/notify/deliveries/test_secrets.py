"""Signing secrets at rest: encrypted with the configured key, a private key file in
development, and no start in production without a key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.core.config import Settings
from services.notify.deliveries.secrets import (
    KEY_FILE,
    SecretKeyProblem,
    SecretUnreadable,
    secret_box,
)
from services.notify.deliveries.worker import DeliveryWorker

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_secret_goes_in_encrypted_and_comes_out_clear() -> None:
    box = secret_box(Settings(secret_key=Fernet.generate_key().decode()))
    token = box.encrypt(SECRET)
    assert SECRET not in token and "MfKQ9r8" not in token
    assert box.decrypt(token) == SECRET


def test_keys_rotate_the_first_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = secret_box(Settings(secret_key=old)).encrypt(SECRET)
    assert secret_box(Settings(secret_key=f"{new},{old}")).decrypt(token) == SECRET
    with pytest.raises(SecretUnreadable):
        secret_box(Settings(secret_key=new)).decrypt(token)


def test_development_makes_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    token = secret_box(settings).encrypt(SECRET)
    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secret_box(settings).decrypt(token) == SECRET  # the same key the second time
    assert [p.name for p in key_file.parent.iterdir()] == [KEY_FILE]  # no temporary left


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyProblem, match="VROEGSIGNAAL_SECRET_KEY is not set"):
        secret_box(Settings(environment="production", data_dir=tmp_path))
    assert not (tmp_path / KEY_FILE).exists()


def test_a_key_that_is_not_fernet_is_refused() -> None:
    with pytest.raises(SecretKeyProblem, match="Fernet keys"):
        secret_box(Settings(secret_key="not-a-key"))


def test_a_production_worker_without_a_key_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyProblem):
        DeliveryWorker(Settings(environment="production", data_dir=tmp_path), async_sessionmaker())

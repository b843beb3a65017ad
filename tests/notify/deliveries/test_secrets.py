"""Signing secrets at rest: encrypted with the configured key, a private key file in
development, and no start in production without a key; and neither API keys nor signing
secrets are stored in clear or logged (issue 10, docs/reliability.md)."""

from __future__ import annotations

import logging
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.config import Settings
from services.core.db.base import Base
from services.notify.deliveries import enqueue_webhooks
from services.notify.deliveries.secrets import (
    KEY_FILE,
    SecretKeyProblem,
    SecretUnreadable,
    secret_box,
)
from services.notify.deliveries.worker import DeliveryWorker
from tests.ingest.conftest import World
from tests.notify.deliveries.conftest import (
    HandClock,
    alert_event,
    delivery_settings,
    make_alert,
    register,
    running_app,
)
from tests.support.receivers import WebhookReceiver

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


# --- nothing in clear, nothing logged ---------------------------------------------------------
# An API key is used (and a wrong one tried), an endpoint registered (its signing secret shown
# once, in the answer) and a delivery signed with it sent to a real receiver, every logger at
# DEBUG. Then every row of every table is read back as text: neither the key nor the secret may
# be in it, nor in anything logged.


async def _everything_stored(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Every row of every table, as JSON text."""
    rows: list[str] = []
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            found = await session.execute(
                # the names are our own tables', from the models, not input
                text(f'SELECT row_to_json(t)::text FROM "{table.name}" t')  # noqa: S608
            )
            rows.extend(str(row[0]) for row in found)
    return "\n".join(rows)


async def test_keys_and_signing_secrets_are_neither_stored_in_clear_nor_logged(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    provider_a_id: uuid.UUID,
    receiver: WebhookReceiver,
    clock: HandClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    key = world.keys["provider_a"]
    async with running_app(database_url, delivery_settings(), clock=clock) as running:
        listed = await running.client.get("/v1/subscriptions", headers=world.auth("provider_a"))
        wrong = await running.client.get(
            "/v1/subscriptions", headers={"Authorization": f"Bearer {key}x"}
        )
        _, secret = await register(running.client, world, "provider_a", receiver.url)
        receiver.secret = secret
        alert = await make_alert(sessions)
        async with sessions() as session, session.begin():
            await enqueue_webhooks(
                session,
                organisation_id=provider_a_id,
                event=alert_event("alert.opened", alert_id=alert),
                alert_id=alert,
            )
        [received] = await receiver.wait_for(1)
        await running.worker.settled()

    assert (listed.status_code, wrong.status_code) == (200, 401)
    assert received.headers["webhook-signature"].startswith("v1,")
    assert not receiver.refused_signatures, "the delivery was signed with the secret shown"
    stored = await _everything_stored(sessions)
    captured = capsys.readouterr()
    logged = "\n".join((caplog.text, captured.out, captured.err))
    assert logged.strip(), "nothing was logged: this test would see no leak"
    for name, value in (
        ("API key", key),
        ("signing secret", secret),
        ("signing secret without its prefix", secret.removeprefix("whsec_")),
    ):
        assert value not in stored, f"the {name} is stored in clear"
        assert value not in logged, f"the {name} is in the logs"

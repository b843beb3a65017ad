"""API keys for systems and dashboard users for people, each acting for one organisation."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit import record_audit
from services.core.auth import hash_password, new_api_key, notify_revoked
from services.core.db.models import ApiKey, InboundSource, Organisation, User
from services.core.domain import ROLE_FOR_KIND, OrgKind, Role
from services.core.errors import Conflict, InvalidInput, NotFound

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12


def role_for(organisation: Organisation, requested: str | None) -> Role:
    """The role a key or user of this organisation gets; it must fit the organisation's kind."""
    fitting = ROLE_FOR_KIND[organisation.kind]
    if requested is None:
        return fitting
    try:
        role = Role(requested)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown role {requested!r}; roles are {allowed}") from None
    if role is not fitting:
        raise InvalidInput(
            f"role {role.value} does not fit {organisation.name!r}"
            f" (a {organisation.kind.value}): use --role {fitting.value}"
        )
    return role


async def create_api_key(
    session: AsyncSession, *, organisation: Organisation, role: Role, name: str = ""
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the clear key, which is never stored or shown again."""
    made = new_api_key()
    key = ApiKey(
        organisation_id=organisation.id,
        role=role,
        name=name,
        prefix=made.prefix,
        key_hash=made.hash,
    )
    session.add(key)
    await session.flush()
    await record_audit(
        session,
        action="api_key.created",
        object_type="api_key",
        object_id=str(key.id),
        channel="cli",
        organisation_id=organisation.id,
        details={"role": role.value, "prefix": made.prefix},
    )
    return key, made.clear


async def revoke_api_key(session: AsyncSession, ref: str) -> ApiKey:
    """Revoke a key by its id or its prefix (the part after `vs_`), or by the clear key."""
    ref = ref.strip()
    prefix = ref.split("_")[1] if ref.startswith("vs_") and ref.count("_") >= 2 else ref
    try:
        query = select(ApiKey).where(ApiKey.id == uuid.UUID(ref))
    except ValueError:
        query = select(ApiKey).where(ApiKey.prefix == prefix)
    key = (await session.scalars(query)).one_or_none()
    if key is None:
        raise NotFound(f"no API key with id or prefix {prefix!r}")
    if key.revoked_at is not None:
        when = f"{key.revoked_at:%Y-%m-%d %H:%M}"
        raise Conflict(f"API key {key.prefix} was already revoked at {when}")
    key.revoked_at = datetime.now(UTC)
    await notify_revoked(session)  # every process forgets its cached keys at commit
    await record_audit(
        session,
        action="api_key.revoked",
        object_type="api_key",
        object_id=str(key.id),
        channel="cli",
        organisation_id=key.organisation_id,
    )
    return key


async def add_user(
    session: AsyncSession,
    *,
    organisation: Organisation,
    email: str,
    password: str,
    name: str = "",
    org_admin: bool = False,
) -> User:
    """Add a dashboard user; the e-mail address is the login and is unique, case-insensitively."""
    email = email.strip().lower()
    problems = []
    if not EMAIL.match(email) or len(email) > 320:
        problems.append(f"{email!r} is not an e-mail address")
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if problems:
        raise InvalidInput("; ".join(problems))
    if await session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise Conflict(f"a user with e-mail {email} already exists")
    user = User(
        organisation_id=organisation.id,
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        role=ROLE_FOR_KIND[organisation.kind],
        is_org_admin=org_admin,
    )
    session.add(user)
    await session.flush()
    await record_audit(
        session,
        action="user.created",
        object_type="user",
        object_id=str(user.id),
        channel="cli",
        organisation_id=organisation.id,
        details={"email": email, "org_admin": org_admin},
    )
    return user


INBOUND_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_inbound_source(
    session: AsyncSession, *, organisation: Organisation, name: str
) -> tuple[InboundSource, str]:
    """Register a provider system that pushes signals; returns the row and its secret."""
    if organisation.kind not in (OrgKind.PROVIDER, OrgKind.INSURER):
        raise InvalidInput(
            f"{organisation.name!r} is a {organisation.kind.value}; only providers and insurers"
            " post signals"
        )
    if not INBOUND_NAME.match(name) or len(name) > 64:
        raise InvalidInput(
            f"source name {name!r} must be lowercase letters, digits and dashes (it becomes the"
            " URL /v1/webhooks/inbound/<name>)"
        )
    if await session.scalar(select(InboundSource.id).where(InboundSource.name == name)):
        raise Conflict(f"an inbound source named {name} already exists")
    secret = new_webhook_secret()
    source = InboundSource(organisation_id=organisation.id, name=name, secret=secret)
    session.add(source)
    await session.flush()
    await record_audit(
        session,
        action="inbound_source.created",
        object_type="inbound_source",
        object_id=str(source.id),
        channel="cli",
        organisation_id=organisation.id,
        details={"name": name},
    )
    return source, secret

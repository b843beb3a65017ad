"""The demo world: invented providers across regions and clusters, insurers, keys and logins.

Loading it twice changes nothing. Its API keys and passwords are derived from fixed strings so
that they are the same on every start and can be printed every time: they are public, which is
why `--demo` is for trying the service, never for production.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.admin.departments import DepartmentSpec, add_department
from services.core.admin.organisations import (
    OrganisationSpec,
    add_organisation,
    resolve_organisation,
)
from services.core.auth import KEY_PREFIX, hash_api_key, hash_password
from services.core.db.models import ApiKey, Department, InsurerRegion, Organisation, Region, User
from services.core.domain import ROLE_FOR_KIND, OrgKind, slugify
from services.core.errors import NotFound

DEMO_PASSWORD = "vroegsignaal-demo"  # noqa: S105  (public on purpose: see the module docstring)
DEMO_MAIL_DOMAIN = "demo.vroegsignaal.nl"


@dataclass(frozen=True)
class DemoCredential:
    """A demo organisation's API key and dashboard login."""

    organisation: str
    role: str
    api_key: str
    email: str


@dataclass
class DemoWorld:
    """What the demo holds, and the credentials to try it with."""

    providers: int = 0
    insurers: int = 0
    departments: int = 0
    credentials: list[DemoCredential] = field(default_factory=list)
    highlighted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the start-up log."""
        return (
            f"{self.providers} providers, {self.departments} departments, "
            f"{self.insurers} insurers coordinating all regions"
        )

    def write_credentials(self, path: Path) -> None:
        """Every demo key and login, for scripts and for the curious."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "password": DEMO_PASSWORD,
            "credentials": [credential.__dict__ for credential in self.credentials],
        }
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    def print_credentials(self, console: Console, base_url: str) -> None:
        """The highlighted keys and logins, so a person can start right away."""
        # Plain lines rather than a table: keys must survive copy and paste from any terminal.
        console.print("\n[bold]Demo credentials[/] (public: never use --demo in production)")
        for credential in self.credentials:
            if credential.organisation in self.highlighted:
                console.print(f"  [bold]{credential.organisation}[/] ({credential.role})")
                console.print(f"    API key  {credential.api_key}", highlight=False)
                console.print(f"    login    {credential.email}", highlight=False)
        console.print(f"Password of every demo login: [bold]{DEMO_PASSWORD}[/]")
        provider = next(
            c
            for c in self.credentials
            if c.role == "provider" and c.organisation in self.highlighted
        )
        console.print(
            f'Try: curl -H "Authorization: Bearer {provider.api_key}" {base_url}/v1/departments'
            "   (walk-through: docs/api.md)",
            highlight=False,
        )


def _world() -> dict[str, Any]:
    text = files("services.core.demo").joinpath("world.yaml").read_text(encoding="utf-8")
    world: dict[str, Any] = yaml.safe_load(text)
    return world


def demo_api_key(organisation_name: str) -> str:
    """The fixed demo key of an organisation (same shape as real keys)."""
    digest = hashlib.sha256(f"vroegsignaal-demo:{organisation_name}".encode()).hexdigest()
    return f"{KEY_PREFIX}_{digest[:12]}_demo{digest[12:44]}"


def demo_email(organisation: Organisation, region_code: str | None) -> str:
    """A readable demo login, e.g. `tafel.ijssel-vecht@demo.vroegsignaal.nl`."""
    local = {
        OrgKind.REGIONAL_TABLE: f"tafel.{region_code}",
        OrgKind.NATIONAL_TABLE: "landelijke-tafel",
        OrgKind.GOVERNANCE: "bestuurlijk-overleg",
        OrgKind.OPERATOR: "beheer",
    }.get(organisation.kind, slugify(organisation.name))
    return f"{local}@{DEMO_MAIL_DOMAIN}"


async def _organisation(session: AsyncSession, spec: OrganisationSpec) -> tuple[Organisation, bool]:
    ref = spec.agb or spec.uzovi or spec.name
    try:
        return await resolve_organisation(session, ref), False
    except NotFound:
        return await add_organisation(session, spec), True


async def _credential(
    session: AsyncSession, organisation: Organisation, region_code: str | None
) -> DemoCredential:
    clear = demo_api_key(organisation.name)
    prefix = clear.split("_")[1]
    role = ROLE_FOR_KIND[organisation.kind]
    if await session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
        session.add(
            ApiKey(
                organisation_id=organisation.id,
                role=role,
                name="demo",
                prefix=prefix,
                key_hash=hash_api_key(clear),
            )
        )
    email = demo_email(organisation, region_code)
    if await session.scalar(select(User.id).where(User.email == email)) is None:
        session.add(
            User(
                organisation_id=organisation.id,
                email=email,
                name=organisation.name,
                password_hash=hash_password(DEMO_PASSWORD),
                role=role,
                is_org_admin=True,
            )
        )
    return DemoCredential(organisation.name, role.value, clear, email)


async def load_demo_world(session: AsyncSession) -> DemoWorld:
    """Add the demo organisations, departments, coordination, keys and logins (idempotent)."""
    world = _world()
    result = DemoWorld()
    regions = {region.code: region for region in await session.scalars(select(Region))}
    insurers: dict[str, Organisation] = {}
    for entry in world["insurers"]:
        spec = OrganisationSpec(OrgKind.INSURER, entry["name"], uzovi=entry["uzovi"])
        insurers[entry["name"]], _ = await _organisation(session, spec)
    coordinated = set(
        await session.execute(select(InsurerRegion.insurer_id, InsurerRegion.region_id))
    )
    for region_code, insurer_name in world["coordination"].items():
        pair = (insurers[insurer_name].id, regions[region_code].id)
        if pair not in coordinated:
            session.add(InsurerRegion(insurer_id=pair[0], region_id=pair[1]))
    result.insurers = len(insurers)

    organisations: list[tuple[Organisation, str | None]] = [(o, None) for o in insurers.values()]
    demo_regions: set[str] = set()
    for entry in world["providers"]:
        spec = OrganisationSpec(OrgKind.PROVIDER, entry["name"], agb=entry["agb"])
        provider, _ = await _organisation(session, spec)
        organisations.append((provider, None))
        result.providers += 1
        existing = set(
            await session.scalars(
                select(Department.code).where(Department.provider_id == provider.id)
            )
        )
        for department in entry["departments"]:
            demo_regions.add(department["region"])
            result.departments += 1
            if department["code"] in existing:
                continue
            await add_department(
                session,
                DepartmentSpec(
                    provider_agb=entry["agb"],
                    code=department["code"],
                    name=department["name"],
                    care_type=department["care_type"],
                    region=department["region"],
                    capacity=department.get("capacity"),
                ),
            )
    for region_code in sorted(demo_regions):
        organisations.append((await resolve_organisation(session, region_code), region_code))
    for ref in ("national_table", "governance", "operator"):
        organisations.append((await resolve_organisation(session, ref), None))
    result.credentials = [
        await _credential(session, organisation, region) for organisation, region in organisations
    ]
    highlighted_names = set()
    for ref in world["highlighted"]:
        highlighted_names.add((await resolve_organisation(session, ref)).name)
    result.highlighted = [
        c.organisation for c in result.credentials if c.organisation in highlighted_names
    ]
    await session.flush()
    return result

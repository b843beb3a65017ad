"""`org`, `department`, `apikey` and `user`: the operator's commands for who takes part."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.common import (
    JSON_OPTION,
    checked,
    emit,
    err,
    fail,
    out,
    progress_bar,
    run_in_transaction,
    table,
)
from services.core.admin.credentials import (
    add_user,
    create_api_key,
    revoke_api_key,
    role_for,
)
from services.core.admin.departments import DepartmentSpec, add_department, import_departments
from services.core.admin.organisations import (
    add_organisation,
    import_organisations,
    resolve_organisation,
    validate_spec,
)
from services.core.db.models import (
    ApiKey,
    CareType,
    Department,
    InsurerRegion,
    Organisation,
    Region,
)
from services.core.domain import Scope
from services.core.reference import provider_kind

ORG_HELP = "AGB code, UZOVI code, region code, national_table, governance, or the exact name."

orgs = typer.Typer(help="Providers, insurers and the governance bodies.", no_args_is_help=True)
departments = typer.Typer(help="Departments whose continuity is watched.", no_args_is_help=True)
apikeys = typer.Typer(help="API keys for provider and insurer systems.", no_args_is_help=True)
users = typer.Typer(help="Dashboard users.", no_args_is_help=True)


def _org_document(org: Organisation, coordinates: list[str]) -> dict[str, object]:
    return {
        "id": str(org.id),
        "kind": org.kind.value,
        "name": org.name,
        "agb": org.agb_code,
        "uzovi": org.uzovi_code,
        "provider_kind": provider_kind(org.agb_code) if org.agb_code else None,
        "coordinates": coordinates,
    }


@orgs.command("add")
def org_add(
    kind: str = typer.Option(..., help="provider or insurer"),
    name: str = typer.Option(..., help="The organisation's name, unique."),
    agb: str | None = typer.Option(None, help="A provider's AGB code, 8 digits."),
    uzovi: str | None = typer.Option(None, help="An insurer's UZOVI code, 4 digits."),
    coordinates: list[str] = typer.Option(
        [], help="Region code the insurer coordinates; repeat for more."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a provider or an insurer (tables and the BO are made by `seed`)."""
    spec = checked(lambda: validate_spec(kind, name, agb, uzovi, coordinates))

    async def work(session: AsyncSession) -> dict[str, object]:
        org = await add_organisation(session, spec)
        return _org_document(org, list(spec.coordinates))

    made = run_in_transaction(work)
    emit(as_json, made, lambda: out.print(f"Added {made['kind']} {made['name']} ({made['id']})"))


@orgs.command("import")
def org_import(
    file: Path = typer.Argument(..., help="CSV with columns kind,name,agb,uzovi,coordinates"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add providers and insurers from a CSV file; a file with any bad row is refused whole."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        made = await import_organisations(session, file)
        return [_org_document(org, list(spec.coordinates)) for org, spec in made]

    made = run_in_transaction(work)
    emit(
        as_json,
        {"imported": len(made), "organisations": made},
        lambda: out.print(f"Imported {len(made)} organisations from {file.name}."),
    )


@orgs.command("list")
def org_list(
    kind: str | None = typer.Option(None, help="Only this kind."), as_json: bool = JSON_OPTION
) -> None:
    """List organisations with their codes and coordinated regions."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        query = select(Organisation).order_by(Organisation.kind, Organisation.name)
        if kind:
            query = query.where(Organisation.kind == kind)
        found = list(await session.scalars(query))
        pairs = await session.execute(
            select(InsurerRegion.insurer_id, Region.code).join(
                Region, InsurerRegion.region_id == Region.id
            )
        )
        coordinated: dict[object, list[str]] = {}
        for insurer_id, code in pairs:
            coordinated.setdefault(insurer_id, []).append(code)
        return [_org_document(org, sorted(coordinated.get(org.id, []))) for org in found]

    found = run_in_transaction(work)
    emit(
        as_json,
        found,
        lambda: table(
            f"{len(found)} organisations",
            ["kind", "name", "AGB", "UZOVI", "coordinates"],
            [
                [o["kind"], o["name"], o["agb"], o["uzovi"], ", ".join(o["coordinates"])]  # type: ignore[arg-type]
                for o in found
            ],
        ),
    )


def _department_document(
    department: Department, provider: Organisation, region: str
) -> dict[str, object]:
    return {
        "id": str(department.id),
        "provider_agb": provider.agb_code,
        "provider": provider.name,
        "code": department.code,
        "name": department.name,
        "care_type": department.care_type_code,
        "region": region,
        "scope": department.scope.value,
        "capacity": department.capacity,
        "status": department.status.value,
    }


@departments.command("add")
def department_add(
    provider: str = typer.Option(..., help="The provider's AGB code."),
    code: str = typer.Option(..., help="Department code, unique within the provider."),
    name: str = typer.Option(..., help="The department's name."),
    care_type: str = typer.Option(..., help="Care type code (see `care-type list`)."),
    region: str = typer.Option(..., help="IZA region code (see `region list`)."),
    supra_regional: bool | None = typer.Option(
        None,
        "--supra-regional/--regional",
        help="Scope; by default the care type's default scope.",
    ),
    capacity: int | None = typer.Option(None, help="Beds or places (clients for a team)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register one department of a provider."""
    scope = (
        None
        if supra_regional is None
        else (Scope.SUPRA_REGIONAL if supra_regional else Scope.REGIONAL)
    )
    spec = DepartmentSpec(provider, code.strip(), name, care_type, region, scope, capacity)

    async def work(session: AsyncSession) -> dict[str, object]:
        department = await add_department(session, spec)
        owner = await session.get_one(Organisation, department.provider_id)
        return _department_document(department, owner, region)

    made = run_in_transaction(work)
    emit(
        as_json,
        made,
        lambda: out.print(
            f"Added department {made['code']} ({made['care_type']}, {made['region']},"
            f" {made['scope']}) of {made['provider']}"
        ),
    )


@departments.command("import")
def department_import(
    file: Path = typer.Argument(
        ..., help="CSV with columns provider_agb,code,name,care_type,region,scope,capacity"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add departments from CSV; a file with any bad row is refused whole, with row numbers."""
    lines = checked(lambda: _count_rows(file))

    async def work(session: AsyncSession) -> int:
        with progress_bar(as_json) as progress:
            task = progress.add_task(f"{file.name}: check and add", total=2 * lines)
            made = await import_departments(
                session, file, progress=lambda n: progress.advance(task, n)
            )
        return len(made)

    count = run_in_transaction(work)
    emit(
        as_json,
        {"imported": count, "file": file.name},
        lambda: out.print(f"Imported {count} departments from {file.name}."),
    )


def _count_rows(file: Path) -> int:
    from services.core.admin.departments import DEPARTMENT_CSV_COLUMNS
    from services.core.csvfile import read_csv

    return len(read_csv(file, DEPARTMENT_CSV_COLUMNS))


@departments.command("list")
def department_list(
    provider: str | None = typer.Option(None, help="Only this provider (AGB code)."),
    region: str | None = typer.Option(None, help="Only this region code."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List departments with care type, region, scope and capacity."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        query = (
            select(Department, Organisation, Region.code)
            .join(Organisation, Department.provider_id == Organisation.id)
            .join(Region, Department.region_id == Region.id)
            .join(CareType, Department.care_type_code == CareType.code)
            .order_by(Region.code, CareType.sort_order, Organisation.name, Department.code)
        )
        if provider:
            query = query.where(Organisation.agb_code == provider)
        if region:
            query = query.where(Region.code == region)
        rows = await session.execute(query)
        return [_department_document(d, o, r) for d, o, r in rows]

    found = run_in_transaction(work)
    emit(
        as_json,
        found,
        lambda: table(
            f"{len(found)} departments",
            ["region", "care type", "provider", "code", "name", "scope", "capacity"],
            [
                [
                    d["region"],
                    d["care_type"],
                    d["provider"],
                    d["code"],
                    d["name"],
                    d["scope"],
                    d["capacity"],
                ]
                for d in found
            ],
        ),
    )


@apikeys.command("create")
def apikey_create(
    org: str = typer.Option(..., help=ORG_HELP),
    role: str | None = typer.Option(None, help="Defaults to the organisation's role."),
    name: str = typer.Option("", help="What the key is for, e.g. the system that uses it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make an API key; it is printed once and stored only as a hash."""

    async def work(session: AsyncSession) -> dict[str, object]:
        organisation = await resolve_organisation(session, org)
        key, clear = await create_api_key(
            session, organisation=organisation, role=role_for(organisation, role), name=name
        )
        return {
            "key": clear,
            "id": str(key.id),
            "prefix": key.prefix,
            "role": key.role.value,
            "organisation": organisation.name,
        }

    made = run_in_transaction(work)

    def human() -> None:
        out.print(f"API key for {made['organisation']} (role {made['role']}):")
        out.print(str(made["key"]), highlight=False)
        err.print(f"Store it now: it is not shown again. Revoke: `apikey revoke {made['prefix']}`")

    emit(as_json, made, human)


@apikeys.command("revoke")
def apikey_revoke(
    key: str = typer.Argument(..., help="The key's id, its prefix, or the key itself."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke an API key at once."""

    async def work(session: AsyncSession) -> dict[str, object]:
        revoked = await revoke_api_key(session, key)
        return {"id": str(revoked.id), "prefix": revoked.prefix, "revoked_at": revoked.revoked_at}

    done = run_in_transaction(work)
    emit(as_json, done, lambda: out.print(f"Revoked API key {done['prefix']}."))


@apikeys.command("list")
def apikey_list(
    org: str | None = typer.Option(None, help=ORG_HELP), as_json: bool = JSON_OPTION
) -> None:
    """List keys (never the keys themselves: only prefix, role and state)."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        query = (
            select(ApiKey, Organisation.name)
            .join(Organisation, ApiKey.organisation_id == Organisation.id)
            .order_by(ApiKey.created_at)
        )
        if org:
            query = query.where(
                ApiKey.organisation_id == (await resolve_organisation(session, org)).id
            )
        rows = await session.execute(query)
        return [
            {
                "id": str(key.id),
                "prefix": key.prefix,
                "organisation": organisation,
                "role": key.role.value,
                "name": key.name,
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
            }
            for key, organisation in rows
        ]

    found = run_in_transaction(work)
    emit(
        as_json,
        found,
        lambda: table(
            f"{len(found)} API keys",
            ["prefix", "organisation", "role", "name", "created", "revoked"],
            [
                [
                    k["prefix"],
                    k["organisation"],
                    k["role"],
                    k["name"],
                    k["created_at"],
                    k["revoked_at"],
                ]
                for k in found
            ],
        ),
    )


@users.command("add")
def user_add(
    org: str = typer.Option(..., help=ORG_HELP),
    email: str = typer.Option(..., help="The login; unique."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (required)."
    ),
    name: str = typer.Option("", help="The person's name, for the timeline."),
    org_admin: bool = typer.Option(False, help="May manage the organisation's webhooks."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a dashboard user; the password comes from standard input, never from the command line."""
    if not password_stdin:
        fail("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(session: AsyncSession) -> dict[str, object]:
        organisation = await resolve_organisation(session, org)
        user = await add_user(
            session,
            organisation=organisation,
            email=email,
            password=password,
            name=name,
            org_admin=org_admin,
        )
        return {
            "id": str(user.id),
            "email": user.email,
            "organisation": organisation.name,
            "role": user.role.value,
            "org_admin": user.is_org_admin,
        }

    made = run_in_transaction(work)
    emit(as_json, made, lambda: out.print(f"Added user {made['email']} ({made['organisation']})."))

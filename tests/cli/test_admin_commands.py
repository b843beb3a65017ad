"""Every admin command with good and bad input; bad input exits 2, says why, changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import Result

from services.core.auth import api_key_matches, hash_api_key, password_matches
from services.core.db.models import ApiKey, Department, InsurerRegion, Organisation, User
from tests.cli.conftest import Cli

PROVIDER = ["org", "add", "--kind", "provider", "--name", "GGZ Testland", "--agb", "73990101"]
INSURER = ["org", "add", "--kind", "insurer", "--name", "Testverzekeraar", "--uzovi", "9911"]


def assert_refused(result: Result, *phrases: str) -> None:
    """Exit status 2, one line on standard error naming the problem, nothing on standard out."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("error:"), message
    for phrase in phrases:
        assert phrase in message, (phrase, message)


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def add_world(cli: Cli) -> None:
    cli.json(*PROVIDER)
    cli.json(*INSURER, "--coordinates", "ijssel-vecht", "--coordinates", "twente")


def test_region_and_care_type_lists(seeded: Cli) -> None:
    regions = seeded.json("region", "list")
    assert len(regions) == 42
    assert {"code": "ijssel-vecht", "name": "IJssel-Vecht"}.items() <= next(
        r for r in regions if r["code"] == "ijssel-vecht"
    ).items()
    care_types = seeded.json("care-type", "list")
    assert {c["cluster"] for c in care_types} == {
        "acute",
        "outreach",
        "clinical",
        "secure",
        "highly_specialised",
        "crisis_beds",
    }
    human = seeded("care-type", "list")
    assert human.exit_code == 0
    assert "acute.hic" in human.stdout


def test_region_import_survives_the_next_seed(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text(
        "code,name,mandate_municipality\nzhe-bar,Zuid-Hollandse Eilanden,Nissewaard\n",
        encoding="utf-8",
    )
    assert seeded.json("region", "import", str(path))["updated"] == 1
    assert seeded.json("seed")["regions"]["kept_imported"] == 1
    regions = {r["code"]: r for r in seeded.json("region", "list")}
    assert regions["zhe-bar"]["name"] == "Zuid-Hollandse Eilanden"


async def test_org_add_provider_and_insurer(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    provider = seeded.json(*PROVIDER)
    assert provider["kind"] == "provider"
    assert provider["agb"] == "73990101"
    insurer = seeded.json(*INSURER, "--coordinates", "ijssel-vecht", "--coordinates", "twente")
    assert insurer["coordinates"] == ["ijssel-vecht", "twente"]
    assert await count(sessions, InsurerRegion) == 2
    listed = seeded.json("org", "list", "--kind", "insurer")
    assert [o["name"] for o in listed] == ["Testverzekeraar"]
    assert listed[0]["coordinates"] == ["ijssel-vecht", "twente"]


async def test_org_add_refuses_bad_input_and_changes_nothing(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = await count(sessions, Organisation)
    base = ["org", "add", "--name", "X"]
    assert_refused(seeded(*base, "--kind", "provider", "--agb", "1234567"), "not 8 digits")
    assert_refused(seeded(*base, "--kind", "provider", "--agb", "1234567a"), "not 8 digits")
    assert_refused(seeded(*base, "--kind", "provider"), "needs its AGB code")
    assert_refused(seeded(*base, "--kind", "insurer", "--uzovi", "123"), "not 4 digits")
    assert_refused(seeded(*base, "--kind", "hospital"), "provider or insurer")
    assert_refused(
        seeded(*base, "--kind", "insurer", "--uzovi", "9912", "--coordinates", "atlantis"),
        "unknown region",
        "atlantis",
    )
    seeded.json(*PROVIDER)
    assert_refused(seeded(*PROVIDER), "already")
    assert await count(sessions, Organisation) == before + 1


async def test_org_import(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    good = tmp_path / "orgs.csv"
    good.write_text(
        "kind,name,agb,uzovi,coordinates\n"
        "provider,GGZ Een,73990111,,\n"
        "provider,GGZ Twee,73990112,,\n"
        "insurer,Verzekeraar Drie,,9913,amsterdam;zeeland\n"
    )
    made = seeded.json("org", "import", str(good))
    assert made["imported"] == 3
    assert made["organisations"][2]["coordinates"] == ["amsterdam", "zeeland"]

    before = await count(sessions, Organisation)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "kind,name,agb,uzovi,coordinates\n"
        "provider,GGZ Vier,73990114,,\n"
        "provider,GGZ Vijf,123,,\n"
        "insurer,Verzekeraar Zes,,9916,nergens\n"
        "provider,GGZ Een,73990199,,\n"
    )
    result = seeded("org", "import", str(bad))
    assert_refused(result, "row 2", "not 8 digits", "nergens", "row 4", "GGZ Een")
    assert await count(sessions, Organisation) == before

    assert_refused(seeded("org", "import", str(tmp_path / "missing.csv")), "no such file")
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("provider,GGZ Zeven,73990117,,\n")
    assert_refused(seeded("org", "import", str(headerless)), "missing column")


def department_args(code: str = "HIC-TEST", **overrides: str) -> list[str]:
    fields = {
        "provider": "73990101",
        "code": code,
        "name": "HIC Test",
        "care-type": "acute.hic",
        "region": "ijssel-vecht",
        "capacity": "24",
    } | overrides
    args = ["department", "add"]
    for name, value in fields.items():
        args += [f"--{name}", value]
    return args


async def test_department_add_takes_default_scope_from_care_type(seeded: Cli) -> None:
    add_world(seeded)
    hic = seeded.json(*department_args())
    assert hic["scope"] == "regional"
    assert hic["capacity"] == 24
    assert hic["region"] == "ijssel-vecht"
    kib = seeded.json(*department_args("KIB-TEST", **{"care-type": "secure.kib"}))
    assert kib["scope"] == "supra_regional"
    forced = seeded.json(
        *department_args("HIC-2", **{"care-type": "acute.hic"}), "--supra-regional"
    )
    assert forced["scope"] == "supra_regional"
    listed = seeded.json("department", "list", "--provider", "73990101")
    assert [d["code"] for d in listed] == ["HIC-2", "HIC-TEST", "KIB-TEST"] or len(listed) == 3


async def test_department_add_refuses_bad_input_and_changes_nothing(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    add_world(seeded)
    seeded.json(*department_args())
    assert_refused(seeded(*department_args()), "already exists")
    assert_refused(seeded(*department_args("X", **{"care-type": "acute.xyz"})), "unknown care type")
    assert_refused(seeded(*department_args("X", region="atlantis")), "unknown region")
    assert_refused(seeded(*department_args("X", provider="73990999")), "no provider")
    assert_refused(seeded(*department_args("X", provider="7399")), "not 8 digits")
    assert_refused(seeded(*department_args("X", capacity="-1")), "capacity")
    assert_refused(seeded(*department_args("bad code!")), "department code")
    assert await count(sessions, Department) == 1


async def test_department_import_all_or_nothing(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    add_world(seeded)
    header = "provider_agb,code,name,care_type,region,scope,capacity\n"
    good = tmp_path / "departments.csv"
    good.write_text(
        header
        + "73990101,CRISIS-1,Crisisdienst,acute.crisis,ijssel-vecht,,\n"
        + "73990101,FACT-1,FACT Noord,outreach.fact,ijssel-vecht,regional,150\n"
        + "73990101,BEV3-1,Beveiligd 3,secure.level3,twente,supra_regional,30\n"
    )
    assert seeded.json("department", "import", str(good)) == {
        "imported": 3,
        "file": "departments.csv",
    }
    bad = tmp_path / "bad.csv"
    bad.write_text(
        header
        + "73990101,OK-1,Goed,acute.iht,ijssel-vecht,,10\n"
        + "73990101,FACT-1,Dubbel,outreach.fact,ijssel-vecht,,\n"
        + "73990101,X-2,Fout,acute.hic,ijssel-vecht,national,ten\n"
        + "73990101,OK-1,Herhaald,acute.iht,ijssel-vecht,,\n"
    )
    result = seeded("department", "import", str(bad))
    assert_refused(
        result,
        "row 2",
        "already exists",
        "row 3",
        "scope",
        "whole number",
        "row 4",
        "repeats row 1",
    )
    assert await count(sessions, Department) == 3


async def test_apikey_create_prints_once_and_stores_only_a_hash(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    add_world(seeded)
    made = seeded.json("apikey", "create", "--org", "73990101")
    key = made["key"]
    assert key.startswith("vs_")
    assert made["role"] == "provider"
    async with sessions() as session:
        stored = (await session.scalars(select(ApiKey))).one()
        columns = {c.key: getattr(stored, c.key) for c in ApiKey.__table__.columns}
    assert key not in {str(value) for value in columns.values()}
    assert stored.key_hash == hash_api_key(key)
    assert api_key_matches(key, stored.key_hash)
    listed = seeded("apikey", "list")
    assert listed.exit_code == 0
    assert key not in listed.stdout
    assert made["prefix"] in listed.stdout

    # Every way of naming an organisation works.
    assert seeded.json("apikey", "create", "--org", "9911")["role"] == "insurer"
    assert seeded.json("apikey", "create", "--org", "ijssel-vecht")["role"] == "regional_table"
    assert seeded.json("apikey", "create", "--org", "national_table")["role"] == "national_table"
    assert seeded.json("apikey", "create", "--org", "governance")["role"] == "governance"
    assert seeded.json("apikey", "create", "--org", "GGZ Testland")["role"] == "provider"
    assert (
        seeded.json("apikey", "create", "--org", "operator", "--role", "admin")["role"] == "admin"
    )


async def test_apikey_refusals_and_revoke(
    seeded: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    add_world(seeded)
    assert_refused(seeded("apikey", "create", "--org", "12345678"), "no organisation")
    assert_refused(seeded("apikey", "create", "--org", "Nobody"), "no organisation")
    assert_refused(
        seeded("apikey", "create", "--org", "73990101", "--role", "insurer"), "does not fit"
    )
    assert_refused(
        seeded("apikey", "create", "--org", "73990101", "--role", "king"), "unknown role"
    )
    assert await count(sessions, ApiKey) == 0

    made = seeded.json("apikey", "create", "--org", "73990101")
    revoked = seeded.json("apikey", "revoke", made["prefix"])
    assert revoked["revoked_at"]
    assert_refused(seeded("apikey", "revoke", made["key"]), "already revoked")
    assert_refused(seeded("apikey", "revoke", "nothing"), "no API key")


async def test_user_add(seeded: Cli, sessions: async_sessionmaker[AsyncSession]) -> None:
    add_world(seeded)
    made = seeded.json(
        "user",
        "add",
        "--org",
        "ijssel-vecht",
        "--email",
        "Tafel@Example.NL",
        "--password-stdin",
        input="een lang wachtwoord\n",
    )
    assert made == made | {"email": "tafel@example.nl", "role": "regional_table"}
    async with sessions() as session:
        user = (await session.scalars(select(User))).one()
    assert user.password_hash.startswith("$argon2id$")
    assert password_matches("een lang wachtwoord", user.password_hash)
    assert not password_matches("een ander wachtwoord", user.password_hash)

    add = ["user", "add", "--org", "9911", "--password-stdin"]
    assert_refused(
        seeded(*add, "--email", "TAFEL@example.nl", input="een lang wachtwoord\n"), "already exists"
    )
    assert_refused(
        seeded(*add, "--email", "geen-adres", input="een lang wachtwoord\n"), "not an e-mail"
    )
    assert_refused(seeded(*add, "--email", "a@b.nl", input="kort\n"), "at least 12")
    assert_refused(seeded("user", "add", "--org", "9911", "--email", "a@b.nl"), "--password-stdin")
    assert await count(sessions, User) == 1


def test_admin_commands_need_a_schema(cli: Cli, tmp_path: Path) -> None:
    """Pointing the CLI at an empty database says what to do instead of a traceback."""
    env = dict(cli.env)
    env["VROEGSIGNAAL_DATABASE_URL"] = (
        env["VROEGSIGNAAL_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    )
    result = Cli(env)("region", "list")
    assert_refused(result, "vroegsignaal migrate")


async def test_admin_commands_refuse_an_outdated_schema(
    cli: Cli, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A database left at an older revision gets a clear instruction, not a SQL error."""
    async with sessions() as session, session.begin():
        current = await session.scalar(text("SELECT version_num FROM alembic_version"))
        await session.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    try:
        assert_refused(cli("region", "list"), "revision 0000", "vroegsignaal migrate")
    finally:
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": current}
            )

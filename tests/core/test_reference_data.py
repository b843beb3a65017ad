"""The packaged reference data and its idempotent loading, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.base import Base
from services.core.db.models import CareType, Organisation, Region, WaitingTimeNorm
from services.core.domain import Cluster, OrgKind, RegionSource, Scope, slugify
from services.core.errors import Conflict, InvalidInput
from services.core.reference import (
    ImportReport,
    RegionRow,
    SeedReport,
    import_regions,
    packaged_care_types,
    packaged_norms,
    packaged_regions,
    provider_kind,
    read_care_types_csv,
    read_norms_csv,
    read_regions_csv,
    regional_table_name,
    seed_reference_data,
)

Sessions = async_sessionmaker[AsyncSession]
REFERENCE_TABLES = ("regions", "care_types", "waiting_time_norms", "organisations")


async def seed(sessions: Sessions) -> SeedReport:
    async with sessions() as session, session.begin():
        return await seed_reference_data(session)


async def import_in_transaction(
    sessions: Sessions, rows: list[RegionRow], *, retire_missing: bool = False
) -> ImportReport:
    async with sessions() as session, session.begin():
        return await import_regions(
            session, rows, source=RegionSource.IMPORTED, retire_missing=retire_missing
        )


async def dump(sessions: Sessions) -> dict[str, list[dict[str, Any]]]:
    """Every column of every row of the reference tables, ids and timestamps included."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with sessions() as session:
        for name in REFERENCE_TABLES:
            table = Base.metadata.tables[name]
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            tables[name] = [dict(row) for row in result.mappings()]
    return tables


async def regions_by_code(sessions: Sessions) -> dict[str, Region]:
    async with sessions() as session:
        return {region.code: region for region in await session.scalars(select(Region))}


async def table_of(sessions: Sessions, region_id: int) -> Organisation:
    async with sessions() as session:
        query = select(Organisation).where(Organisation.region_id == region_id)
        return (await session.scalars(query)).one()


def renamed(rows: list[RegionRow], code: str, name: str) -> list[RegionRow]:
    return [dataclasses.replace(row, name=name) if row.code == code else row for row in rows]


# --- the packaged files ---------------------------------------------------------------------------


def test_packaged_regions_are_the_42_iza_regions_with_slug_codes() -> None:
    regions = packaged_regions()
    assert len(regions) == 42
    assert len({region.code for region in regions}) == 42
    assert all(region.code == slugify(region.name) for region in regions)
    codes = {region.code for region in regions}
    assert {"apeldoorn-zutphen", "zhe-bar", "ijssel-vecht", "dwo-gemeenten"} <= codes
    assert all(region.mandate_municipality for region in regions)


def test_packaged_care_types_cover_every_cluster_and_name_their_source() -> None:
    care_types = packaged_care_types()
    assert len(care_types) == 17
    assert {care_type.cluster for care_type in care_types} == set(Cluster)
    for care_type in care_types:
        assert care_type.code.startswith(f"{care_type.cluster.value}.")
        assert care_type.source
        assert care_type.status in ("proposal", "unverified")
    supra = {ct.code for ct in care_types if ct.default_scope is Scope.SUPRA_REGIONAL}
    assert supra == {
        "secure.level3",
        "secure.level4",
        "secure.kib",
        "secure.liz",
        "highly_specialised.supra_regional",
    }
    exempt = {ct.code for ct in care_types if not ct.waiting_norms_apply}
    assert exempt == {
        "acute.crisis",
        "acute.iht",
        "acute.hic",
        "clinical.wvggz",
        "crisis_beds.vg",
        "crisis_beds.pg",
    }
    by_code = {ct.code: ct for ct in care_types}
    assert by_code["crisis_beds.vg"].has_beds
    assert by_code["acute.hic"].has_beds
    assert not by_code["acute.crisis"].has_beds
    assert not by_code["outreach.fact"].has_beds
    assert by_code["outreach.vip"].status == "unverified"


def test_packaged_norm_is_the_treeknorm_of_4_10_14_weeks() -> None:
    (norm,) = packaged_norms()
    assert norm.code == "treeknorm.ggz"
    assert norm.aanmeldwachttijd_weeks == Decimal(4)
    assert norm.behandelwachttijd_weeks == Decimal(10)
    assert norm.total_weeks == Decimal(14)
    assert norm.valid_to is None


def test_provider_kind_names_the_two_digit_kind_and_never_refuses() -> None:
    assert provider_kind("06290104") == "Ziekenhuizen, niet nader gespecificeerd"
    assert provider_kind("73730327") == "WLZ-gecombineerd"
    assert provider_kind("55000000") is None  # a kind the list does not have: unknown, not wrong
    assert provider_kind("0629") is None  # not an AGB code at all


# --- reading files --------------------------------------------------------------------------------


def test_bad_regions_csv_is_refused_with_every_problem_and_its_row(tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text(
        "code,name,mandate_municipality\n"
        "twente,Twente,Enschede\n"
        "twente,Twente Oost,\n"
        "Foo Bar,Foo Bar,Foo\n"
        "empty-name,,\n"
        "twente-2,twente,\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as refused:
        read_regions_csv(path)
    lines = str(refused.value).splitlines()
    assert lines == [
        "regions.csv refused, nothing imported (4 problem(s)):",
        "  row 2: code 'twente' is also in row 1",
        "  row 3: code 'Foo Bar' is not a slug (lowercase letters, digits and dashes)",
        "  row 4: name is empty",
        "  row 5: name 'twente' is also in row 1",
    ]


def test_regions_csv_with_missing_column_or_no_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text("regio,mandaatgemeente\nTwente,Enschede\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="missing column"):
        read_regions_csv(path)
    path.write_text("code,name,mandate_municipality\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no rows"):
        read_regions_csv(path)
    with pytest.raises(InvalidInput, match="no such file"):
        read_regions_csv(tmp_path / "absent.csv")


def test_good_regions_csv_is_read_with_optional_mandate(tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text("\ufeffcode,name,mandate_municipality\r\ntwente,Twente,\r\n", encoding="utf-8")
    assert read_regions_csv(path) == [RegionRow("twente", "Twente", None)]


def test_bad_care_type_and_overlapping_norm_are_refused(tmp_path: Path) -> None:
    care_types = tmp_path / "care_types.csv"
    care_types.write_text(
        "code,cluster,name_nl,name_en,default_scope,waiting_norms_apply,has_beds,sort_order,"
        "status,description,source\n"
        "acute.x,acute,X,X,regional,true,false,1,proposal,,here\n"
        "acute.y,outreach,Y,Y,national,maybe,false,two,proposal,,here\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as refused:
        read_care_types_csv(care_types)
    message = str(refused.value)
    assert "row 2: code 'acute.y' does not start with its cluster 'outreach'" in message
    assert "row 2: default_scope 'national'" in message
    assert "row 2: waiting_norms_apply 'maybe' is not true or false" in message
    assert "row 2: sort_order 'two' is not a whole number" in message
    assert "row 1" not in message

    norms = tmp_path / "norms.csv"
    norms.write_text(
        "code,name,aanmeldwachttijd_weeks,behandelwachttijd_weeks,total_weeks,valid_from,"
        "valid_to,source\n"
        "treeknorm.ggz,Treeknorm,4,10,14,2000-01-01,,x\n"
        "treeknorm.ggz,AZWA,3,8,11,2026-01-01,,x\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput, match=r"row 2: treeknorm\.ggz from 2026-01-01 overlaps"):
        read_norms_csv(norms)
    norms.write_text(
        "code,name,aanmeldwachttijd_weeks,behandelwachttijd_weeks,total_weeks,valid_from,"
        "valid_to,source\n"
        "treeknorm.ggz,Treeknorm,4,10,14,2000-01-01,2026-01-01,x\n"
        "treeknorm.ggz,AZWA,3,8,11,2026-01-01,,x\n",
        encoding="utf-8",
    )
    assert [norm.name for norm in read_norms_csv(norms)] == ["Treeknorm", "AZWA"]


# --- loading --------------------------------------------------------------------------------------


async def test_seed_loads_regions_care_types_norms_and_governance(sessions: Sessions) -> None:
    report = await seed(sessions)
    assert report.regions.created == 42
    assert report.care_types.created == 17
    assert report.norms.created == 1
    assert report.organisations.created == 45
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Region)) == 42
        care_types = list(await session.scalars(select(CareType)))
        norm = (await session.scalars(select(WaitingTimeNorm))).one()
        counted = await session.execute(
            select(Organisation.kind, func.count()).group_by(Organisation.kind)
        )
        kinds = {row[0]: row[1] for row in counted}
        national = await session.scalar(
            select(Organisation.name).where(Organisation.kind == OrgKind.NATIONAL_TABLE)
        )
    assert len(care_types) == 17
    assert all(isinstance(care_type.cluster, Cluster) for care_type in care_types)
    assert {care_type.cluster for care_type in care_types} == set(Cluster)
    assert (norm.aanmeldwachttijd_weeks, norm.behandelwachttijd_weeks, norm.total_weeks) == (
        Decimal(4),
        Decimal(10),
        Decimal(14),
    )
    assert kinds == {
        OrgKind.REGIONAL_TABLE: 42,
        OrgKind.NATIONAL_TABLE: 1,
        OrgKind.GOVERNANCE: 1,
        OrgKind.OPERATOR: 1,
    }
    assert national == "Landelijke tafel cruciale ggz"
    regions = await regions_by_code(sessions)
    twente = await table_of(sessions, regions["twente"].id)
    assert twente.kind is OrgKind.REGIONAL_TABLE
    assert twente.name == "Regionale tafel Twente"


async def test_seeding_twice_changes_no_row(sessions: Sessions) -> None:
    await seed(sessions)
    before = await dump(sessions)
    again = await seed(sessions)
    assert await dump(sessions) == before
    assert again.as_dict() == {
        "regions": {
            "created": 0,
            "updated": 0,
            "unchanged": 42,
            "kept_imported": 0,
            "retired": 0,
            "tables_created": 0,
            "tables_renamed": 0,
        },
        "care_types": {"created": 0, "updated": 0, "unchanged": 17},
        "norms": {"created": 0, "updated": 0, "unchanged": 1},
        "organisations": {"created": 0, "updated": 0, "unchanged": 45},
    }
    assert len(before["organisations"]) == 42 + 1 + 1 + 1


async def test_two_seeds_at_once_make_one_set_of_rows(sessions: Sessions) -> None:
    first, second = await asyncio.gather(seed(sessions), seed(sessions))
    assert sorted([first.regions.created, second.regions.created]) == [0, 42]
    tables = await dump(sessions)
    assert (len(tables["regions"]), len(tables["organisations"])) == (42, 45)


async def test_seed_updates_an_existing_care_type_and_region_instead_of_duplicating(
    sessions: Sessions,
) -> None:
    await seed(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(CareType).where(CareType.code == "acute.hic").values(name_nl="Oude naam")
        )
        await session.execute(update(Region).where(Region.code == "twente").values(name="Oud"))
    ids = {code: region.id for code, region in (await regions_by_code(sessions)).items()}
    report = await seed(sessions)
    assert (report.care_types.updated, report.care_types.unchanged) == (1, 16)
    # The table kept its name: it follows the region's name, which the seed restored.
    assert (report.regions.updated, report.regions.tables_renamed) == (1, 0)
    regions = await regions_by_code(sessions)
    assert {code: region.id for code, region in regions.items()} == ids
    assert regions["twente"].name == "Twente"
    async with sessions() as session:
        hic = await session.get(CareType, "acute.hic")
        assert hic is not None
        assert hic.name_nl == "High & Intensive Care-opnameafdeling (HIC)"
        assert await session.scalar(select(func.count()).select_from(CareType)) == 17


async def test_renamed_region_keeps_its_id_and_its_table_follows(sessions: Sessions) -> None:
    await seed(sessions)
    old = (await regions_by_code(sessions))["zhe-bar"]
    old_table = await table_of(sessions, old.id)
    rows = renamed(packaged_regions(), "zhe-bar", "Zuid-Hollandse Eilanden")
    report = await import_in_transaction(sessions, rows)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 41)
    assert (report.tables_created, report.tables_renamed) == (0, 1)
    regions = await regions_by_code(sessions)
    new = regions["zhe-bar"]
    assert (new.id, new.name, new.source) == (
        old.id,
        "Zuid-Hollandse Eilanden",
        RegionSource.IMPORTED,
    )
    # Only what the import changed becomes the operator's; the rest stays with the packaged list.
    assert {code for code, r in regions.items() if r.source is RegionSource.IMPORTED} == {"zhe-bar"}
    table = await table_of(sessions, new.id)
    assert table.id == old_table.id
    assert table.name == regional_table_name("Zuid-Hollandse Eilanden")
    assert table.name == "Regionale tafel Zuid-Hollandse Eilanden"


async def test_two_regions_may_swap_names(sessions: Sessions) -> None:
    await seed(sessions)
    rows = renamed(
        renamed(packaged_regions(), "utrecht", "Utrecht-Eemland"), "utrecht-eemland", "Utrecht"
    )
    await import_in_transaction(sessions, rows)
    regions = await regions_by_code(sessions)
    assert regions["utrecht"].name == "Utrecht-Eemland"
    assert (
        await table_of(sessions, regions["utrecht"].id)
    ).name == "Regionale tafel Utrecht-Eemland"
    assert (
        await table_of(sessions, regions["utrecht-eemland"].id)
    ).name == "Regionale tafel Utrecht"


async def test_retire_missing_marks_absent_regions_inactive_and_keeps_them(
    sessions: Sessions,
) -> None:
    await seed(sessions)
    kept = [row for row in packaged_regions() if row.code not in ("twente", "zeeland")]
    report = await import_in_transaction(sessions, kept, retire_missing=True)
    assert (report.retired, report.unchanged) == (2, 40)
    regions = await regions_by_code(sessions)
    assert len(regions) == 42
    assert {code for code, region in regions.items() if not region.active} == {"twente", "zeeland"}
    assert (await table_of(sessions, regions["twente"].id)).name == "Regionale tafel Twente"

    without_flag = await import_in_transaction(sessions, kept)
    assert without_flag.retired == 0
    back = await import_in_transaction(sessions, packaged_regions())
    assert (back.updated, back.unchanged) == (2, 40)
    assert all(region.active for region in (await regions_by_code(sessions)).values())


async def test_import_adds_a_new_region_with_its_table(sessions: Sessions) -> None:
    await seed(sessions)
    rows = [*packaged_regions(), RegionRow("testregio", "Testregio", "Teststad")]
    report = await import_in_transaction(sessions, rows)
    assert (report.created, report.unchanged, report.tables_created) == (1, 42, 1)
    region = (await regions_by_code(sessions))["testregio"]
    assert (await table_of(sessions, region.id)).name == "Regionale tafel Testregio"


async def test_refused_imports_change_nothing(sessions: Sessions, tmp_path: Path) -> None:
    await seed(sessions)
    before = await dump(sessions)
    path = tmp_path / "regions.csv"
    path.write_text("code,name,mandate_municipality\nok,Ok,\nNot OK,Not ok,\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="row 2: code 'Not OK' is not a slug"):
        await import_in_transaction(sessions, read_regions_csv(path), retire_missing=True)
    bad = [RegionRow("ok", "Ok"), RegionRow("Not OK", "Not ok")]
    with pytest.raises(InvalidInput, match="row 2: code 'Not OK' is not a slug"):
        await import_in_transaction(sessions, bad, retire_missing=True)
    with pytest.raises(InvalidInput, match="empty list"):
        await import_in_transaction(sessions, [], retire_missing=True)
    # A new code with the name of a region outside the file: keep the code to rename instead.
    with pytest.raises(Conflict, match="belongs to region 'twente'"):
        await import_in_transaction(sessions, [RegionRow("twente-nieuw", "Twente")])
    assert await dump(sessions) == before


# --- seed after an operator's import --------------------------------------------------------------


async def test_seed_keeps_the_name_an_operator_imported(sessions: Sessions) -> None:
    await seed(sessions)
    await import_in_transaction(
        sessions, renamed(packaged_regions(), "zhe-bar", "Zuid-Hollandse Eilanden")
    )
    before = await dump(sessions)
    report = await seed(sessions)
    assert await dump(sessions) == before
    assert report.regions.as_dict() == {
        "created": 0,
        "updated": 0,
        "unchanged": 42,
        "kept_imported": 1,
        "retired": 0,
        "tables_created": 0,
        "tables_renamed": 0,
    }
    region = (await regions_by_code(sessions))["zhe-bar"]
    assert (region.name, region.source) == ("Zuid-Hollandse Eilanden", RegionSource.IMPORTED)
    assert (await table_of(sessions, region.id)).name == "Regionale tafel Zuid-Hollandse Eilanden"


async def test_seed_does_not_bring_back_a_region_the_operator_retired(sessions: Sessions) -> None:
    await seed(sessions)
    kept = [row for row in packaged_regions() if row.code != "twente"]
    await import_in_transaction(sessions, kept, retire_missing=True)
    report = await seed(sessions)
    assert (report.regions.updated, report.regions.unchanged) == (0, 42)
    assert report.regions.kept_imported == 1
    twente = (await regions_by_code(sessions))["twente"]
    assert (twente.active, twente.source) == (False, RegionSource.IMPORTED)

    # The operator may bring it back with an import; it stays the operator's.
    await import_in_transaction(sessions, packaged_regions())
    await seed(sessions)
    twente = (await regions_by_code(sessions))["twente"]
    assert (twente.active, twente.source) == (True, RegionSource.IMPORTED)


async def test_a_region_only_in_the_import_stays_after_seed(sessions: Sessions) -> None:
    await seed(sessions)
    rows = [*packaged_regions(), RegionRow("testregio", "Testregio", "Teststad")]
    await import_in_transaction(sessions, rows, retire_missing=True)
    report = await seed(sessions)
    assert (report.regions.created, report.regions.updated, report.regions.retired) == (0, 0, 0)
    assert report.organisations.created == 0
    region = (await regions_by_code(sessions))["testregio"]
    assert (region.name, region.mandate_municipality, region.active) == (
        "Testregio",
        "Teststad",
        True,
    )
    assert region.source is RegionSource.IMPORTED
    assert (await table_of(sessions, region.id)).name == "Regionale tafel Testregio"


async def test_seed_adds_a_packaged_region_the_import_left_out(sessions: Sessions) -> None:
    """An import that never mentions a packaged region leaves it to the packaged list."""
    async with sessions() as session, session.begin():
        await import_regions(
            session, [RegionRow("testregio", "Testregio")], source=RegionSource.IMPORTED
        )
    report = await seed(sessions)
    assert (report.regions.created, report.regions.kept_imported) == (42, 0)
    regions = await regions_by_code(sessions)
    assert len(regions) == 43
    assert regions["twente"].source is RegionSource.PACKAGED


async def test_seed_leaves_an_imported_name_that_a_packaged_region_had_before(
    sessions: Sessions,
) -> None:
    """An operator may give a packaged region's old name to a new code; seed does not fight it."""
    await seed(sessions)
    rows = [
        *renamed(packaged_regions(), "twente", "Twente (oud)"),
        RegionRow("twente-nieuw", "Twente", "Enschede"),
    ]
    await import_in_transaction(sessions, rows)
    before = await dump(sessions)
    await seed(sessions)
    assert await dump(sessions) == before
    regions = await regions_by_code(sessions)
    assert (regions["twente"].name, regions["twente-nieuw"].name) == ("Twente (oud)", "Twente")

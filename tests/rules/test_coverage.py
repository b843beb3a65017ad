"""Coverage per region and care type, and `no_alternative`, over several departments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.departments import DepartmentSpec, add_department
from services.core.db.models import Alert, AuditEntry, Department, Region, RegionalCoverage, Signal
from services.core.domain import AlertKind, AlertStatus, Cluster, Level, SignalKind, SignalSource
from services.core.http.app import create_app
from services.rules import api as rules_api
from services.rules.coverage import Cell, Member, no_alternative, raised, with_member
from services.rules.ruleset import load_ruleset
from services.rules.worker import judge
from tests.ingest.conftest import PROVIDER_B, build_world, open_client, settings

SHARE = 0.5


def cell(*members: tuple[str, Level, int], region: str | None = "ijssel-vecht") -> Cell:
    return Cell(
        region_id=1 if region else None,
        region=region,
        care_type="acute.hic",
        cluster=Cluster.ACUTE,
        members=tuple(Member(i, level, capacity) for i, level, capacity in members),
    )


def test_the_last_department_of_its_care_type_has_no_alternative() -> None:
    alone = cell(("a", Level.THREATENED, 24))
    assert no_alternative(alone, "a", Level.THREATENED, SHARE)
    assert not no_alternative(alone, "a", Level.WATCH, SHARE), "only a threatened one counts"
    assert alone.gap and alone.level(SHARE) is Level.CRITICAL


def test_a_large_share_of_the_regions_capacity_has_no_alternative() -> None:
    region = cell(("big", Level.THREATENED, 30), ("small", Level.OK, 10))
    assert no_alternative(region, "big", Level.THREATENED, SHARE)  # 75 % of the beds
    assert not region.gap
    assert region.level(SHARE) is Level.THREATENED


def test_a_small_department_among_others_has_alternatives() -> None:
    region = cell(("small", Level.CRITICAL, 10), ("b", Level.OK, 20), ("c", Level.WATCH, 20))
    assert not no_alternative(region, "small", Level.CRITICAL, SHARE)
    assert region.level(SHARE) is Level.WATCH
    assert region.capacity_total == 50 and len(region.at_risk) == 1


def test_a_gap_when_no_unthreatened_department_is_left() -> None:
    region = cell(("a", Level.THREATENED, 10), ("b", Level.OK, 10))
    assert not region.gap
    after = with_member(region, "b", Level.CRITICAL)
    assert after.gap and after.level(SHARE) is Level.CRITICAL
    assert [m.level for m in region.members] == [Level.THREATENED, Level.OK], "unchanged"


def test_supra_regional_care_is_judged_against_national_coverage() -> None:
    national = cell(("kib-1", Level.THREATENED, 10), ("kib-2", Level.OK, 10), region=None)
    assert national.region_id is None and not national.gap
    assert not no_alternative(national, "kib-1", Level.THREATENED, SHARE)  # exactly half


def test_no_alternative_goes_up_one_level() -> None:
    assert [raised(level) for level in Level] == [
        Level.OK,
        Level.THREATENED,
        Level.CRITICAL,
        Level.CRITICAL,
    ]


def test_an_empty_cell_is_no_gap() -> None:
    empty = cell()
    assert not empty.gap and empty.level(SHARE) is Level.OK and empty.capacity_total == 0


async def test_coverage_across_departments_and_regions_through_the_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ruleset = load_ruleset()
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        world = await build_world(session)
        small = await add_department(
            session,
            DepartmentSpec(
                PROVIDER_B, "HIC-DEVENTER", "HIC Deventer", "acute.hic", "ijssel-vecht", None, 6
            ),
        )
    big, groningen = world.departments["HIC-ZWOLLE"], world.departments["HIC-GRN"]

    async def stop(department: uuid.UUID, active: bool = True, later: int = 0) -> Level:
        """An admission stop at an acute ward: threatened at once by the default ruleset.

        `later` minutes on: a lifted stop must be newer than the stop it lifts."""
        at = now + timedelta(minutes=later)
        async with sessions() as session, session.begin():
            data: dict[str, object] = {"active": active}
            if active:
                data["since"] = now.date().isoformat()
            signal = Signal(
                id=uuid.uuid4(),
                department_id=department,
                kind=SignalKind.ADMISSION_STOP,
                observed_at=at,
                received_at=at,
                data=data,
                source=SignalSource.API,
                submitted_by_id=(await session.get(Department, department)).provider_id,  # type: ignore[union-attr]
                body_hash="test",
            )
            session.add(signal)
            await session.flush()
            judged = await judge(
                session,
                ruleset,
                department,
                at,
                trigger=SignalKind.ADMISSION_STOP,
                signal_id=signal.id,
            )
            assert judged is not None
            return judged.level

    # The big ward carries 24 of the region's 30 HIC beds: no equivalent alternative.
    assert await stop(big) is Level.CRITICAL
    # Groningen is another region: its only HIC is also the last of its kind there.
    assert await stop(groningen) is Level.CRITICAL
    async with sessions() as session:
        cells = {
            (
                c.region_id is not None,
                c.departments_active,
                c.capacity_total,
                c.capacity_at_risk,
                c.no_alternative,
            )
            for c in (await session.execute(select(RegionalCoverage))).scalars()
        }
        gaps = (
            (await session.execute(select(Alert).where(Alert.kind == AlertKind.COVERAGE)))
            .scalars()
            .all()
        )
    assert (True, 2, 30, 24, 0) in cells, "IJssel-Vecht: two HICs, the big one at risk, no gap yet"
    assert (True, 1, 20, 20, 1) in cells, "Groningen: its one HIC at risk, a gap"
    assert len(gaps) == 1

    # Now the small one stops admitting too: IJssel-Vecht has no unthreatened HIC left.
    assert await stop(small.id) is Level.THREATENED  # 6 of 30 beds: alternatives on paper
    async with sessions() as session:
        gaps = (
            (await session.execute(select(Alert).where(Alert.kind == AlertKind.COVERAGE)))
            .scalars()
            .all()
        )
    assert len(gaps) == 2 and all(g.status is AlertStatus.OPEN for g in gaps)

    async def ijssel_vecht_gap() -> Alert:
        async with sessions() as session:
            return (
                await session.execute(
                    select(Alert).where(
                        Alert.kind == AlertKind.COVERAGE, Alert.region_id == small.region_id
                    )
                )
            ).scalar_one()

    # The small one admits again: no gap any more, but the alert waits for the hysteresis
    # (two reports by default), so a ward that hovers does not open and close alerts.
    assert await stop(small.id, active=False, later=1) is Level.OK
    assert (await ijssel_vecht_gap()).status is AlertStatus.OPEN
    assert await stop(small.id, active=False, later=2) is Level.OK
    closed = await ijssel_vecht_gap()
    assert closed.status is AlertStatus.RESOLVED and closed.resolution == "recovered"


async def test_the_coverage_api_is_scoped_by_role(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        world = await build_world(session)
        regions = dict((await session.execute(select(Region.code, Region.id))).all())
        session.add_all(
            [
                RegionalCoverage(
                    region_id=regions["ijssel-vecht"],
                    care_type_code="acute.hic",
                    departments_active=1,
                    threatened=1,
                    critical=0,
                    no_alternative=1,
                    capacity_total=24,
                    capacity_at_risk=24,
                ),
                RegionalCoverage(
                    region_id=regions["groningen"],
                    care_type_code="acute.hic",
                    departments_active=1,
                    threatened=0,
                    critical=0,
                    no_alternative=0,
                    capacity_total=20,
                    capacity_at_risk=0,
                ),
                RegionalCoverage(
                    region_id=None,
                    care_type_code="secure.kib",
                    departments_active=1,
                    threatened=0,
                    critical=0,
                    no_alternative=0,
                    capacity_total=10,
                    capacity_at_risk=0,
                ),
            ]
        )
    app = create_app(settings(), database_url, routers=rules_api.routers())

    async def seen(who: str, **params: str) -> list[tuple[str | None, str, str]]:
        response = await client.get("/v1/coverage", params=params, headers=world.auth(who))
        assert response.status_code == 200, response.text
        return [(c["region"], c["care_type"], c["level"]) for c in response.json()]

    async for client in open_client(app):
        everything = [
            (None, "secure.kib", "ok"),
            ("groningen", "acute.hic", "ok"),
            ("ijssel-vecht", "acute.hic", "critical"),
        ]
        assert await seen("national_table") == everything
        assert await seen("table_ijssel_vecht") == [("ijssel-vecht", "acute.hic", "critical")]
        assert await seen("insurer_menzis") == [("groningen", "acute.hic", "ok")]
        assert await seen("provider_b") == [
            (None, "secure.kib", "ok"),
            ("groningen", "acute.hic", "ok"),
        ]
        assert await seen("national_table", gaps_only="true") == [everything[2]]
        assert await seen("national_table", cluster="secure") == [everything[0]]
        refused = await client.get(
            "/v1/coverage", params={"region": "Not A Region!"}, headers=world.auth("national_table")
        )
        assert refused.status_code == 422
    async with sessions() as session:
        reads = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "coverage.read")
        )
    assert reads == 6

"""Coverage per region and care type, and `no_alternative`, over several departments."""

from __future__ import annotations

from services.core.domain import Cluster, Level
from services.rules.coverage import Cell, Member, no_alternative, raised, with_member

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

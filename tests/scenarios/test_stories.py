"""Stories of departments over months, told as signals, checked month by month.

Each story (`stories/*.yaml`) posts its signals through the signal API, on the dates of the
story; the rules worker judges them through the bus with the story's date as its clock; then
the department's level, reasons, alert and its region's coverage are what a policy officer at
the regional table would expect. The world is the ingest tests' (two providers, IJssel-Vecht and
Groningen), plus the departments a story adds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.admin.departments import DepartmentSpec, add_department
from services.core.db.models import Alert, Assessment, Region, RegionalCoverage
from services.core.domain import AlertKind
from services.core.http.app import create_app
from services.rules import worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import (
    PROVIDER_A,
    PROVIDER_B,
    World,
    build_world,
    open_client,
    settings,
)

STORIES = {
    path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in sorted((Path(__file__).parent / "stories").glob("*.yaml"))
}


class StoryClock:
    """The worker's clock: the date of the month being told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("name", sorted(STORIES))
async def test_story(
    name: str, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    story: dict[str, Any] = STORIES[name]
    async with sessions() as session, session.begin():
        world: World = await build_world(session)
        for spec in story.get("add", []):
            department = await add_department(
                session,
                DepartmentSpec(
                    spec["provider"],
                    spec["code"],
                    spec["code"],
                    spec["care_type"],
                    spec["region"],
                    None,
                    spec["capacity"],
                ),
            )
            world.departments[spec["code"]] = department.id
    clock = StoryClock()
    app = create_app(
        settings(),
        database_url,
        routers=ingest.routers(),
        subscriptions=[worker.subscription(load_ruleset(), clock)],
    )
    judged = 0
    async for client in open_client(app):
        for month in story["months"]:
            at = datetime.combine(date.fromisoformat(str(month["at"])), time(9), tzinfo=UTC)
            clock.now = at
            for signal in month["signals"]:
                key = _sender(signal["department"], story)
                response = await client.post(
                    "/v1/signals",
                    json={**signal, "observed_at": at.isoformat()},
                    headers=world.auth(key),
                )
                assert response.status_code == 202, response.text
                judged += 1
                await _judged(sessions, judged)
            await _check(sessions, world, month, name)


def _sender(code: str, story: dict[str, Any]) -> str:
    """The key of the provider of a department: the world's, or the one a story adds."""
    providers = {"HIC-GRN": PROVIDER_B} | {s["code"]: s["provider"] for s in story.get("add", [])}
    return "provider_b" if providers.get(code, PROVIDER_A) == PROVIDER_B else "provider_a"


async def _judged(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    for _ in range(400):
        async with sessions() as session:
            if (await session.scalar(select(func.count()).select_from(Assessment)) or 0) >= count:
                return
        await asyncio.sleep(0.025)
    raise AssertionError(f"the worker did not judge signal {count} in time")


async def _check(
    sessions: async_sessionmaker[AsyncSession], world: World, month: dict[str, Any], story: str
) -> None:
    where = f"{story}, {month['at']}"
    async with sessions() as session:
        for code, expected in month["expect"].items():
            if code == "coverage":
                for cell, state in expected.items():
                    region, care_type = cell.split("/")
                    gap = await session.scalar(
                        select(RegionalCoverage.no_alternative)
                        .join(Region, Region.id == RegionalCoverage.region_id)
                        .where(Region.code == region, RegionalCoverage.care_type_code == care_type)
                    )
                    open_gap = await session.scalar(
                        select(func.count())
                        .select_from(Alert)
                        .join(Region, Region.id == Alert.region_id)
                        .where(
                            Alert.kind == AlertKind.COVERAGE,
                            Region.code == region,
                            Alert.care_type_code == care_type,
                            Alert.status != "resolved",
                        )
                    )
                    # gap: no unthreatened department left, its alert open; recovering: the gap
                    # closed, its alert waits out the hysteresis; covered: neither.
                    wanted = {
                        "gap": (True, True),
                        "recovering": (False, True),
                        "covered": (False, False),
                    }[state]
                    assert (bool(gap), bool(open_gap)) == wanted, (where, cell)
                continue
            department = world.departments[code]
            latest = (
                await session.execute(
                    select(Assessment)
                    .where(Assessment.department_id == department)
                    .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            if "level" in expected:
                assert latest.level.value == expected["level"], (where, code, latest.reasons)
            fired = {r["rule_id"] for r in latest.reasons}
            for rule in expected.get("rules", []):
                assert rule in fired, (where, code, rule, sorted(fired))
            if "no_alternative" in expected:
                assert latest.no_alternative is expected["no_alternative"], (where, code)
            alert = (
                await session.execute(
                    select(Alert.status)
                    .where(Alert.department_id == department)
                    .order_by(Alert.opened_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            status = "none" if alert is None else alert.value
            if status == "acknowledged":
                status = "open"
            assert status == expected.get("alert", status), (where, code, status)

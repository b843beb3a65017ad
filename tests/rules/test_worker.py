"""The rules worker end to end: signals posted to the API are judged through the bus, stored as
assessments with their reasons, and announced as `assessment.changed` when the judgement changes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import ingest
from services.core.db.models import (
    Alert,
    AlertEvent,
    Assessment,
    AuditEntry,
    OutboxEvent,
    RegionalCoverage,
)
from services.core.events.payloads import AssessmentChanged
from services.core.http.app import create_app
from services.rules import api as rules_api
from services.rules import worker
from services.rules.ruleset import load_ruleset
from tests.ingest.conftest import World, build_world, open_client, settings


async def _assessments(sessions: async_sessionmaker[AsyncSession], count: int) -> list[Assessment]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with sessions() as session:
            found = list(
                (await session.execute(select(Assessment).order_by(Assessment.id))).scalars()
            )
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _world_and_app(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> tuple[World, FastAPI]:
    """The ingest tests' world, and an app that takes signals and runs the rules worker."""
    async with sessions() as session, session.begin():
        world = await build_world(session)
    app = create_app(
        settings(),
        database_url,
        routers=[*ingest.routers(), *rules_api.routers()],
        subscriptions=[worker.subscription(load_ruleset())],
    )
    return world, app


def _staffing(days_ago: int, **data: Any) -> dict[str, Any]:
    return {
        "department": "FACT-ZWOLLE",
        "kind": "staffing",
        "observed_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "data": {"fte_budgeted": 20.0, **data},
    }


async def test_signals_are_judged_stored_and_announced_when_the_judgement_changes(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, app = await _world_and_app(database_url, sessions)
    async for client in open_client(app):
        post = await _post(client, world, _staffing(3, vacancies_fte=4.0))  # 20 % vacancies
        assert post.status_code == 202, post.text
        first = await _assessments(sessions, 1)
        await _post(client, world, _staffing(2, vacancies_fte=4.0))
        await _assessments(sessions, 2)
        await _post(client, world, _staffing(1, vacancies_fte=4.5))
        stored = await _assessments(sessions, 3)
        for hours in (12, 6):  # recovered: two reports in a row judged ok
            body = _staffing(0, vacancies_fte=0.0)
            body["observed_at"] = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
            await _post(client, world, body)
        stored = [*stored, *(await _assessments(sessions, 5))[3:]]

    # The only FACT team of its region: threatened, with no alternative, is critical.
    assert [a.level.value for a in stored] == ["watch", "watch", "critical", "ok", "ok"]
    assert [a.no_alternative for a in stored] == [False, False, True, False, False]
    assert stored[2].reasons[0]["rule_id"] == "coverage.no_alternative"
    assert first[0].reasons[0]["rule_id"] == "staffing.vacancies_high"
    dutch, english = first[0].reasons[0]["explanation_nl"], first[0].reasons[0]["explanation"]
    assert dutch and english and dutch != english
    assert stored[2].rule_memory["staffing.vacancies_sustained"]["consecutive"] == 3
    assert all(a.department_id == world.departments["FACT-ZWOLLE"] for a in stored)

    async with sessions() as session:
        events = list(
            (
                await session.execute(
                    select(OutboxEvent.event)
                    .where(OutboxEvent.type == "nl.vroegsignaal.assessment.changed")
                    .order_by(OutboxEvent.id)
                )
            ).scalars()
        )
    levels = [(e["data"]["previous_level"], e["data"]["level"]) for e in events]
    # Unchanged judgements are not announced.
    assert levels == [(None, "watch"), ("watch", "critical"), ("critical", "ok")]
    payload = AssessmentChanged.model_validate(events[1]["data"])
    assert payload.department == "FACT-ZWOLLE" and payload.region == "ijssel-vecht"
    assert {r.rule_id for r in payload.reasons} >= {"staffing.vacancies_sustained"}
    assert payload.no_alternative
    assert events[-1]["source"] == "/vroegsignaal/rules"

    department = str(world.departments["FACT-ZWOLLE"])
    assert await _published(sessions, department) == [
        "alert.opened",
        "alert.updated",
        "alert.resolved",  # only after two reports in a row judged ok
    ]
    # The region had no unthreatened FACT team left: a coverage gap, with an alert of its own,
    # closed as soon as the team was judged ok again.
    assert await _published(sessions, "ijssel-vecht/outreach.fact") == [
        "coverage.changed",
        "coverage.changed",
        "alert.opened",
        "coverage.changed",
        "alert.resolved",
    ]
    async with sessions() as session:
        alerts = {a.kind.value: a for a in (await session.execute(select(Alert))).scalars().all()}
        cell = (await session.execute(select(RegionalCoverage))).scalar_one()
    assert (alerts["department"].status.value, alerts["department"].level.value) == (
        "resolved",
        "critical",
    )
    assert alerts["department"].resolution == "recovered"
    assert alerts["coverage"].status.value == "resolved"
    assert (cell.departments_active, cell.critical, cell.no_alternative) == (1, 0, 0)


async def _published(sessions: async_sessionmaker[AsyncSession], key: str) -> list[str]:
    """The types of the alerts-topic events under one partition key, in log order."""
    async with sessions() as session:
        types = (
            await session.execute(
                select(OutboxEvent.type)
                .where(
                    OutboxEvent.topic == "vroegsignaal.alerts.v1", OutboxEvent.partition_key == key
                )
                .order_by(OutboxEvent.id)
            )
        ).scalars()
        return [t.removeprefix("nl.vroegsignaal.") for t in types]


async def _post(client: httpx.AsyncClient, world: World, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/signals", json=body, headers=world.auth("provider_a"))


async def test_a_figure_hovering_around_a_threshold_does_not_flap_the_alert(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, app = await _world_and_app(database_url, sessions)
    vacancies = [2.2, 1.0, 2.2, 1.0, 0.8]  # 11 %, 5 %, 11 %, 5 %, 4 % of 20 fte
    async for client in open_client(app):
        for n, fte in enumerate(vacancies):
            body = _staffing(0, vacancies_fte=fte)
            body["observed_at"] = (datetime.now(UTC) - timedelta(hours=10 - n)).isoformat()
            assert (await _post(client, world, body)).status_code == 202
            await _assessments(sessions, n + 1)

    department = str(world.departments["FACT-ZWOLLE"])
    published = await _published(sessions, department)
    assert published == ["alert.opened", "alert.resolved"], "one alert, kept open through the dip"
    async with sessions() as session:
        timeline = [
            t.value
            for t in (
                await session.execute(select(AlertEvent.type).order_by(AlertEvent.id))
            ).scalars()
        ]
    assert timeline == ["opened", "resolved"]


async def test_the_assessment_api_is_scoped_audited_and_pages_back(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, app = await _world_and_app(database_url, sessions)
    fact = world.departments["FACT-ZWOLLE"]
    async for client in open_client(app):
        before = await client.get(
            f"/v1/departments/{fact}/assessment", headers=world.auth("provider_a")
        )
        assert before.status_code == 404 and "not been judged" in before.json()["detail"]
        for n, fte in enumerate((3.0, 3.5, 4.0)):  # 15 % or more for three reports in a row
            body = _staffing(0, vacancies_fte=fte)
            body["observed_at"] = (datetime.now(UTC) - timedelta(hours=5 - n)).isoformat()
            await _post(client, world, body)
        stored = await _assessments(sessions, 3)

        current = await client.get(
            f"/v1/departments/{fact}/assessment", headers=world.auth("insurer_zk")
        )
        assert current.status_code == 200, current.text
        document = current.json()
        assert document["level"] == "critical", "threatened, and the region's only FACT team"
        assert document["reasons"][0]["rule_id"] == "coverage.no_alternative"
        reason = document["reasons"][1]
        assert reason["rule_id"] and reason["explanation_nl"] and reason["signal_ids"]

        page = await client.get(
            f"/v1/departments/{fact}/assessments?limit=2", headers=world.auth("provider_a")
        )
        newest_first = [a.level.value for a in reversed(stored)]
        assert [a["level"] for a in page.json()["items"]] == newest_first[:2]
        older = await client.get(
            f"/v1/departments/{fact}/assessments",
            params={"limit": 2, "before": page.json()["next_before"]},
            headers=world.auth("provider_a"),
        )
        assert [a["level"] for a in older.json()["items"]] == newest_first[2:]
        assert older.json()["next_before"] is None

        other = await client.get(
            f"/v1/departments/{fact}/assessment", headers=world.auth("provider_b")
        )
        assert other.status_code == 403
        elsewhere = await client.get(
            f"/v1/departments/{fact}/assessment", headers=world.auth("insurer_menzis")
        )
        assert elsewhere.status_code == 403
        missing = await client.get(
            f"/v1/departments/{uuid.uuid4()}/assessment", headers=world.auth("provider_a")
        )
        assert missing.status_code == 404

    async with sessions() as session:
        audited = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.object_id).where(
                    AuditEntry.action.like("assessment.%")
                )
            )
        ).all()
    assert ("assessment.read", str(fact)) in audited
    assert ("assessment.history.read", str(fact)) in audited

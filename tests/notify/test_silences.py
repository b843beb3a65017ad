"""Silences: a department's alerts are recorded but not announced; critical still climbs; the
resolution and the end of the silence are always told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.domain import EscalationStep, Level
from services.notify.timers import sweep_timers
from tests.ingest.conftest import open_client
from tests.notify.world import (
    AMS,
    NATIONAL_MEMBER,
    REGIONAL_MEMBER,
    department_alert,
    emails,
    eventually,
    notify_world,
    post,
    staffing,
    timeline,
)


async def test_a_silenced_department_is_recorded_quietly_until_it_turns_critical(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await notify_world(database_url, sessions)
    async for client in open_client(w.app):
        url = f"/v1/departments/{w.fact}/silences"
        until = (datetime.now(UTC) + timedelta(days=60)).isoformat()
        reason = "Aangekondigde fusie met FACT Deventer per 1 februari."
        # Who may silence: the coordinating insurer and the tables, not the provider itself.
        refused = await client.post(
            url, json={"ends_at": until, "reason": reason}, headers=w.auth("provider_a")
        )
        assert refused.status_code == 403
        bad = await client.post(
            url,
            json={"ends_at": "2020-01-01T00:00:00Z", "reason": reason},
            headers=w.auth("insurer_zk"),
        )
        assert bad.status_code == 422 and "after starts_at" in bad.text
        made = await client.post(
            url, json={"ends_at": until, "reason": reason}, headers=w.auth("table_ijssel_vecht")
        )
        assert made.status_code == 201, made.text
        silence = made.json()
        assert silence["active"] is True

        # Threatened while silenced: recorded, kept at the provider step, nobody e-mailed.
        for days_ago in (4, 3, 2):
            await post(client, w, staffing(days_ago, vacancies_fte=3.2))

        async def threatened() -> object:
            alert = await department_alert(sessions, w.fact)
            return alert if alert is not None and alert.level is Level.THREATENED else None

        await eventually(threatened, "a threatened alert")
        await post(client, w, staffing(1.5, vacancies_fte=3.2))  # one more, to let it settle
        alert = await department_alert(sessions, w.fact)
        assert alert is not None and alert.escalation is EscalationStep.PROVIDER
        listed = (await client.get(f"/v1/alerts/{alert.id}", headers=w.auth("insurer_zk"))).json()
        assert listed["silenced"] is True
        assert await emails(sessions) == []

        # Critical: it climbs to the national table and is announced, silence or not.
        await post(client, w, staffing(1, vacancies_fte=3.2, psychiatrist_fte=0.0))

        async def national() -> list[tuple[str, str]] | None:
            found = await emails(sessions)
            return found if len(found) >= 2 else None

        assert sorted(await eventually(national, "the critical escalation")) == [
            (REGIONAL_MEMBER, "alert.escalated"),
            (NATIONAL_MEMBER, "alert.escalated"),
        ]

        # Lifted early: the next sweep tells everyone at its step again, once.
        lifted = await client.delete(
            f"/v1/silences/{silence['id']}", headers=w.auth("table_ijssel_vecht")
        )
        assert lifted.status_code == 200 and lifted.json()["active"] is False
        twice = await client.delete(
            f"/v1/silences/{silence['id']}", headers=w.auth("table_ijssel_vecht")
        )
        assert twice.status_code == 409
        now = datetime.now(UTC)
        assert await sweep_timers(sessions, w.policy, AMS, now) == 1
        assert await sweep_timers(sessions, w.policy, AMS, now) == 0
        events = await timeline(sessions, alert.id)
        assert events[-2:] == ["unsilenced", "reannounced"]

        async def reminders() -> list[tuple[str, str]] | None:
            found = [m for m in await emails(sessions) if m[1] == "alert.reminded"]
            return found if len(found) >= 2 else None

        assert sorted(await eventually(reminders, "the re-announcement")) == [
            (REGIONAL_MEMBER, "alert.reminded"),
            (NATIONAL_MEMBER, "alert.reminded"),
        ]
        mine = await client.get("/v1/silences", headers=w.auth("provider_b"))
        assert mine.status_code == 200 and mine.json() == []

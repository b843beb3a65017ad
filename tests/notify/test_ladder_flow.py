"""The ladder end to end: signals posted to the API, judged by the rules engine, placed on the
ladder by the notifier through the bus; the alert API scoped by role, with every action audited
and announced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import Alert, AuditEntry, OutboxEvent
from services.core.domain import AlertStatus, EscalationStep, Level
from services.notify.calendar import add_working_days
from services.notify.timers import sweep_timers
from tests.ingest.conftest import open_client
from tests.notify.world import (
    AMS,
    INSURER_MEMBER,
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

ESCALATED = "alert.escalated"  # deliveries carry the short type, as webhook bodies do
RESOLVED = "alert.resolved"


async def test_an_alert_climbs_the_ladder_as_its_level_rises_and_the_tables_act_on_it(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await notify_world(database_url, sessions)

    async def alert_where(check: Callable[[Alert], bool], what: str) -> Alert:
        async def probe() -> Alert | None:
            alert = await department_alert(sessions, w.fact)
            return alert if alert is not None and check(alert) else None

        return await eventually(probe, what)

    async for client in open_client(w.app):
        # 12 % vacancies: watch. The provider and the coordinating insurer hear of it; no e-mail
        # (the default policy e-mails the tables only), and the provider step's timer runs.
        await post(client, w, staffing(4, vacancies_fte=2.4))
        alert = await alert_where(lambda a: a.step_due_at is not None, "the timer")
        assert alert.level is Level.WATCH and alert.escalation is EscalationStep.PROVIDER
        assert alert.step_due_at == add_working_days(alert.opened_at, 5, AMS)
        assert await emails(sessions) == []

        # 16 % for three reports: threatened. Straight to the regional table, which is e-mailed.
        for days_ago in (3, 2, 1):
            await post(client, w, staffing(days_ago, vacancies_fte=3.2))
        alert = await alert_where(
            lambda a: a.escalation is EscalationStep.REGIONAL_TABLE, "the regional table"
        )
        assert alert.level is Level.THREATENED
        assert await timeline(sessions, alert.id) == ["opened", "updated", "escalated"]
        assert await eventually(lambda: emails(sessions), "e-mail") == [
            (REGIONAL_MEMBER, ESCALATED)
        ]

        # No psychiatrist left: critical. Up to the national table; both tables are e-mailed.
        await post(client, w, staffing(0.5, vacancies_fte=3.2, psychiatrist_fte=0.0))
        alert = await alert_where(
            lambda a: a.escalation is EscalationStep.NATIONAL_TABLE, "the national table"
        )
        assert alert.level is Level.CRITICAL and alert.step_due_at is None  # top: no timer

        async def three_mails() -> list[tuple[str, str]] | None:
            found = await emails(sessions)
            return found if len(found) >= 3 else None

        mails = await eventually(three_mails, "e-mails of the second escalation")
        assert sorted(mails[1:]) == [(REGIONAL_MEMBER, ESCALATED), (NATIONAL_MEMBER, ESCALATED)]
        alert_url = f"/v1/alerts/{alert.id}"

        # Who may see it: the provider, its insurer, the region's table, the national table.
        for who, status in (
            ("provider_a", 200),
            ("insurer_zk", 200),
            ("table_ijssel_vecht", 200),
            ("national_table", 200),
            ("governance", 200),
            ("provider_b", 403),
            ("insurer_menzis", 403),
        ):
            response = await client.get(alert_url, headers=w.auth(who))
            assert response.status_code == status, (who, response.text)
        listed = await client.get(
            "/v1/alerts", params={"level": "critical"}, headers=w.auth("provider_b")
        )
        assert listed.status_code == 200 and listed.json()["items"] == []
        mine = await client.get("/v1/alerts", headers=w.auth("table_ijssel_vecht"))
        assert [a["id"] for a in mine.json()["items"]] == [str(alert.id)]
        detail = (await client.get(alert_url, headers=w.auth("national_table"))).json()
        assert detail["may"] == ["acknowledge", "comment", "resolve"]
        assert detail["reasons"][0]["rule_id"] == "staffing.no_psychiatrist"
        assert "psychiater" in detail["reasons"][0]["explanation_nl"]
        assert {s["kind"] for s in detail["signals"]} == {"staffing"}
        missing = await client.get(
            "/v1/alerts/00000000-0000-4000-8000-000000000000", headers=w.auth("national_table")
        )
        assert missing.status_code == 404

        # At the national step only the national table may acknowledge it.
        refused = await client.post(
            f"{alert_url}/acknowledge", json={}, headers=w.auth("table_ijssel_vecht")
        )
        assert refused.status_code == 403 and "national_table" in refused.json()["detail"]
        taken = await client.post(
            f"{alert_url}/acknowledge",
            json={"note": "Op de agenda van de landelijke tafel van donderdag."},
            headers=w.auth("national_table"),
        )
        assert taken.status_code == 200, taken.text
        assert taken.json()["status"] == "acknowledged"
        again = await client.post(
            f"{alert_url}/acknowledge", json={}, headers=w.auth("national_table")
        )
        assert again.status_code == 409

        # Comments: the parties it concerns, not the governance board (read-only).
        ro = await client.post(
            f"{alert_url}/comment", json={"note": "Gezien."}, headers=w.auth("governance")
        )
        assert ro.status_code == 403
        bsn = await client.post(
            f"{alert_url}/comment", json={"note": "Cliënt 111222333"}, headers=w.auth("insurer_zk")
        )
        assert bsn.status_code == 422 and "111222333" not in bsn.text
        said = await client.post(
            f"{alert_url}/comment",
            json={"note": "Wij zoeken met de aanbieder naar tijdelijke inzet."},
            headers=w.auth("insurer_zk"),
        )
        assert said.status_code == 200
        assert [e["type"] for e in said.json()["timeline"]][-2:] == ["acknowledged", "commented"]

        # Resolving: insurer and tables, not the provider; a resolved alert takes no more.
        no = await client.post(
            f"{alert_url}/resolve", json={"note": "Opgelost."}, headers=w.auth("provider_a")
        )
        assert no.status_code == 403
        done = await client.post(
            f"{alert_url}/resolve",
            json={"note": "Twee psychiaters gedetacheerd vanuit Deventer."},
            headers=w.auth("insurer_zk"),
        )
        assert done.status_code == 200 and done.json()["status"] == "resolved"
        late = await client.post(
            f"{alert_url}/comment", json={"note": "Nog iets."}, headers=w.auth("insurer_zk")
        )
        assert late.status_code == 409

        # Everyone who was told hears of the resolution: the two tables by e-mail too.
        async def resolved_mails() -> list[tuple[str, str]] | None:
            found = [m for m in await emails(sessions) if m[1] == RESOLVED]
            return found if len(found) >= 2 else None

        assert sorted(await eventually(resolved_mails, "resolution e-mails")) == [
            (REGIONAL_MEMBER, RESOLVED),
            (NATIONAL_MEMBER, RESOLVED),
        ]
        assert INSURER_MEMBER not in {m[0] for m in await emails(sessions)}

    async with sessions() as session:
        types = set(
            (
                await session.execute(
                    select(OutboxEvent.type).where(
                        OutboxEvent.event["subject"].astext == str(alert.id)
                    )
                )
            ).scalars()
        )
        assert {
            "nl.vroegsignaal.alert.opened",
            "nl.vroegsignaal.alert.updated",
            "nl.vroegsignaal.alert.escalated",
            "nl.vroegsignaal.alert.acknowledged",
            "nl.vroegsignaal.alert.commented",
            "nl.vroegsignaal.alert.resolved",
        } <= types
        audited = dict(
            (
                await session.execute(
                    select(AuditEntry.action, func.count())
                    .where(AuditEntry.object_type == "alert")
                    .group_by(AuditEntry.action)
                )
            ).all()
        )
    assert audited["alert.read"] == 6 and audited["alert.list"] == 2
    assert audited["alert.acknowledge"] == 1 and audited["alert.resolve"] == 1
    assert audited["alert.comment"] == 1


async def test_timers_move_an_unacknowledged_alert_up_and_remind_an_acknowledged_one(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await notify_world(database_url, sessions)

    async def sweep_once(now: datetime) -> int:
        """Sweep until something moves (the notifier may hold the alert's row for a moment:
        the sweep skips locked rows and the next one takes them), then once more: nothing."""
        moved = await eventually(
            lambda: sweep_timers(sessions, w.policy, AMS, now), "a sweep that moves", within=10
        )
        return moved + await sweep_timers(sessions, w.policy, AMS, now)

    async for client in open_client(w.app):
        await post(client, w, staffing(2, vacancies_fte=2.4))  # watch, at the provider step

        async def placed() -> Alert | None:
            alert = await department_alert(sessions, w.fact)
            return alert if alert is not None and alert.step_due_at is not None else None

        alert = await eventually(placed, "the alert on the ladder")
        assert alert.step_due_at is not None
        due = alert.step_due_at

        # A minute early nothing moves; at the deadline it goes to the regional table, once,
        # however many replicas sweep at the same moment.
        assert await sweep_timers(sessions, w.policy, AMS, due - timedelta(minutes=1)) == 0
        assert await sweep_once(due) == 1
        moved = await department_alert(sessions, w.fact)
        assert moved is not None and moved.escalation is EscalationStep.REGIONAL_TABLE
        assert moved.step_due_at == add_working_days(due, 3, AMS)

        async def escalation_mail() -> list[tuple[str, str]] | None:
            return await emails(sessions) or None

        assert await eventually(escalation_mail, "the timer's e-mail") == [
            (REGIONAL_MEMBER, ESCALATED)
        ]

        # The regional table takes it on: the timer stops. Twenty working days later it is
        # announced again; twenty more and it goes to the national table.
        taken = await client.post(
            f"/v1/alerts/{alert.id}/acknowledge", json={}, headers=w.auth("table_ijssel_vecht")
        )
        assert taken.status_code == 200, taken.text
        acknowledged = await department_alert(sessions, w.fact)
        assert acknowledged is not None and acknowledged.acknowledged_at is not None
        assert acknowledged.step_due_at is None
        remind_at = add_working_days(acknowledged.acknowledged_at, 20, AMS)
        assert await sweep_timers(sessions, w.policy, AMS, remind_at - timedelta(hours=1)) == 0
        assert await sweep_once(remind_at) == 1
        reminded = await department_alert(sessions, w.fact)
        assert reminded is not None and reminded.status is AlertStatus.ACKNOWLEDGED
        escalate_at = add_working_days(remind_at, 20, AMS)
        assert await sweep_once(escalate_at) == 1
        top = await department_alert(sessions, w.fact)
        assert top is not None and top.escalation is EscalationStep.NATIONAL_TABLE
        assert top.status is AlertStatus.OPEN  # the national table has to take it on anew
        assert (await timeline(sessions, alert.id))[-4:] == [
            "escalated",
            "acknowledged",
            "reannounced",
            "escalated",
        ]

"""From a signal to a table's webhook endpoint and mailbox: posted to the API, judged by the
rules engine, put on the ladder, signed and delivered by the delivery worker to real HTTP
receivers, and e-mailed through a real SMTP server — each exactly once, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.departments import DepartmentSpec, add_department
from services.core.domain import EscalationStep
from tests.ingest.conftest import PROVIDER_B, open_client
from tests.notify.world import (
    NATIONAL_MEMBER,
    REGIONAL_MEMBER,
    department_alert,
    eventually,
    notify_world,
    post,
    staffing,
)
from tests.support.receivers import SmtpSink, WebhookReceiver


async def test_an_alert_reaches_the_tables_webhooks_and_mailboxes_exactly_once_in_order(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with (
        WebhookReceiver() as table_hook,
        WebhookReceiver() as insurer_hook,
        SmtpSink() as smtp,
    ):
        w = await notify_world(
            database_url,
            sessions,
            deliver=True,
            smtp_url=smtp.url,
            webhook_allow_private=True,  # the receivers listen on 127.0.0.1
            secret_key=Fernet.generate_key().decode(),
        )
        # A second, bigger HIC in the region: HIC Zwolle has alternatives, so an admission stop
        # there is threatened (the regional table's step), not critical.
        async with sessions() as session, session.begin():
            await add_department(
                session,
                DepartmentSpec(
                    PROVIDER_B,
                    "HIC-DEVENTER",
                    "HIC Deventer",
                    "acute.hic",
                    "ijssel-vecht",
                    None,
                    40,
                ),
            )
        hic = w.world.departments["HIC-ZWOLLE"]
        async for client in open_client(w.app):
            for who, hook, types in (
                (
                    "table_ijssel_vecht",
                    table_hook,
                    ["alert.opened", "alert.escalated", "alert.resolved"],
                ),
                (
                    "insurer_zk",
                    insurer_hook,
                    ["alert.opened", "alert.updated", "alert.escalated", "alert.resolved"],
                ),
            ):
                made = await client.post(
                    "/v1/subscriptions",
                    json={"url": hook.url, "event_types": types, "description": "Meldingen"},
                    headers=w.auth(who),
                )
                assert made.status_code == 201, made.text
                hook.secret = made.json()["secret"]

            # The HIC stops admitting: threatened, so the regional table hears of it at once.
            since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
            await post(
                client,
                w,
                {
                    "department": "HIC-ZWOLLE",
                    "kind": "admission_stop",
                    "observed_at": datetime.now(UTC).isoformat(),
                    "data": {"active": True, "since": since, "reason": "personeelstekort"},
                },
            )
            first = await table_hook.wait_for(2, within=30)
            assert [r.payload["type"] for r in first] == ["alert.opened", "alert.escalated"]
            escalated = first[1].payload["data"]
            assert escalated["to_step"] == "regional_table" and escalated["reason"] == "level"
            assert escalated["alert"]["department"] == "HIC-ZWOLLE"
            mails = await smtp.wait_for(1, within=30)
            assert mails[0]["To"] == REGIONAL_MEMBER
            assert mails[0]["Subject"].startswith("[Vroegsignaal] Melding opgeschaald")
            body = mails[0].get_body(("plain",))
            assert body is not None
            text = body.get_content()
            assert "regionale tafel" in text and "Opnamestop" in text
            alert = await department_alert(sessions, hic)
            assert alert is not None and alert.escalation is EscalationStep.REGIONAL_TABLE
            assert f"https://vroegsignaal.test/alerts/{alert.id}" in text

            # No psychiatrist left: critical, up to the national table.
            await post(client, w, staffing(0.1, "HIC-ZWOLLE", psychiatrist_fte=0.0))
            third = await table_hook.wait_for(3, within=30)
            assert third[2].payload["data"]["to_step"] == "national_table"
            await smtp.wait_for(3, within=30)

            # The table closes it: both endpoints and the tables' people hear of it.
            done = await client.post(
                f"/v1/alerts/{alert.id}/resolve",
                json={"note": "Opnamestop opgeheven; twee psychiaters gedetacheerd."},
                headers=w.auth("table_ijssel_vecht"),
            )
            assert done.status_code == 200, done.text
            await table_hook.wait_for(4, within=30)

            async def insurer_heard_it_all() -> list[str] | None:
                types = insurer_hook.types
                return types if "alert.resolved" in types else None

            insurer_types = await eventually(insurer_heard_it_all, "the insurer's resolution")
            mails = await smtp.wait_for(5, within=30)

        assert table_hook.types == [
            "alert.opened",
            "alert.escalated",
            "alert.escalated",
            "alert.resolved",
        ]
        assert insurer_types[0] == "alert.opened" and insurer_types[-1] == "alert.resolved"
        assert insurer_types.count("alert.escalated") == 2
        for hook in (table_hook, insurer_hook):
            assert len(set(hook.ids)) == len(hook.ids), "a webhook arrived twice"
            assert hook.refused_signatures == []
        received = sorted((m["To"], m["Subject"].split(":")[0]) for m in mails)
        assert received == sorted(
            [
                (REGIONAL_MEMBER, "[Vroegsignaal] Melding opgeschaald"),
                (REGIONAL_MEMBER, "[Vroegsignaal] Melding opgeschaald"),
                (NATIONAL_MEMBER, "[Vroegsignaal] Melding opgeschaald"),
                (REGIONAL_MEMBER, "[Vroegsignaal] Melding afgesloten"),
                (NATIONAL_MEMBER, "[Vroegsignaal] Melding afgesloten"),
            ]
        )

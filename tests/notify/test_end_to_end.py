"""From a signal to a table's webhook endpoint and mailbox: posted to the API, judged by the
rules engine, put on the ladder, signed and delivered by the delivery worker to real HTTP
receivers, and e-mailed through a real SMTP server — each exactly once."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.domain import EscalationStep
from tests.ingest.conftest import open_client
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


async def test_an_alert_reaches_the_tables_webhooks_and_mailboxes_exactly_once(
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
        async for client in open_client(w.app):
            for who, hook, types in (
                ("table_ijssel_vecht", table_hook, ["alert.escalated", "alert.resolved"]),
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

            # Watch, then threatened: the insurer hears of each step; the regional table of the
            # escalation to it, by webhook and by e-mail.
            await post(client, w, staffing(4, vacancies_fte=2.4))
            for days_ago in (3, 2, 1):
                await post(client, w, staffing(days_ago, vacancies_fte=3.2))

            escalated = await table_hook.wait_for(1, within=30)
            assert escalated[0].payload["type"] == "alert.escalated"
            data = escalated[0].payload["data"]
            assert data["to_step"] == "regional_table" and data["reason"] == "level"
            assert data["alert"]["department"] == "FACT-ZWOLLE"
            mails = await smtp.wait_for(1, within=30)
            assert mails[0]["To"] == REGIONAL_MEMBER
            assert mails[0]["Subject"].startswith("[Vroegsignaal] Melding opgeschaald")
            body = mails[0].get_body(("plain",))
            assert body is not None
            text = body.get_content()
            assert "regionale tafel" in text and "15 % of meer van de formatie" in text
            alert = await department_alert(sessions, w.fact)
            assert alert is not None and alert.escalation is EscalationStep.REGIONAL_TABLE
            assert f"https://vroegsignaal.test/alerts/{alert.id}" in text

            # The table closes it: both endpoints and the table's people hear of it.
            done = await client.post(
                f"/v1/alerts/{alert.id}/resolve",
                json={"note": "Vacatures vervuld; instroom weer normaal."},
                headers=w.auth("table_ijssel_vecht"),
            )
            assert done.status_code == 200, done.text
            await table_hook.wait_for(2, within=30)

            async def insurer_heard_it_all() -> list[str] | None:
                types = insurer_hook.types
                return types if "alert.resolved" in types else None

            insurer_types = await eventually(insurer_heard_it_all, "the insurer's resolution")
            mails = await smtp.wait_for(2, within=30)

        assert table_hook.types == ["alert.escalated", "alert.resolved"]
        assert insurer_types[0] == "alert.opened" and insurer_types[-1] == "alert.resolved"
        assert "alert.escalated" in insurer_types
        for hook in (table_hook, insurer_hook):
            assert len(set(hook.ids)) == len(hook.ids), "a webhook arrived twice"
            assert hook.refused_signatures == []
        assert [m["To"] for m in mails] == [REGIONAL_MEMBER, REGIONAL_MEMBER]
        assert mails[1]["Subject"].startswith("[Vroegsignaal] Melding afgesloten")
        assert NATIONAL_MEMBER not in {m["To"] for m in mails}

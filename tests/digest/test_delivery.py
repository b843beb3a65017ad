"""The digest reaches the governance board: an e-mail with the PDF attached arrives at a real
SMTP server, and a signed `digest.published` webhook at a real receiver — once, and again for a
version made with --force. Organisations that may not read digests get no webhook."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from cryptography.fernet import Fernet
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.digest import Outcome, Period, make_digest
from tests.digest.world import AMS, BOARD_MEMBER, digest_world
from tests.ingest.conftest import open_client
from tests.support.receivers import SmtpSink, WebhookReceiver


async def test_the_board_gets_the_pdf_by_mail_and_subscribers_a_webhook(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    period = Period.of(datetime.now(UTC), AMS).previous()
    async with (
        WebhookReceiver() as board_hook,
        WebhookReceiver() as table_hook,
        WebhookReceiver() as provider_hook,
        SmtpSink() as smtp,
    ):
        w = await digest_world(
            database_url,
            sessions,
            deliver=True,
            smtp_url=smtp.url,
            webhook_allow_private=True,  # the receivers listen on 127.0.0.1
            secret_key=Fernet.generate_key().decode(),
        )
        async for client in open_client(w.app):
            for who, hook, types in (
                ("governance", board_hook, ["digest.published"]),
                ("national_table", table_hook, ["alert.opened"]),  # did not ask for digests
                ("provider_a", provider_hook, ["digest.published"]),  # may not read them
            ):
                made = await client.post(
                    "/v1/subscriptions",
                    json={"url": hook.url, "event_types": types, "description": "Digest"},
                    headers=w.auth(who),
                )
                assert made.status_code == 201, made.text
                hook.secret = made.json()["secret"]

            async with sessions() as session, session.begin():
                result = await make_digest(
                    session, period, options=w.options, now=datetime.now(UTC)
                )
            assert (result.outcome, result.emails, result.webhooks) == (Outcome.MADE, 1, 1)

            [mail] = await smtp.wait_for(1, within=30)
            [call] = await board_hook.wait_for(1, within=30)

            async with sessions() as session, session.begin():
                again = await make_digest(
                    session, period, options=w.options, now=datetime.now(UTC), force=True
                )
            assert again.outcome is Outcome.REMADE
            mails = await smtp.wait_for(2, within=30)
            calls = await board_hook.wait_for(2, within=30)

    assert mail["To"] == BOARD_MEMBER
    assert mail["Subject"] == f"[Vroegsignaal] Maandoverzicht cruciale ggz {period.label}"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"https://vroegsignaal.test/digests/{period}" in text
    assert "Het volledige overzicht zit als PDF bij dit bericht" in text
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"vroegsignaal-maandoverzicht-{period}.pdf"
    pdf = attachment.get_payload(decode=True)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    first_page = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert f"Maandoverzicht {period.label}" in first_page

    assert call.payload["type"] == "digest.published"
    data = call.payload["data"]
    assert data["period"] == str(period)
    assert data["links"] == {
        "html": f"/v1/digests/{period}.html",
        "pdf": f"/v1/digests/{period}.pdf",
        "json": f"/v1/digests/{period}.json",
    }
    assert data["counts"]["departments"] == 6
    assert board_hook.refused_signatures == []

    assert mails[1]["Subject"].endswith("(herziene versie)")
    assert len({c.webhook_id for c in calls}) == 2  # a new version is a new event
    assert table_hook.calls == 0 and provider_hook.calls == 0

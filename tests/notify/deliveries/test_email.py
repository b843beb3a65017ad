"""E-mail deliveries through a real SMTP server (aiosmtpd), and the owner's e-mail when an endpoint
that kept failing is disabled."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import AuditEntry, WebhookSubscription
from services.core.domain import DeliveryChannel, DeliveryStatus
from services.notify.deliveries import Attachment, enqueue_email, enqueue_webhooks
from tests.ingest.conftest import PROVIDER_A, World
from tests.notify.deliveries.conftest import (
    ADMIN_EMAIL,
    HandClock,
    alert_event,
    deliveries_of,
    delivery_settings,
    make_alert,
    organisation_id,
    register,
    running_app,
)
from tests.support.receivers import SmtpSink, WebhookReceiver

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_an_email_with_text_html_and_an_attachment_arrives_once(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    smtp: SmtpSink,
    clock: HandClock,
) -> None:
    settings = delivery_settings(smtp_url=smtp.url, mail_from="Vroegsignaal <noreply@vs.example>")
    provider = await organisation_id(sessions, PROVIDER_A)
    alert, event_id = await make_alert(sessions), uuid.uuid4()
    async with running_app(database_url, settings, clock=clock) as running:
        for _ in range(2):  # the same event twice (a replay): one e-mail
            async with sessions() as session, session.begin():
                await enqueue_email(
                    session,
                    organisation_id=provider,
                    to="Tafel@IJssel-Vecht.example",
                    subject="Dreigend: HIC De Vecht\n(Zwolle)",
                    text="Er is een melding voor HIC De Vecht.\nBekijk: https://vs.example/a/1",
                    html="<p>Er is een melding voor <b>HIC De Vecht</b>.</p>",
                    event_id=event_id,
                    event_type="nl.vroegsignaal.alert.opened",
                    alert_id=alert,
                    attachments=[Attachment("overzicht-2026-11.pdf", "application/pdf", PDF)],
                )
        [message] = await smtp.wait_for(1)
        await running.worker.settled()

    assert smtp.envelopes == [("noreply@vs.example", ["tafel@ijssel-vecht.example"])]
    assert message["Subject"] == "Dreigend: HIC De Vecht (Zwolle)"
    assert message["From"] == "Vroegsignaal <noreply@vs.example>"
    assert message["To"] == "tafel@ijssel-vecht.example"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and "HIC De Vecht" in text.get_content()
    assert html is not None and "<b>HIC De Vecht</b>" in html.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "overzicht-2026-11.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    [(delivery, [attempt])] = await deliveries_of(sessions)
    assert (delivery.channel, delivery.status, delivery.event_type) == (
        DeliveryChannel.EMAIL,
        DeliveryStatus.SUCCEEDED,
        "alert.opened",
    )
    assert (attempt.status_code, attempt.error) == (250, None)
    assert message["X-Vroegsignaal-Delivery"] == str(delivery.id)


async def test_a_refused_mailbox_fails_at_once_and_no_smtp_server_fails_visibly(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    smtp: SmtpSink,
    clock: HandClock,
) -> None:
    provider = await organisation_id(sessions, PROVIDER_A)
    smtp.refuse_recipients = True
    for settings in (delivery_settings(smtp_url=smtp.url), delivery_settings(smtp_url=None)):
        async with running_app(database_url, settings, clock=clock) as running:
            async with sessions() as session, session.begin():
                await enqueue_email(
                    session,
                    organisation_id=provider,
                    to="weg@vechtstroom.example",
                    subject="Test",
                    text="Test",
                    html=None,
                    event_id=uuid.uuid4(),
                    event_type="alert.opened",
                    alert_id=None,
                )
            await running.worker.settled()
    [(refused, [first]), (unconfigured, [second])] = await deliveries_of(sessions)
    assert (refused.status, refused.attempts, first.status_code) == (DeliveryStatus.FAILED, 1, 550)
    assert first.error is not None and "No such mailbox" in first.error
    assert unconfigured.status is DeliveryStatus.FAILED
    assert second.error is not None and "VROEGSIGNAAL_SMTP_URL is unset" in second.error
    assert not smtp.messages


async def test_an_address_that_is_not_one_address_is_refused(
    sessions: async_sessionmaker[AsyncSession], world: World
) -> None:
    provider = await organisation_id(sessions, PROVIDER_A)
    for address in (
        "",
        "geen-adres",
        "a@b.example, c@d.example",
        "x@y.example\r\nBcc: z@z.example",
    ):
        async with sessions() as session, session.begin():
            with pytest.raises(ValueError, match="e-mail address"):
                await enqueue_email(
                    session,
                    organisation_id=provider,
                    to=address,
                    subject="s",
                    text="t",
                    html=None,
                    event_id=uuid.uuid4(),
                    event_type="alert.opened",
                    alert_id=None,
                )


async def test_an_endpoint_failing_too_long_is_disabled_and_its_admins_told(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    clock: HandClock,
) -> None:
    settings = delivery_settings(smtp_url=smtp.url, webhook_disable_after=timedelta(hours=1))
    provider = await organisation_id(sessions, PROVIDER_A)
    async with running_app(database_url, settings, clock=clock) as running:
        subscription, receiver.secret = await register(
            running.client, world, "provider_a", receiver.url
        )
        receiver.fail_next = 1000
        first, second = await make_alert(sessions), await make_alert(sessions)
        async with sessions() as session, session.begin():
            for alert in (first, second):
                await enqueue_webhooks(
                    session,
                    organisation_id=provider,
                    event=alert_event("alert.opened", alert_id=alert),
                    alert_id=alert,
                )
        # 0 s, 5 s, 5 min, 30 min: failing, but not for an hour yet.
        for wait in (timedelta(0), timedelta(seconds=6), timedelta(minutes=6)):
            clock.advance(wait)
            await running.worker.settled()
        async with sessions() as session:
            endpoint = await session.get(WebhookSubscription, subscription)
            assert endpoint is not None and endpoint.active and endpoint.failing_since
        clock.advance(timedelta(minutes=40))  # the 30-minute retry: now 46 minutes
        await running.worker.settled()
        clock.advance(timedelta(hours=2, minutes=30))  # the 2-hour retry: failing > 1 h
        await running.worker.settled()
        [message] = await smtp.wait_for(1)
        await running.worker.settled()
        listed = await running.client.get(
            f"/v1/subscriptions/{subscription}", headers=world.auth("provider_a")
        )
        test = await running.client.post(
            f"/v1/subscriptions/{subscription}/test", headers=world.auth("provider_a")
        )
        webhooks = [
            d for d, _ in await deliveries_of(sessions) if d.channel is DeliveryChannel.WEBHOOK
        ]
        # The owner repairs the receiver, switches the endpoint on and retries what failed.
        receiver.fail_next = 0
        enabled = await running.client.post(
            f"/v1/subscriptions/{subscription}/enable", headers=world.auth("provider_a")
        )
        retried = await running.client.post(
            "/v1/deliveries/retry",
            json={"subscription": str(subscription)},
            headers=world.auth("provider_a"),
        )
        await receiver.wait_for(2)

    assert enabled.json()["active"] is True and enabled.json()["disabled_at"] is None
    assert retried.json() == {"retried": 2}
    assert sorted(receiver.ids) == sorted(str(d.id) for d in webhooks)
    assert listed.json()["active"] is False
    assert listed.json()["disabled_reason"].startswith("no successful delivery for 0.")
    assert test.status_code == 409
    assert [d.status for d in webhooks] == [DeliveryStatus.FAILED] * 2
    assert all(d.last_error and d.last_error.startswith("endpoint disabled") for d in webhooks)
    # Only the org admin is told, in Dutch, with what to do next.
    assert smtp.envelopes[0][1] == [ADMIN_EMAIL]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert receiver.url in content and "uitgeschakeld" in content
    assert f"https://vroegsignaal.example/v1/subscriptions/{subscription}/enable" in content
    async with sessions() as session:
        actions = set(await session.scalars(select(AuditEntry.action)))
    assert "subscription.disabled" in actions

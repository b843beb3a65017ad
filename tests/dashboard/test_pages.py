"""The dashboard over HTTP, without a browser: login, sessions and CSRF, every page scoped like
the API, the actions through the API's own functions, audit, and no 500 for odd input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.admin.organisations import resolve_organisation
from services.core.db.models import Alert, AuditEntry, Delivery, Digest
from services.core.domain import (
    AlertStatus,
    DeliveryChannel,
    DeliveryStatus,
    DigestStatus,
    Level,
)
from tests.dashboard.world import (
    GOVERNANCE_MEMBER,
    INSURER_MEMBER,
    NATIONAL_MEMBER,
    ORG_ADMIN,
    OTHER_REGION_MEMBER,
    PROVIDER_MEMBER,
    REGIONAL_MEMBER,
    DashboardWorld,
    csrf_of,
    dashboard_world,
    log_in,
    make_alert,
)
from tests.ingest.conftest import open_client
from tests.notify.world import eventually, timeline


@pytest.fixture
async def world(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[DashboardWorld, httpx.AsyncClient]]:
    w = await dashboard_world(database_url, sessions)
    async for client in open_client(w.app):
        yield w, client


async def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client on the same app with its own cookie jar (another person's browser)."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://test")


async def test_login_logout_and_the_one_message_for_any_wrong_credential(
    world: tuple[DashboardWorld, httpx.AsyncClient],
) -> None:
    _, client = world
    first = await client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2F"

    wrong_password = await log_in(client, INSURER_MEMBER, "niet het wachtwoord")
    unknown_user = await log_in(client, "niemand@nergens.test", "een lang wachtwoord")
    for answer in (wrong_password, unknown_user):
        assert answer.status_code == 401
        assert "Het e-mailadres of het wachtwoord klopt niet." in answer.text
    assert wrong_password.text.count("klopt niet") == unknown_user.text.count("klopt niet")

    done = await log_in(client, INSURER_MEMBER)
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # development; production sets it (test below)
    page = await client.get("/")
    assert page.status_code == 200 and "Zilveren Kruis" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]

    out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_secure_cookie_outside_development(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await dashboard_world(database_url, sessions, environment="production")
    async for client in open_client(w.app):
        form = await client.get("/login")  # the session starts here, with the CSRF token
        cookie = form.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_posts_without_the_right_csrf_token_are_refused(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    alert = await make_alert(client, w, sessions)
    login_form = await client.get("/login")
    for body in ({}, {"csrf_token": "x" * 43}):
        refused = await client.post(
            "/login", data={"email": INSURER_MEMBER, "password": "een lang wachtwoord", **body}
        )
        assert refused.status_code == 403
    assert (await log_in(client, INSURER_MEMBER)).status_code == 303
    # The token seen before login is no longer good after it.
    stale = await client.post(
        f"/alerts/{alert.id}/acknowledge", data={"csrf_token": csrf_of(login_form.text)}
    )
    assert stale.status_code == 403
    for data in ({}, {"csrf_token": "nep"}):
        refused = await client.post(f"/alerts/{alert.id}/acknowledge", data=data)
        assert refused.status_code == 403 and "formulier" in refused.text
    multipart = await client.post(
        f"/alerts/{alert.id}/comment", files={"note": ("a.txt", b"hallo")}
    )
    assert multipart.status_code == 403
    assert await timeline(sessions, alert.id) == ["opened", "updated", "escalated"]


async def test_an_insurer_reads_and_acts_on_its_regions_alert_like_through_the_api(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    alert = await make_alert(client, w, sessions)
    await log_in(client, INSURER_MEMBER)

    listed = await client.get("/alerts", params={"region": "ijssel-vecht", "level": "threatened"})
    assert listed.status_code == 200 and f"/alerts/{alert.id}" in listed.text
    assert "1 melding</p>" in listed.text
    page = await client.get(f"/alerts/{alert.id}")
    assert page.status_code == 200
    assert "Al drie meldingen achter elkaar staat 15 %" in page.text  # the reason, in Dutch
    assert f"/alerts/{alert.id}/charts/0.svg" in page.text
    assert 'action="/alerts/' in page.text and "In behandeling nemen" in page.text
    chart = await client.get(f"/alerts/{alert.id}/charts/0.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert "<svg" in chart.text and "drempel 15" in chart.text.lower()

    token = csrf_of(page.text)
    bsn = await client.post(
        f"/alerts/{alert.id}/comment", data={"csrf_token": token, "note": "Cliënt 111222333"}
    )
    assert bsn.status_code == 303
    shown = await client.get(bsn.headers["location"])
    assert "burgerservicenummer" in shown.text and "111222333" not in shown.text

    taken = await client.post(
        f"/alerts/{alert.id}/acknowledge",
        data={"csrf_token": token, "note": "Wij bellen de aanbieder vandaag."},
    )
    assert taken.status_code == 303
    after = await client.get(taken.headers["location"])
    assert "De melding is in behandeling genomen." in after.text
    assert "Wij bellen de aanbieder vandaag." in after.text
    assert await timeline(sessions, alert.id) == ["opened", "updated", "escalated", "acknowledged"]
    again = await client.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": token})
    assert "al in behandeling" in (await client.get(again.headers["location"])).text

    async with sessions() as session:
        row = await session.get(Alert, alert.id)
        assert row is not None and row.status is AlertStatus.ACKNOWLEDGED
        rows = await session.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.channel == "dashboard")
            .group_by(AuditEntry.action)
        )
        audited = {row[0]: row[1] for row in rows}
    assert audited["alert.read"] >= 3 and audited["alert.list"] >= 1
    assert audited["alert.acknowledge"] == 1 and audited["user.login"] == 1


async def test_another_regions_people_cannot_see_or_touch_the_alert(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    alert = await make_alert(client, w, sessions)
    await log_in(client, OTHER_REGION_MEMBER)
    assert (await client.get(f"/alerts/{alert.id}")).status_code == 403
    assert (await client.get(f"/alerts/{alert.id}/charts/0.svg")).status_code == 403
    listed = await client.get("/alerts")
    assert str(alert.id) not in listed.text and "Geen meldingen" in listed.text
    overview = await client.get("/")
    assert str(alert.id) not in overview.text
    assert (await client.get(f"/departments/{w.department('FACT-ZWOLLE')}")).status_code == 403
    assert (await client.get("/regions/ijssel-vecht")).status_code == 403
    token = csrf_of(overview.text)
    refused = await client.post(
        f"/alerts/{alert.id}/comment", data={"csrf_token": token, "note": "x"}
    )
    assert refused.status_code == 403
    assert (await client.get("/settings/webhooks")).status_code == 403  # not an org admin
    assert await timeline(sessions, alert.id) == ["opened", "updated", "escalated"]


@pytest.mark.parametrize(
    ("email", "sees", "may_act"),
    [
        (REGIONAL_MEMBER, True, True),
        (NATIONAL_MEMBER, False, False),  # threatened, regional: not at the national table
        (GOVERNANCE_MEMBER, True, False),  # everything, read-only
        (PROVIDER_MEMBER, True, False),  # its own department; may comment only
    ],
)
async def test_every_role_sees_what_the_api_shows_it(
    world: tuple[DashboardWorld, httpx.AsyncClient],
    sessions: async_sessionmaker[AsyncSession],
    email: str,
    sees: bool,
    may_act: bool,
) -> None:
    w, client = world
    alert = await make_alert(client, w, sessions)
    await log_in(client, email)
    page = await client.get(f"/alerts/{alert.id}")
    assert page.status_code == (200 if sees else 403)
    if sees:
        assert ("In behandeling nemen" in page.text) is may_act
        assert ("Afsluiten" in page.text) is may_act
    listed = await client.get("/alerts")
    assert (str(alert.id) in listed.text) is sees


async def test_overview_department_region_and_digest_pages(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    await make_alert(client, w, sessions)
    await log_in(client, REGIONAL_MEMBER)
    overview = await client.get("/")
    assert overview.status_code == 200
    for text in ("Dekking per regio en cluster", "Open meldingen per niveau en stap", "IJssel"):
        assert text in overview.text
    assert "dreigend" in overview.text
    department = await client.get(f"/departments/{w.department('FACT-ZWOLLE')}")
    assert department.status_code == 200 and "Beoordelingen" in department.text
    assert f"/departments/{w.department('FACT-ZWOLLE')}/charts/" in department.text
    series = await client.get(f"/departments/{w.department('FACT-ZWOLLE')}/charts/1.svg")
    assert series.status_code == 200 and "<svg" in series.text
    region = await client.get("/regions/ijssel-vecht")
    assert region.status_code == 200 and "FACT-team" in region.text
    assert (await client.get("/regions/nergens")).status_code == 404

    archive = await client.get("/digests")
    assert archive.status_code == 200 and "Er zijn nog geen maandoverzichten" in archive.text
    async with sessions() as session, session.begin():
        session.add(
            Digest(
                period="2026-10",
                status=DigestStatus.PUBLISHED,
                made_at=func.now(),
                ruleset_version="2026.11.1",
                figures={},
                html="<html><body><h1>Oktober 2026</h1></body></html>",
                pdf=b"%PDF-1.4 test",
            )
        )
    archive = await client.get("/digests")
    assert "2026-10" in archive.text and "/digests/2026-10.pdf" in archive.text
    html = await client.get("/digests/2026-10")
    assert html.status_code == 200 and "Oktober 2026" in html.text
    assert "sandbox" in html.headers["content-security-policy"]
    pdf = await client.get("/digests/2026-10.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert (await client.get("/digests/2026-13")).status_code == 404

    english = await client.post(
        "/language", data={"csrf_token": csrf_of(overview.text), "lang": "en", "next": "/"}
    )
    assert english.status_code == 303
    assert "Coverage per region and cluster" in (await client.get("/")).text


async def test_the_live_stream_sends_new_alerts_of_ones_own_scope_only(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    other = await _browser(client)
    await log_in(client, INSURER_MEMBER)
    await log_in(other, OTHER_REGION_MEMBER)
    overview = await client.get("/")
    since = overview.text.split('data-live-since="')[1].split('"')[0]
    await make_alert(client, w, sessions, department="HIC-ZWOLLE", level=Level.WATCH)
    mine = await client.get("/events", params={"since": since})
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/event-stream")
    assert "event: alert" in mine.text and "HIC-ZWOLLE" in mine.text
    theirs = await other.get("/events", params={"since": since})
    assert "event: alert" not in theirs.text
    await other.aclose()
    anonymous = await (await _browser(client)).get("/events")
    assert anonymous.status_code == 204


async def test_org_admins_see_their_deliveries_and_retry_a_failed_one(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, client = world
    await log_in(client, INSURER_MEMBER)
    assert (await client.get("/settings/webhooks")).status_code == 403
    admin = await _browser(client)
    await log_in(admin, ORG_ADMIN)
    page = await admin.get("/settings/webhooks")
    assert page.status_code == 200 and "Nog niets verstuurd." in page.text
    async with sessions() as session, session.begin():
        insurer = await resolve_organisation(session, "9901")
        failed = Delivery(
            channel=DeliveryChannel.EMAIL,
            organisation_id=insurer.id,
            email="inkoop@zk.test",
            event_id=uuid.uuid4(),
            event_type="alert.opened",
            payload={},
            status=DeliveryStatus.FAILED,
            attempts=8,
            last_error="550 mailbox unavailable",
        )
        session.add(failed)
    page = await admin.get("/settings/webhooks")
    assert "550 mailbox unavailable" in page.text and "Opnieuw versturen" in page.text
    retried = await admin.post(
        f"/settings/deliveries/{failed.id}/retry", data={"csrf_token": csrf_of(page.text)}
    )
    assert retried.status_code == 303
    async with sessions() as session:
        row = await session.get(Delivery, failed.id)
        assert row is not None and row.status is DeliveryStatus.PENDING and row.attempts == 0
    other = await admin.post(
        "/settings/deliveries/00000000-0000-4000-8000-000000000000/retry",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert other.status_code == 404
    await admin.aclose()


@pytest.mark.parametrize(
    "path",
    [
        "/alerts/not-a-uuid",
        "/alerts/00000000-0000-4000-8000-000000000000",
        "/alerts/00000000-0000-4000-8000-000000000000/charts/0.svg",
        "/alerts/00000000-0000-4000-8000-000000000000/charts/x.svg",
        "/alerts?level=nope&status=%00&page=-4&sort=drop+table&dir=sideways&region=%E2%82%AC",
        "/alerts?provider=%25_%5C&page=999999999999999999999",
        "/departments/123",
        "/departments/00000000-0000-4000-8000-000000000000?before=gisteren",
        "/departments/00000000-0000-4000-8000-000000000000/charts/99.svg",
        "/regions/%2E%2E",
        "/digests/..%2F..",
        "/events?since=99999999999999999999999",
        "/login?next=//evil.example",
    ],
)
async def test_odd_input_never_gets_a_server_error(
    world: tuple[DashboardWorld, httpx.AsyncClient], path: str
) -> None:
    _, client = world
    await log_in(client, INSURER_MEMBER)
    answer = await client.get(path, follow_redirects=False)
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])


async def test_odd_posts_never_get_a_server_error(
    world: tuple[DashboardWorld, httpx.AsyncClient], sessions: async_sessionmaker[AsyncSession]
) -> None:
    w, client = world
    alert = await make_alert(client, w, sessions, level=Level.WATCH)
    await log_in(client, INSURER_MEMBER)
    token = csrf_of((await client.get("/")).text)
    for path, body in (
        (f"/alerts/{alert.id}/resolve", {"csrf_token": token, "reason": "weg", "note": "x"}),
        (f"/alerts/{alert.id}/comment", {"csrf_token": token, "note": "x" * 5000}),
        (f"/alerts/{alert.id}/comment", {"csrf_token": token, "note": "a\x01b"}),
        (f"/alerts/{alert.id}/comment", {"csrf_token": token}),
        ("/alerts/zzz/comment", {"csrf_token": token, "note": "x"}),
        ("/language", {"csrf_token": token, "lang": "fr"}),
        ("/login", {"csrf_token": token, "email": "a\x00b@c.d", "password": "\x00"}),
    ):
        answer = await client.post(path, data=body, follow_redirects=False)
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    raw = await client.post(
        f"/alerts/{alert.id}/comment",
        content=b"csrf_token=" + token.encode() + b"&note=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code < 500
    assert await eventually(lambda: timeline(sessions, alert.id), "timeline")

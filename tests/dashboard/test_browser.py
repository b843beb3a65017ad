"""The dashboard in a real browser (headless Chromium): log in, read the overview, open an alert
made by signals posted through the API, acknowledge it and watch the timeline change, see a new
alert arrive live without a reload, be refused another region's alert (also by its URL) and a
post without the CSRF token; axe-core finds nothing serious on the main pages. The tests keep
screenshots of the main pages in docs/screenshots/."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.domain import Level
from tests.dashboard.browser import grave_violations, screenshot
from tests.dashboard.world import (
    INSURER_MEMBER,
    OTHER_REGION_MEMBER,
    PASSWORD,
    dashboard_world,
    make_alert,
)
from tests.notify.world import post, staffing
from tests.support.live_server import LiveServer

TIMEOUT_MS = 20_000
CHARTS_DRAWN = """() => {
    const charts = [...document.querySelectorAll("figure.chart img")];
    return charts.length > 0 && charts.every(img => img.complete && img.naturalWidth > 0);
}"""


async def _log_in(context: Any, base: str, email: str, password: str = PASSWORD) -> Any:
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{base}/login")
    await page.get_by_label("E-mailadres").fill(email)
    await page.get_by_label("Wachtwoord").fill(password)
    await page.get_by_role("button", name="Inloggen").click()
    await page.wait_for_load_state()
    return page


async def _accessible(page: Any, what: str) -> None:
    grave = await grave_violations(page)
    assert grave == [], f"{what}: {grave}"


async def test_an_insurer_follows_an_alert_in_the_browser(
    database_url: str, sessions: async_sessionmaker[AsyncSession], browser: Any
) -> None:
    w = await dashboard_world(database_url, sessions)
    with LiveServer(w.app) as server:
        async with httpx.AsyncClient(base_url=server.base) as api:
            alert = await make_alert(api, w, sessions)
            # More history for the charts: a fortnight of reports before the alert's own.
            for days_ago, vacancies in ((30, 1.0), (21, 1.6), (14, 2.0), (9, 2.2)):
                await post(
                    api,
                    w.notify,
                    staffing(days_ago, vacancies_fte=vacancies, psychiatrist_fte=2.0,
                             sick_leave_pct=6.5 + days_ago / 10),
                )  # fmt: skip
            # The browser's session cookie is not Secure in development, so http works here.
            context = await browser.new_context(
                bypass_csp=True,  # axe-core is injected as an inline script
                viewport={"width": 1280, "height": 900},
                locale="nl-NL",
            )

            # A wrong password: one message that does not say which part was wrong.
            page = await _log_in(context, server.base, INSURER_MEMBER, "niet mijn wachtwoord")
            await page.get_by_text("Het e-mailadres of het wachtwoord klopt niet.").wait_for()
            await _accessible(page, "login")
            await page.close()

            # Log in: the overview.
            page = await _log_in(context, server.base, INSURER_MEMBER)
            await page.get_by_role("heading", name="Overzicht").wait_for()
            await page.get_by_role("heading", name="Dekking per regio en cluster").wait_for()
            assert await page.get_by_role("link", name="IJssel-Vecht").count() >= 1
            await screenshot(page, "overview")
            await _accessible(page, "overview")

            # The alert list, filtered, and from it the alert made by the signals.
            await page.get_by_role("link", name="Meldingen", exact=True).first.click()
            await page.get_by_label("Niveau").select_option("threatened")
            await page.get_by_role("button", name="Filteren").click()
            await page.get_by_text("1 melding", exact=True).wait_for()
            await screenshot(page, "alerts")
            await _accessible(page, "alert list")
            await page.get_by_role("link", name="Afdeling FACT-ZWOLLE").first.click()
            await page.wait_for_url(f"**/alerts/{alert.id}")
            await page.get_by_text("Al drie meldingen achter elkaar staat 15 %").wait_for()
            await page.wait_for_function(CHARTS_DRAWN)
            await screenshot(page, "alert")
            await _accessible(page, "alert detail")

            # Acknowledge it: the timeline shows who took it on, with the note.
            timeline = page.locator("ol.timeline > li")
            before = await timeline.count()
            await page.get_by_label("Toelichting, optioneel").fill("Wij bellen de aanbieder.")
            await page.get_by_role("button", name="In behandeling nemen").click()
            await page.get_by_text("De melding is in behandeling genomen.").wait_for()
            assert await timeline.count() == before + 1
            last = timeline.last
            assert "In behandeling genomen" in await last.inner_text()
            assert "Wij bellen de aanbieder." in await last.inner_text()
            assert "Zilveren Kruis" in await last.inner_text()
            assert await page.get_by_role("button", name="In behandeling nemen").count() == 0

            # The department: its signals as charts and its assessment history.
            await page.get_by_role("link", name="FACT-ZWOLLE · Afdeling FACT-ZWOLLE").click()
            await page.get_by_role("heading", name="Signalen in de tijd").wait_for()
            await page.wait_for_function(CHARTS_DRAWN)
            await screenshot(page, "department")
            await _accessible(page, "department")

            # A new alert arrives live, without a reload.
            await page.goto(f"{server.base}/alerts")
            await page.evaluate("() => { window.notReloaded = true; }")
            await make_alert(api, w, sessions, department="HIC-ZWOLLE", level=Level.WATCH)
            feed = page.locator("#live-feed li", has_text="Afdeling HIC-ZWOLLE")
            await feed.first.wait_for(timeout=TIMEOUT_MS)
            assert await page.evaluate("() => window.notReloaded === true")
            assert "aandacht" in await feed.first.inner_text()

            # A post without the CSRF token is refused, even with the session cookie.
            refused = await page.request.post(
                f"{server.base}/alerts/{alert.id}/comment", form={"note": "Zonder token."}
            )
            assert refused.status == 403
            await context.close()

            # Someone of another region cannot open it, not even by typing its URL.
            other = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await _log_in(other, server.base, OTHER_REGION_MEMBER)
            answer = await page.goto(f"{server.base}/alerts/{alert.id}")
            assert answer is not None and answer.status == 403
            await page.get_by_text("Deze pagina is niet voor uw organisatie bedoeld.").wait_for()
            await page.goto(f"{server.base}/alerts")
            assert await page.locator(f'a[href="/alerts/{alert.id}"]').count() == 0
            await other.close()

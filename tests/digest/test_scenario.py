"""A month told through the API, and the digest of it checked number by number.

September and October 2026, on their own dates (one story clock for the rules engine, the
notifier and the alert API):
- 14 Sep: FACT Zwolle has 12 % vacancies: watch, an alert at the provider's step (A1).
- 5–7 Oct: 16 % for three reports: threatened, up to the regional table (escalation 1).
- 8 Oct: HIC Zwolle, the only HIC of IJssel-Vecht, stops admitting: critical, no alternative,
  at the national table at once (A2), and the region has no HIC left: a coverage gap (A3),
  also at the national table.
- 20 Oct: the stop is lifted, and with it the gap (A3, recovered); 21 Oct the regional
  table closes A2 by hand with a note; 22 Oct HIC Zwolle reports good staffing.
- 27 Oct: HIC Groningen, the only HIC of Groningen, stops admitting: critical, no
  alternative, national table (A4), and Groningen's coverage gap (A5). Both still open.
- KIB Zwolle and FACT Deventer send nothing; GGZ De Stilte (CRISIS-PG) never has.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pypdfium2  # type: ignore[import-untyped]
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db.models import AuditEntry, Digest
from services.notify.digest import DigestOptions, Outcome, Period, make_digest
from services.notify.digest.document import DigestFigures
from tests.digest.world import AMS, DigestWorld, digest_world, post_signal
from tests.ingest.conftest import open_client

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "digest-page1.png"
OCTOBER = Period(2026, 10)
MADE_AT = datetime(2026, 11, 1, 7, 0, tzinfo=AMS).astimezone(UTC)


def _staffing(department: str, **data: float) -> dict[str, object]:
    return {"department": department, "kind": "staffing", "data": {"fte_budgeted": 20.0, **data}}


def _stop(department: str, active: bool, since: str) -> dict[str, object]:
    data: dict[str, object] = {"active": active}
    if active:
        data |= {"since": since, "reason": "personeelstekort"}
    return {"department": department, "kind": "admission_stop", "data": data}


async def tell_the_story(
    client: httpx.AsyncClient, w: DigestWorld, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def post(who: str, body: dict[str, object]) -> None:
        await post_signal(client, w, sessions, who, body)

    w.clock.at(2026, 9, 14)
    await post("provider_a", _staffing("FACT-ZWOLLE", vacancies_fte=2.4))
    w.clock.at(2026, 9, 15)
    await post("provider_b", _staffing("HIC-GRN", fte_filled=19.0, psychiatrist_fte=2.0))
    for day in (5, 6, 7):
        w.clock.at(2026, 10, day)
        await post("provider_a", _staffing("FACT-ZWOLLE", vacancies_fte=3.2))
    w.clock.at(2026, 10, 8)
    await post("provider_a", _stop("HIC-ZWOLLE", True, "2026-10-08"))
    w.clock.at(2026, 10, 9)
    await post("provider_b", _staffing("HIC-GRN", fte_filled=19.0, psychiatrist_fte=2.0))
    w.clock.at(2026, 10, 20)
    await post("provider_a", _stop("HIC-ZWOLLE", False, ""))
    w.clock.at(2026, 10, 21, 10)
    hic = (await client.get("/v1/alerts", headers=w.auth("table_ijssel_vecht"))).json()["items"]
    [a2] = [a for a in hic if a["department"] == "HIC-ZWOLLE" and a["status"] != "resolved"]
    closed = await client.post(
        f"/v1/alerts/{a2['id']}/resolve",
        json={"note": "Opnamestop opgeheven per 20 oktober; twee psychiaters gedetacheerd."},
        headers=w.auth("table_ijssel_vecht"),
    )
    assert closed.status_code == 200, closed.text
    w.clock.at(2026, 10, 22)
    await post("provider_a", _staffing("HIC-ZWOLLE", fte_filled=19.0, psychiatrist_fte=2.0))
    w.clock.at(2026, 10, 27)
    await post("provider_b", _stop("HIC-GRN", True, "2026-10-27"))


async def test_the_digest_of_a_told_month_has_the_right_figures_in_every_format(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await digest_world(database_url, sessions)
    async for client in open_client(w.app):
        await tell_the_story(client, w, sessions)
        options = DigestOptions(zone=AMS, public_url="https://vroegsignaal.test", long_open_days=30)
        async with sessions() as session, session.begin():
            result = await make_digest(session, OCTOBER, options=options, now=MADE_AT)
        assert result.outcome is Outcome.MADE and result.published

        async with sessions() as session:
            stored = (await session.scalars(select(Digest))).one()
        f = DigestFigures.model_validate(stored.figures)
        _check_figures(f)
        assert stored.period == "2026-10" and stored.made_at == MADE_AT
        assert stored.ruleset_version == f.ruleset_version != "onbekend"

        # JSON: the stored figures with status and links, for every reader; not for providers.
        for who in ("governance", "national_table", "table_ijssel_vecht", "insurer_zk", "operator"):
            answer = await client.get("/v1/digests/2026-10.json", headers=w.auth(who))
            assert answer.status_code == 200, (who, answer.text)
        document = answer.json()
        assert document["counts"] == f.counts.model_dump(mode="json")
        assert document["status"] == "published"
        assert document["links"] == {
            "html": "/v1/digests/2026-10.html",
            "pdf": "/v1/digests/2026-10.pdf",
            "json": "/v1/digests/2026-10.json",
        }
        plain = await client.get("/v1/digests/2026-10", headers=w.auth("governance"))
        assert plain.json() == document
        refused = await client.get("/v1/digests/2026-10.pdf", headers=w.auth("provider_a"))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        listed = await client.get("/v1/digests", headers=w.auth("governance"))
        assert [(d["period"], d["label"], d["status"]) for d in listed.json()["items"]] == [
            ("2026-10", "oktober 2026", "published")
        ]

        html = await client.get("/v1/digests/2026-10.html", headers=w.auth("governance"))
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in html.headers["content-security-policy"]
        assert "Maandoverzicht oktober 2026" in html.text
        assert "Afdeling HIC-GRN (GGZ Noorderlicht)" in html.text
        assert "<script" not in html.text and 'src="http' not in html.text  # stands alone

        pdf = await client.get("/v1/digests/2026-10.pdf", headers=w.auth("governance"))
        assert pdf.headers["content-type"] == "application/pdf"
        _check_pdf(pdf.content)

        async with sessions() as session:
            audited = (
                await session.execute(
                    select(AuditEntry.action, AuditEntry.details["format"].astext).where(
                        AuditEntry.object_type == "digest"
                    )
                )
            ).all()
        assert sorted(set(audited)) == [
            ("digest.list", None),
            ("digest.read", "html"),
            ("digest.read", "json"),
            ("digest.read", "pdf"),
        ]


def _check_figures(f: DigestFigures) -> None:
    assert f.period == "2026-10" and f.label == "oktober 2026" and not f.empty
    assert f.long_open_days == 30
    h = f.headline
    # (this month, the month before)
    assert (h.departments.value, h.departments.previous) == (6, 6)
    assert (h.opened.value, h.opened.previous) == (4, 1)  # A2–A5; A1 in September
    assert (h.escalated.value, h.escalated.previous) == (5, 0)  # A1 to the region, 4 national
    assert (h.escalated_national_table.value, h.escalated_national_table.previous) == (4, 0)
    assert (h.resolved.value, h.resolved.previous) == (2, 0)  # A2 by hand, A3 recovered
    assert (h.open.value, h.open.previous) == (3, 1)  # A1, A4, A5
    assert (h.national_open.value, h.national_open.previous) == (2, 0)  # A4, A5
    assert (h.critical_open.value, h.critical_open.previous) == (2, 0)
    assert (h.coverage_gaps.value, h.coverage_gaps.previous) == (1, 0)  # Groningen's HIC
    assert f.counts.model_dump() == {
        "departments": 6,
        "alerts_opened": 4,
        "alerts_resolved": 2,
        "alerts_open": 3,
        "critical_open": 2,
        "escalated_regional_table": 1,
        "escalated_national_table": 4,
        "coverage_gaps": 1,
    }
    assert f.trend[0].period == "2025-11" and len(f.trend) == 12
    assert [(m.opened, m.open) for m in f.trend[-3:]] == [(0, 0), (1, 1), (4, 3)]
    assert sum(m.opened for m in f.trend[:-2]) == 0

    fields = (
        "departments",
        "opened",
        "escalated_regional_table",
        "escalated_national_table",
        "resolved",
        "open",
        "national_open",
        "critical_open",
        "coverage_gaps",
        "silent_departments",
    )
    regions = {r.code: tuple(getattr(r, name) for name in fields) for r in f.regions}
    assert regions == {
        "groningen": (2, 2, 0, 2, 0, 2, 2, 2, 1, 1),
        "ijssel-vecht": (4, 2, 1, 2, 2, 1, 0, 0, 0, 2),
    }
    assert [r.name for r in f.regions] == sorted(r.name for r in f.regions)
    clusters = {c.code: tuple(getattr(c, name) for name in fields) for c in f.clusters}
    assert clusters == {
        "acute": (2, 4, 0, 4, 2, 2, 2, 2, 1, 0),
        "outreach": (2, 0, 1, 0, 0, 1, 0, 0, 0, 1),
        "secure": (1, 0, 0, 0, 0, 0, 0, 0, 0, 1),
        "crisis_beds": (1, 0, 0, 0, 0, 0, 0, 0, 0, 1),
    }

    national = [(n.what, n.escalation_reason, n.status, n.level.value) for n in f.national_table]
    assert sorted(national) == sorted(
        [
            ("Afdeling HIC-GRN (GGZ Noorderlicht)", "level", "open", "critical"),
            ("Dekking High & Intensive Care-opnameafdeling (HIC)", "coverage", "open", "critical"),
            ("Afdeling HIC-ZWOLLE (Vechtstroom GGZ)", "level", "resolved", "critical"),
            (
                "Dekking High & Intensive Care-opnameafdeling (HIC)",
                "coverage",
                "resolved",
                "critical",
            ),
        ]
    )
    assert all(n.escalated_in_period for n in f.national_table)
    hic_grn = next(n for n in f.national_table if n.department == "HIC-GRN")
    assert hic_grn.age_days == 4  # 27 Oct 09:00 to 1 Nov 00:00
    assert hic_grn.region_name == "Groningen"
    assert any("opname" in reason.lower() for reason in hic_grn.reasons)

    assert [(g.region, g.care_type, g.level.value) for g in f.coverage_gaps] == [
        ("groningen", "acute.hic", "critical")
    ]
    assert [(d.department, d.level.value) for d in f.no_alternative] == [("HIC-GRN", "critical")]
    # Open longer than 30 days: only FACT Zwolle, open since 14 September.
    assert [(a.department, a.age_days, a.step.value, a.level.value) for a in f.long_open] == [
        ("FACT-ZWOLLE", 47, "regional_table", "threatened")
    ]

    resolved = {r.department or r.kind.value: r for r in f.resolved}
    assert set(resolved) == {"HIC-ZWOLLE", "coverage"}
    by_hand = resolved["HIC-ZWOLLE"]
    assert (by_hand.resolution, by_hand.resolved_by, by_hand.age_days) == (
        "manual",
        "Regionale tafel IJssel-Vecht",
        13,
    )
    assert by_hand.note == "Opnamestop opgeheven per 20 oktober; twee psychiaters gedetacheerd."
    assert (resolved["coverage"].resolution, resolved["coverage"].resolved_by) == (
        "recovered",
        None,
    )
    assert f.resolved_by_reason == {"manual": 1, "recovered": 1}

    c = f.completeness
    assert (c.departments, c.reporting, c.silent, c.providers) == (6, 3, 3, 3)
    assert sorted(d.department for d in c.silent_departments) == [
        "CRISIS-PG",
        "FACT-DEVENTER",
        "KIB-ZWOLLE",
    ]
    assert all(d.last_observed_at is None for d in c.silent_departments)
    assert [(p.name, p.agb, p.departments) for p in c.silent_providers] == [
        ("GGZ De Stilte", "73990003", 1)
    ]


def _check_pdf(content: bytes) -> None:
    reader = PdfReader(io.BytesIO(content))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    total = len(pages)
    for number, page in enumerate(pages, start=1):
        assert f"Pagina {number} van {total}" in page
    assert "Maandoverzicht oktober 2026" in pages[0] and "Inhoud" in pages[0]
    for heading in (
        "1. Kerncijfers en verloop",
        "2. Bij de landelijke tafel",
        "3. Dekkingstekorten en afdelingen zonder alternatief",
        "4. Langer dan 30 dagen open",
        "5. Afgesloten: wat is opgelost, en hoe",
        "8. Volledigheid van de gegevens",
    ):
        assert heading in pages[0], heading  # in the contents, with its page number
        assert text.count(heading) >= 2, heading  # and as a heading further on
    for fact in (
        "Afdeling HIC-GRN (GGZ Noorderlicht)",
        "Regionale tafel IJssel-Vecht",
        "GGZ De Stilte",
        "Opnamestop opgeheven per 20 oktober",
    ):
        # Lines break anywhere in a table cell: compare without the white space.
        assert "".join(fact.split()) in "".join(text.split()), fact
    # A picture of the first page, for the README and for people to look at.
    document = pypdfium2.PdfDocument(content)
    try:
        image = document[0].render(scale=1.5).to_pil()
        assert image.width > 800
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        image.save(SCREENSHOT)
    finally:
        document.close()

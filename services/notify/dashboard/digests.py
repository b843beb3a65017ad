"""The digest archive: the monthly escalation digests (made by the digest job, issue 8), each
opened as HTML or PDF. Read by the governance board, the tables, the insurers and the operator;
a provider reads its own alerts instead. An empty archive says so plainly."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.core.db.models import Digest
from services.core.domain import Role
from services.notify.dashboard.web import Page, PageError, open_page

router = APIRouter(include_in_schema=False)
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
READERS = frozenset(
    {Role.GOVERNANCE, Role.NATIONAL_TABLE, Role.REGIONAL_TABLE, Role.INSURER, Role.ADMIN}
)
# A stored digest is our own HTML, but it is shown as a document apart: no script, no forms, no
# requests anywhere; its own inline styles and images only.
DIGEST_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def may_read_digests(page: Page) -> bool:
    return page.caller.role in READERS


def _check(page: Page) -> None:
    if not may_read_digests(page):
        raise PageError(403, "forbidden")


@router.get("/digests")
async def digest_archive(request: Request) -> Response:
    async with open_page(request) as page:
        _check(page)
        rows = (
            await page.session.execute(
                select(
                    Digest.period,
                    Digest.status,
                    Digest.made_at,
                    Digest.published_at,
                    Digest.ruleset_version,
                    Digest.pdf.is_not(None),
                ).order_by(Digest.period.desc())
            )
        ).all()
        await page.audit("digest.list", "digest", details={"count": len(rows)})
        return page.render("digests.html", digests=rows)


async def _digest(page: Page, period: str) -> Digest:
    if not PERIOD.match(period):
        raise PageError(404, "not_found")
    digest = await page.session.scalar(select(Digest).where(Digest.period == period))
    if digest is None:
        raise PageError(404, "not_found")
    return digest


@router.get("/digests/{period}.pdf")
async def digest_pdf(request: Request, period: str) -> Response:
    async with open_page(request) as page:
        _check(page)
        digest = await _digest(page, period)
        if digest.pdf is None:
            raise PageError(404, "not_found")
        await page.audit("digest.read", "digest", period, details={"format": "pdf"})
        body = bytes(digest.pdf)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vroegsignaal-{period}.pdf"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/digests/{period}")
async def digest_html(request: Request, period: str) -> Response:
    async with open_page(request) as page:
        _check(page)
        digest = await _digest(page, period)
        await page.audit("digest.read", "digest", period, details={"format": "html"})
        html = digest.html
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": DIGEST_CSP,
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )

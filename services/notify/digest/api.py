"""`/v1/digests`: the monthly digests as a list, and each as JSON, HTML or PDF.

For the governance board, the tables, the insurers and the operator (`access.py`); a provider
gets `403`. Every list and every read is written to the audit log (`digest.list`, `digest.read`
with the format). The stored HTML and PDF are served as they were made; the JSON is the stored
figures with the digest's status and links. A period that is not `YYYY-MM` is `422`, one without a
digest `404`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.access import Caller
from services.core.audit import audit_call
from services.core.db.models import Digest
from services.core.domain import DigestStatus
from services.core.events.payloads import PERIOD_PATTERN, DigestCounts, DigestLinks
from services.core.http.auth import CallerDep
from services.core.http.state import sessions_of
from services.notify.digest.access import may_read_digests
from services.notify.digest.document import DigestFigures
from services.notify.digest.make import links
from services.notify.digest.period import Period

router = APIRouter(prefix="/v1/digests", tags=["digests"])
Format = Literal["json", "html", "pdf"]
PeriodPath = Annotated[
    str, Path(pattern=PERIOD_PATTERN, max_length=7, description="the month, YYYY-MM")
]
# Shown as a document apart: no script, no requests; its own inline styles and images only.
DIGEST_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _problem(status: int, title: str, description: str, detail: str) -> dict[str, Any]:
    example = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return {
        "description": description,
        "content": {"application/problem+json": {"example": example}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem(
        401, "Unauthorized", "No API key, or an unknown or revoked one.", "Unknown API key."
    ),
    403: _problem(
        403,
        "Forbidden",
        "A role that may not read digests (providers).",
        "Digests are for the governance board, the tables, the insurers and the operator.",
    ),
}
NOT_FOUND = _problem(404, "Not Found", "No digest for this month (yet).", "No digest for 2026-11.")


class DigestSummary(BaseModel):
    """One digest in the list."""

    period: str = Field(examples=["2026-11"])
    label: str = Field(description="the month in Dutch", examples=["november 2026"])
    status: DigestStatus = Field(description="made, or published (announced and delivered)")
    made_at: datetime
    published_at: datetime | None
    ruleset_version: str
    counts: DigestCounts
    links: DigestLinks


class DigestList(BaseModel):
    items: list[DigestSummary] = Field(description="newest first")


class DigestDocument(DigestFigures):
    """The digest as JSON: its figures, with its status and links."""

    status: DigestStatus
    published_at: datetime | None
    links: DigestLinks


def _check(caller: Caller) -> None:
    if not may_read_digests(caller):
        raise HTTPException(
            403,
            "Digests are for the governance board, the tables, the insurers and the operator;"
            " a provider reads its own alerts.",
        )


async def _audit(
    session: AsyncSession,
    request: Request,
    caller: Caller,
    action: str,
    period: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await audit_call(
        session, request, caller, action, object_type="digest", object_id=period, details=details
    )


def _links(digest: Digest) -> DigestLinks:
    return links(Period.parse(digest.period), pdf=digest.pdf is not None)


@router.get(
    "", summary="The monthly digests, newest first", responses=ERRORS, response_model=DigestList
)
async def list_digests(request: Request, caller: CallerDep) -> DigestList:
    _check(caller)
    async with sessions_of(request)() as session, session.begin():
        rows = (
            await session.execute(
                select(
                    Digest.period,
                    Digest.status,
                    Digest.made_at,
                    Digest.published_at,
                    Digest.ruleset_version,
                    Digest.figures["counts"].label("counts"),
                    Digest.pdf.is_not(None).label("has_pdf"),
                ).order_by(Digest.period.desc())
            )
        ).all()
        await _audit(session, request, caller, "digest.list", details={"count": len(rows)})
    return DigestList(
        items=[
            DigestSummary(
                period=row.period,
                label=Period.parse(row.period).label,
                status=row.status,
                made_at=row.made_at,
                published_at=row.published_at,
                ruleset_version=row.ruleset_version,
                counts=DigestCounts.model_validate(row.counts),
                links=links(Period.parse(row.period), pdf=bool(row.has_pdf)),
            )
            for row in rows
        ]
    )


async def _read(request: Request, caller: Caller, period: str, fmt: Format) -> Digest:
    _check(caller)
    async with sessions_of(request)() as session, session.begin():
        digest = await session.scalar(select(Digest).where(Digest.period == period))
        if digest is None:
            raise HTTPException(404, f"No digest for {period}.")
        if fmt == "pdf" and digest.pdf is None:
            raise HTTPException(404, f"The digest for {period} was made without a PDF.")
        await _audit(session, request, caller, "digest.read", period, {"format": fmt})
        session.expunge(digest)
        return digest


def _json(digest: Digest) -> JSONResponse:
    document = dict(digest.figures) | {
        "status": digest.status.value,
        "published_at": digest.published_at.isoformat() if digest.published_at else None,
        "links": _links(digest).model_dump(mode="json"),
    }
    return JSONResponse(document, headers=_PRIVATE)


_JSON_OK: dict[int | str, dict[str, Any]] = {
    200: {"model": DigestDocument, "description": "the figures"},
    404: NOT_FOUND,
}


@router.get(
    "/{period}.json",
    summary="A digest's figures as JSON",
    responses={**ERRORS, **_JSON_OK},
    response_model=None,
)
async def digest_json(request: Request, caller: CallerDep, period: PeriodPath) -> JSONResponse:
    return _json(await _read(request, caller, period, "json"))


@router.get(
    "/{period}.html",
    summary="A digest as a web page (Dutch)",
    responses={
        **ERRORS,
        200: {"content": {"text/html": {}}, "description": "the page"},
        404: NOT_FOUND,
    },
    response_class=Response,
)
async def digest_html(request: Request, caller: CallerDep, period: PeriodPath) -> Response:
    digest = await _read(request, caller, period, "html")
    return Response(
        digest.html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DIGEST_CSP, **_PRIVATE},
    )


@router.get(
    "/{period}.pdf",
    summary="A digest as PDF (A4)",
    responses={
        **ERRORS,
        200: {"content": {"application/pdf": {}}, "description": "the PDF"},
        404: NOT_FOUND,
    },
    response_class=Response,
)
async def digest_pdf(request: Request, caller: CallerDep, period: PeriodPath) -> Response:
    digest = await _read(request, caller, period, "pdf")
    return Response(
        bytes(digest.pdf or b""),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vroegsignaal-maandoverzicht-{period}.pdf"',
            **_PRIVATE,
        },
    )


@router.get(
    "/{period}",
    summary="A digest's figures as JSON (the same as `.json`)",
    responses={**ERRORS, **_JSON_OK},
    response_model=None,
)
async def digest_default(request: Request, caller: CallerDep, period: PeriodPath) -> JSONResponse:
    return _json(await _read(request, caller, period, "json"))

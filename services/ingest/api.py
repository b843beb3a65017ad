"""`POST /v1/signals`, `POST /v1/signals/csv` and `POST /v1/webhooks/inbound/{source}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from services.core.access import load_caller
from services.core.db.models import InboundSource, Organisation
from services.core.domain import ROLE_FOR_KIND, SignalSource
from services.core.http.auth import CallerDep
from services.ingest import idempotency
from services.ingest.csv_format import parse_signals_csv
from services.ingest.intake import (
    Intake,
    check_rate,
    now,
    read_json,
    refused,
    require_content_type,
    store,
)
from services.ingest.openapi import (
    ACCEPTED_RESPONSE,
    CSV_REQUEST_BODY,
    ERROR_RESPONSES,
    SIGNALS_REQUEST_BODY,
)
from services.ingest.validation import SignalsRefused, parse_signals

router = APIRouter(prefix="/v1", tags=["signals"])
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (e.g. a UUID): a repeat with the same key and body gets"
        " the first answer again; the same key with another body gets 409.",
    ),
]


def _key(value: str | None) -> str | None:
    return idempotency.check_key(value) if value is not None else None


@router.post(
    "/signals",
    status_code=202,
    summary="Post one signal or a batch of up to 500",
    openapi_extra={"requestBody": SIGNALS_REQUEST_BODY},
    responses={202: ACCEPTED_RESPONSE, **ERROR_RESPONSES},
)
async def post_signals(
    request: Request, caller: CallerDep, idempotency_key: IdempotencyKeyHeader = None
) -> JSONResponse:
    """Store department signals; `202` comes only after they are committed, each once."""
    check_rate(request, caller)
    require_content_type(request, "application/json")
    key = _key(idempotency_key)
    payload = await read_json(request)
    try:
        signals, batch = parse_signals(payload, now=now())
    except SignalsRefused as exc:
        return refused(exc)
    intake = Intake(
        caller, signals, batch, SignalSource.API, idempotency.request_fingerprint(payload), key
    )
    return await store(request, intake)


@router.post(
    "/signals/csv",
    status_code=202,
    summary="Upload signals as CSV, one row per signal",
    openapi_extra={"requestBody": CSV_REQUEST_BODY},
    responses={202: ACCEPTED_RESPONSE, **ERROR_RESPONSES},
)
async def post_signals_csv(
    request: Request, caller: CallerDep, idempotency_key: IdempotencyKeyHeader = None
) -> JSONResponse:
    """The same signals as a CSV file (columns in docs/csv.md); a file with a bad row is
    refused whole, naming each row and field."""
    check_rate(request, caller)
    require_content_type(request, "text/csv")
    key = _key(idempotency_key)
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "The CSV file is not UTF-8 text.") from exc
    try:
        signals = parse_signals_csv(text, source="upload", now=now())
    except SignalsRefused as exc:
        return refused(exc)
    intake = Intake(
        caller, signals, True, SignalSource.CSV, idempotency.request_fingerprint(text), key
    )
    return await store(request, intake)


def _verify(secret: str, raw: bytes, request: Request) -> None:
    headers = {name: request.headers.get(name, "") for name in _SIGNATURE_HEADERS}
    try:
        Webhook(secret).verify(raw, headers, json_parse=False)
    except Exception as exc:  # the library raises several kinds for malformed headers
        raise HTTPException(
            401,
            "The webhook signature is missing, does not match, or its timestamp is more than"
            " 5 minutes away from now (Standard Webhooks).",
        ) from exc


_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@router.post(
    "/webhooks/inbound/{source}",
    status_code=202,
    summary="Signals pushed by a provider system, signed per Standard Webhooks",
    openapi_extra={"requestBody": SIGNALS_REQUEST_BODY},
    responses={202: ACCEPTED_RESPONSE, **ERROR_RESPONSES},
)
async def post_inbound_webhook(request: Request, source: str) -> JSONResponse:
    """The body is the same as `POST /v1/signals`; `webhook-id` is the idempotency key."""
    require_content_type(request, "application/json")
    raw = await request.body()
    sessions = request.app.state.sessions
    async with sessions() as session:
        row = (
            await session.execute(
                select(InboundSource, Organisation)
                .join(Organisation, InboundSource.organisation_id == Organisation.id)
                .where(InboundSource.name == source, InboundSource.active)
            )
        ).one_or_none()
        if row is None:
            # Same answer as a bad signature: no way to probe which sources exist.
            raise HTTPException(401, "Unknown inbound source or bad signature.")
        inbound, organisation = row
        caller = await load_caller(
            session, organisation, ROLE_FOR_KIND[organisation.kind], channel="webhook"
        )
    _verify(inbound.secret, raw, request)
    check_rate(request, caller)
    payload: Any = await read_json(request)
    try:
        signals, batch = parse_signals(payload, now=now())
    except SignalsRefused as exc:
        return refused(exc)
    key = idempotency.check_key(f"webhook:{source}:{request.headers['webhook-id']}")
    intake = Intake(
        caller, signals, batch, SignalSource.WEBHOOK, idempotency.request_fingerprint(payload), key
    )
    return await store(request, intake)

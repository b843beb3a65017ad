"""One way in for every route a signal can take (REST, signed webhook, CSV).

Validate without touching the database, then one transaction: claim the idempotency key, store
the signals and their events, keep the answer. Only after the commit does the caller get its 202.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.access import Caller
from services.core.config import Settings
from services.core.db.errors import in_transaction_retrying
from services.core.domain import SignalSource
from services.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.core.http.problems import problem
from services.core.metrics import SIGNALS_ACCEPTED, SIGNALS_REJECTED
from services.core.ratelimit import RateLimiter
from services.ingest import idempotency
from services.ingest.directory import DepartmentDirectory
from services.ingest.recording import record_signals
from services.ingest.schemas import SignalIn
from services.ingest.validation import SignalsRefused


def now() -> datetime:
    """The time of receipt (UTC)."""
    return datetime.now(UTC)


def require_content_type(request: Request, *allowed: str) -> None:
    """415 unless the body is of one of the allowed media types."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in allowed:
        SIGNALS_REJECTED.labels("unsupported_media_type").inc()
        raise HTTPException(
            415,
            f"Send the body as {' or '.join(allowed)} (got {media_type or 'no Content-Type'}).",
        )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice is ambiguous (which one counts?): refuse it rather than guess."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key[:60]!r} appears twice in one object")
        found[key] = value
    return found


async def read_json(request: Request) -> Any:
    """The decoded body; malformed JSON, NaN, Infinity or absurd nesting is a 400."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_constant=_no_constants, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        SIGNALS_REJECTED.labels("malformed").inc()
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise HTTPException(400, f"The body is not valid JSON: {reason}") from exc


def check_rate(request: Request, caller: Caller) -> None:
    """429 with Retry-After when the organisation sends faster than its share."""
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.take(caller.organisation_id)
    if wait:
        SIGNALS_REJECTED.labels("rate_limited").inc()
        raise HTTPException(
            429,
            "Too many requests from your organisation; slow down or send batches.",
            headers={"Retry-After": RateLimiter.retry_after(wait)},
        )


def refused(exc: SignalsRefused) -> JSONResponse:
    """422 naming the path of every bad field."""
    SIGNALS_REJECTED.labels("invalid").inc()
    errors = [{"path": error.path, "message": error.message} for error in exc.errors]
    first = f"{errors[0]['path']}: {errors[0]['message']}" if errors else "invalid"
    more = f" (and {len(errors) - 1} more problem(s), see `errors`)" if len(errors) > 1 else ""
    return problem(422, f"Nothing was stored. {first}{more}", errors=errors)


@dataclass(frozen=True)
class Intake:
    """What one request brings in."""

    caller: Caller
    signals: list[SignalIn]
    batch: bool
    source: SignalSource
    fingerprint: str
    idempotency_key: str | None = None


def directory_of(app: FastAPI) -> DepartmentDirectory:
    """The app's department directory, made on first use (one per process)."""
    directory: DepartmentDirectory | None = getattr(app.state, "department_directory", None)
    if directory is None:
        directory = app.state.department_directory = DepartmentDirectory()
    return directory


async def store(request: Request, intake: Intake) -> JSONResponse:
    """The one transaction of an intake; the answer is built only after it committed."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    settings: Settings = request.app.state.settings
    received_at = now()
    caller = intake.caller
    stored: list[Any] = []

    async def work(session: AsyncSession) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The transaction; run again whole if PostgreSQL picks it as a deadlock's victim."""
        if intake.idempotency_key:
            replay = await idempotency.claim(
                session,
                organisation_id=caller.organisation_id,
                key=intake.idempotency_key,
                fingerprint=intake.fingerprint,
                now=received_at,
                ttl=settings.idempotency_ttl,
            )
            if replay is not None:
                return replay.body, replay.status, {"Idempotent-Replayed": "true"}
        stored[:] = await record_signals(
            session,
            caller=caller,
            signals=intake.signals,
            source=intake.source,
            received_at=received_at,
            batch=intake.batch,
            directory=directory_of(request.app),
        )
        body = {
            "accepted": len(stored),
            "stored": sum(1 for item in stored if item.stored),
            "signals": [item.as_dict() for item in stored],
        }
        if intake.idempotency_key:
            await idempotency.remember(
                session,
                organisation_id=caller.organisation_id,
                key=intake.idempotency_key,
                status=202,
                body=body,
            )
        return body, 202, {}

    try:
        body, status, headers = await in_transaction_retrying(sessions, work)
    except Forbidden:
        SIGNALS_REJECTED.labels("forbidden").inc()
        raise
    except NotFound:
        SIGNALS_REJECTED.labels("unknown_department").inc()
        raise
    except Conflict:
        SIGNALS_REJECTED.labels("conflict").inc()
        raise
    except InvalidInput:
        SIGNALS_REJECTED.labels("invalid").inc()
        raise
    if headers:  # an idempotent replay: the first answer, again
        return JSONResponse(body, status_code=status, headers=headers)
    for item in stored:
        if item.stored:
            SIGNALS_ACCEPTED.labels(item.kind, intake.source.value).inc()
    return JSONResponse(body, status_code=202)

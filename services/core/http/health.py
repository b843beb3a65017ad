"""Liveness and readiness: `/healthz` says the process runs, `/readyz` that it can do its work."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.events.bus import Bus, BusUnavailable

router = APIRouter(tags=["operations"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Answers as long as the event loop does; a load balancer restarts the process otherwise."""
    return {"status": "ok"}


async def _schema_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return str(revision) if revision is not None else None


@router.get(
    "/readyz",
    summary="The service can take work: database reachable, schema current, bus reachable",
    responses={
        503: {"description": "Not ready: the database or the bus is unreachable, or not migrated."}
    },
)
async def readyz(request: Request) -> JSONResponse:
    """503 while the database is unreachable or the schema is behind this code (a schema one
    release ahead is fine: migrations stay backward compatible for a release, so old replicas
    keep serving during a rolling upgrade), and — for processes whose work needs it — while the
    bus is unreachable."""
    engine: AsyncEngine = request.app.state.engine
    expected: str = request.app.state.schema_head
    try:
        revision = await asyncio.wait_for(_schema_revision(engine), READY_TIMEOUT_SECONDS)
    except ProgrammingError:
        revision = None  # reachable, but no alembic_version table: never migrated
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    known: frozenset[str] = getattr(request.app.state, "known_revisions", frozenset())
    newer = revision is not None and known and revision not in known
    if revision != expected and not newer:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": f"schema at {revision or 'nothing'}, expected {expected}:"
                " run `vroegsignaal migrate`",
            },
            status_code=503,
            headers={"Retry-After": "30"},
        )
    bus: Bus | None = getattr(request.app.state, "bus", None)
    bus_state = bus.backend.value if bus is not None else "none"
    if bus is not None:
        try:
            await asyncio.wait_for(bus.check(), READY_TIMEOUT_SECONDS * 3)
        except (BusUnavailable, TimeoutError) as exc:
            bus_state = f"{bus.backend}: {exc or 'no answer in time'}"
            # The signal API keeps taking signals into the outbox while Kafka is away (the relay
            # catches up): only a process whose work needs the bus is not ready without it.
            if getattr(request.app.state, "ready_needs_bus", True):
                return JSONResponse(
                    {"status": "unavailable", "database": "ok", "bus": bus_state},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
    answer = {"status": "ready", "database": "ok", "schema": revision, "bus": bus_state}
    if newer:
        answer["schema"] = f"{revision} (newer than this code's {expected}: migrated ahead)"
    return JSONResponse(answer)

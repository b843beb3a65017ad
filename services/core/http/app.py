"""The FastAPI application factory: one composition root per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import make_asgi_app

from services import __version__
from services.core import heap
from services.core.config import Settings
from services.core.db.engine import make_engine, make_sessions
from services.core.db.migrate import known_revisions, schema_head
from services.core.events.bus import open_bus
from services.core.events.consumer import Subscription
from services.core.events.workers import running_bus
from services.core.http import health, reference
from services.core.http.auth import KeyCache, revocations
from services.core.http.limits import BodySizeLimit
from services.core.http.observability import RequestMetrics
from services.core.http.problems import document_problems, install_problem_handlers
from services.core.logs import RequestIds
from services.core.ratelimit import RateLimiter

DESCRIPTION = """
Early warning for continuity risks in Dutch crucial mental health care (*cruciale ggz*).
Providers and coordinating insurers post department-level signals; the rules engine judges each
department; alerts go up the ladder to the regional and national tables.
"""


def create_app(
    settings: Settings,
    database_url: str,
    *,
    routers: Sequence[APIRouter] = (),
    subscriptions: Sequence[Subscription] = (),
    relay: bool = False,
    background: Sequence[Callable[[FastAPI], AbstractAsyncContextManager[object]]] = (),
    ready_needs_bus: bool = True,
    gc_thresholds: tuple[int, int, int] | None = None,
) -> FastAPI:
    """An app with health, reference lists and the given service routers, on its own engine.

    The process also runs its share of the bus: the consumers of `subscriptions` and, with
    `relay`, the outbox relay (needed on the Kafka bus only); and its `background` work (e.g. a
    schedule), each a context that runs while the app does. `ready_needs_bus=False` keeps
    `/readyz` at 200 while the bus is away (the signal API: the outbox keeps what comes in).
    `gc_thresholds` sets the garbage collector once started (`heap.py`; None: CPython's).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = make_sessions(engine)
        app.state.schema_head = schema_head(database_url)
        app.state.known_revisions = known_revisions(database_url)
        app.state.ready_needs_bus = ready_needs_bus
        app.state.key_cache = KeyCache()
        app.state.rate_limiter = RateLimiter(
            rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
        )
        # What start-up made lives for the whole process: keep it out of every collection, or
        # full collections of it stall requests for tens of milliseconds (bench/ingest.py).
        heap.settle(gc_thresholds)
        bus = open_bus(settings, database_url, app.state.sessions)
        app.state.bus = bus
        try:
            async with (
                running_bus(bus, subscriptions, relay=relay),
                revocations(app.state.key_cache, database_url),
                AsyncExitStack() as stack,
            ):
                for start in background:
                    await stack.enter_async_context(start(app))
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Vroegsignaal",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        idle_timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestIds)  # outermost: every log line of the request carries its id
    app.mount("/metrics", make_asgi_app())
    app.include_router(health.router)
    app.include_router(reference.router)
    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

"""Structured logs: one JSON object per line, with the request, event and department they are
about, so one signal can be followed from the API through the rules and the notifier to its
webhook by grepping one id.

Every `logging` call in the code base goes through structlog's formatter; the context comes
from context variables (`bind`), set by the request middleware and by the consumers for each
event. Values under names that may hold secrets or free text are never written.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Names whose values never reach a log line: credentials, secrets, and people's free text.
REDACTED_KEYS = frozenset(
    {"authorization", "api_key", "key", "password", "secret", "token", "note", "smtp_url"}
)
REQUEST_ID_HEADER = "x-request-id"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's terminal copy of the message
    for name in list(event):
        if name.lower() in REDACTED_KEYS:
            event[name] = "[redacted]"
    return event


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    """Send every log record to stdout, as JSON lines (or readable lines for a terminal)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        # `log.info("...", extra={...})` from the standard library: the extras become fields.
        foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), _redact],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "aiokafka", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


@contextmanager
def bound(**values: object) -> Iterator[None]:
    """Add values to every log line written inside the block (this task only)."""
    tokens = structlog.contextvars.bind_contextvars(
        **{k: str(v) for k, v in values.items() if v is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


class RequestIds:
    """ASGI middleware: every request gets an id (the caller's `X-Request-ID` if sane), bound to
    its log lines and echoed in the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if _sane(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with bound(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _sane(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)

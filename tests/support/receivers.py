"""Real receiving ends for delivery tests: an HTTP webhook receiver and an SMTP server.

`WebhookReceiver` is a small ASGI app served by uvicorn on a free local port, in the test's own
event loop. It verifies every call with the reference `standardwebhooks` library (the way a
customer would), and can be told to fail the next N calls, to be slow, or to redirect; it counts
the calls it is handling at once. `SmtpSink` is an aiosmtpd server (its own thread) that keeps
every message, parsed. Both are async context managers; fixtures in
tests/notify/deliveries/conftest.py start them per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One call the receiver accepted: verified signature, parsed body."""

    webhook_id: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]
    at: float  # time.monotonic() when it arrived


@dataclass
class WebhookReceiver:
    """A webhook endpoint that verifies signatures; configure it between calls."""

    secret: str | None = None  # verify with this (the `whsec_...` from registration)
    status: int = 204  # the answer to a verified call
    fail_next: int = 0  # answer `fail_status` to this many calls first
    fail_status: int = 500  # e.g. 503 for a receiver behind a maintenance page
    fail_if: Callable[[dict[str, Any]], bool] | None = None  # ...only to calls whose body matches
    delay: float = 0.0  # seconds before answering
    redirect_to: str | None = None  # answer 307 to this location instead
    path: str = "/hook"
    accepted: list[Received] = field(default_factory=list)
    calls: int = 0  # every call, failed or not
    failed_ids: list[str] = field(default_factory=list)  # the `webhook-id` of each failed call
    refused_signatures: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    host_headers: list[str] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)  # one per connection: keep-alive
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def ids(self) -> list[str]:
        """The `webhook-id` of every accepted call, in arrival order."""
        return [r.webhook_id for r in self.accepted]

    @property
    def types(self) -> list[str]:
        return [str(r.payload.get("type")) for r in self.accepted]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls += 1
        self.host_headers.append(headers.get("host", ""))
        client = scope.get("client")
        self.client_ports.append(int(client[1]) if client else 0)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            failing = self.fail_next > 0 and (self.fail_if is None or self.fail_if(_json(body)))
            if failing:
                self.fail_next -= 1
                self.failed_ids.append(headers.get("webhook-id", ""))
            if self.delay:
                await asyncio.sleep(self.delay)
            if failing:
                await _answer(send, self.fail_status, b"receiver down for maintenance")
            elif self.redirect_to is not None:
                await _answer(send, 307, b"", [(b"location", self.redirect_to.encode())])
            else:
                await self._verify_and_accept(headers, body, send)
        finally:
            self.in_flight -= 1
            self._arrived.set()

    async def _verify_and_accept(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        if self.secret is None:
            await _answer(send, 500, b"receiver has no secret to verify with")
            return
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            self.refused_signatures.append(str(exc))
            await _answer(send, 401, b"bad signature")
            return
        self.accepted.append(
            Received(headers["webhook-id"], headers, body, payload, time.monotonic())
        )
        await _answer(send, self.status, b"")

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """The accepted calls once there are `count` (fails the test after `within` s)."""
        async with asyncio.timeout(within):
            while len(self.accepted) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.accepted)

    async def wait_calls(self, count: int, within: float = 10.0) -> None:
        """Until `count` calls arrived, accepted or not."""
        async with asyncio.timeout(within):
            while self.calls < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def __aenter__(self) -> WebhookReceiver:
        # A port given beforehand is kept: a receiver that comes up where one was down.
        self.port = self.port or free_port()
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task


class _QuietServer(uvicorn.Server):
    """uvicorn in the test's loop, leaving Ctrl-C to pytest (and several servers side by side)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Collector:
    """aiosmtpd handler: keep each message; refuse recipients while told to."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._sink.refuse_recipients:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._sink.messages.append(message)
        self._sink.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    """A real SMTP server on a free local port that keeps what it is sent."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_recipients: bool = False
    port: int = 0
    _controller: Controller | None = None

    @property
    def url(self) -> str:
        """The value for VROEGSIGNAAL_SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"

    async def wait_for(self, count: int, within: float = 10.0) -> list[EmailMessage]:
        async with asyncio.timeout(within):
            # Messages arrive on aiosmtpd's thread, where an asyncio.Event cannot be set.
            while len(self.messages) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return list(self.messages)

    async def __aenter__(self) -> SmtpSink:
        self.port = free_port()
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)
        await asyncio.to_thread(self._controller.start)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)

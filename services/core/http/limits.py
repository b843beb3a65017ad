"""Request bodies larger than the limit are refused with 413 before they are read whole, and
bodies that stall with 408: a client that declares a body and stops sending would otherwise hold
its connection and a coroutine for as long as it keeps the socket open (uvicorn has no body
timeout)."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised inside `receive` once a streamed body passes the limit."""


class BodyStalled(Exception):
    """Raised inside `receive` when the next piece of the body does not come in time."""


def _problem(status: int, title: str, detail: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()


class BodySizeLimit:
    """ASGI middleware: `Content-Length` over the limit → 413 at once; a chunked body is counted
    as it streams and cut off at the limit; a body whose next piece takes longer than
    `idle_timeout` seconds → 408 (a slow but steady body is fine: the clock restarts at every
    piece). Once the body is complete, `receive` is left alone (a live feed waits on it for the
    client's disconnect)."""

    def __init__(self, app: ASGIApp, max_bytes: int, idle_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False
            if too_large:
                await self._refuse(send)
                return
        received = 0
        response_started = False
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete or self.idle_timeout is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.idle_timeout)
                except TimeoutError:
                    raise BodyStalled from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
                body_complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._refuse(send)
        except BodyStalled:
            if not response_started:
                await self._refuse(
                    send,
                    408,
                    "Request Timeout",
                    f"No more of the request body came for {self.idle_timeout:g} seconds.",
                )

    async def _refuse(
        self, send: Send, status: int = 413, title: str = "Content Too Large", detail: str = ""
    ) -> None:
        body = _problem(
            status,
            title,
            detail
            or f"The request body is larger than {self.max_bytes} bytes; send smaller batches.",
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

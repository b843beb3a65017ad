"""A fast local webhook receiver for the delivery and end-to-end benchmarks, and a raw client.

    .venv/bin/python -m bench.e2e_receiver --port PORT

One process on uvloop, HTTP/1.1 with keep-alive over asyncio streams, no framework: it answers a
webhook with `204` (after `delay` seconds, when told to be slow), so that what sends to it, not
the receiver, sets the pace. Control calls, from the benchmark, under `/_`:

- `POST /_config` `{"delay": 0.2, "mode": "count" | "standard" | "alertmanager",
  "secrets": {"/hook/a": "whsec_..."}}`: how to answer and what to record; clears the records.
- `GET /_records`: `{"calls", "accepted", "refused", "max_in_flight", "received": [[unix time,
  key, type], ...]}`.

Modes: `count` reads the body and counts it (the throughput phases); `standard` verifies every
call's Standard Webhooks signature with the reference `standardwebhooks` library and the secret
registered for its path (`401` and counted as refused when it does not verify, as a customer's
receiver would), and records when it arrived with the signal id it carries (`data.signal_id`);
`alertmanager` parses Alertmanager's webhook body and records each alert's `signal` label. The
time is `time.time()` when the whole request has been read, before any verification.

`raw_load` is the receiver's own baseline: a bare asyncio client that sends one prepared request
at a time on each of `concurrency` keep-alive connections, with no HTTP library at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

REPO = Path(__file__).resolve().parents[1]
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


def _answer(status: int, reason: str, body: bytes = b"", kind: str = "text/plain") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


@dataclass
class Receiver:
    """What the receiver is told to do, and what it saw."""

    mode: str = "count"
    delay: float = 0.0
    secrets: dict[str, Webhook] = field(default_factory=dict)
    calls: int = 0
    accepted: int = 0
    refused: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    received: list[tuple[float, str, str]] = field(default_factory=list)

    def configure(self, settings: dict[str, Any]) -> None:
        self.mode = str(settings.get("mode", "count"))
        self.delay = float(settings.get("delay", 0.0))
        self.secrets = {path: Webhook(s) for path, s in settings.get("secrets", {}).items()}
        self.calls = self.accepted = self.refused = self.max_in_flight = 0
        self.received = []

    def records(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "accepted": self.accepted,
            "refused": self.refused,
            "max_in_flight": self.max_in_flight,
            "received": self.received,
        }

    def webhook(self, path: str, headers: dict[str, str], body: bytes, at: float) -> bytes:
        """Judge one webhook call; the answer's bytes."""
        if self.mode == "count":
            self.accepted += 1
            return _NO_CONTENT
        if self.mode == "alertmanager":
            for alert in json.loads(body).get("alerts", ()):
                labels = alert.get("labels", {})
                self.received.append((at, str(labels.get("signal", "")), "alertmanager"))
            self.accepted += 1
            return _NO_CONTENT
        verifier = self.secrets.get(path)
        if verifier is None:
            self.refused += 1
            return _answer(404, "Not Found", b"no endpoint here")
        try:
            payload = verifier.verify(body, headers)
        except WebhookVerificationError:
            self.refused += 1
            return _answer(401, "Unauthorized", b"bad signature")
        data = payload.get("data", {})
        self.received.append((at, str(data.get("signal_id") or ""), str(payload.get("type"))))
        self.accepted += 1
        return _NO_CONTENT


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


async def serve_connection(
    receiver: Receiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            request = await _read_request(reader)
            if request is None:
                return
            at = time.time()
            method, path, headers, body = request
            if path.startswith("/_"):
                if path == "/_config" and method == "POST":
                    receiver.configure(json.loads(body))
                    writer.write(_NO_CONTENT)
                else:
                    records = json.dumps(receiver.records()).encode()
                    writer.write(_answer(200, "OK", records, "application/json"))
                await writer.drain()
                continue
            receiver.calls += 1
            receiver.in_flight += 1
            receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
            try:
                if receiver.delay:
                    await asyncio.sleep(receiver.delay)
                writer.write(receiver.webhook(path, headers, body, at))
                await writer.drain()
            finally:
                receiver.in_flight -= 1
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def run_server(port: int) -> None:
    receiver = Receiver()
    server = await asyncio.start_server(
        lambda r, w: serve_connection(receiver, r, w), "127.0.0.1", port, backlog=1024
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# --- the receiver's own baseline: a client with no HTTP library ---------------------------------


async def raw_load(
    port: int, request: bytes, *, concurrency: int, seconds: float
) -> tuple[int, float]:
    """Send `request` one at a time on each of `concurrency` connections for `seconds`;
    (answers, seconds taken). Every answer must be a 2xx without a body."""
    stop_at = time.perf_counter() + seconds
    answered = 0

    async def one_connection() -> None:
        nonlocal answered
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 2"):
                    raise RuntimeError(f"the receiver answered {head[:40]!r}")
                answered += 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return answered, time.perf_counter() - started


def raw_request(path: str, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- the benchmark's handle on a receiver process ----------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningReceiver:
    """A receiver in a process of its own: where it listens, and its control calls."""

    port: int
    process: psutil.Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def configure(
        self, mode: str = "count", delay: float = 0.0, secrets: dict[str, str] | None = None
    ) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                f"{self.base}/_config",
                json={"mode": mode, "delay": delay, "secrets": secrets or {}},
            )
            answer.raise_for_status()

    async def records(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.get(f"{self.base}/_records")
            answer.raise_for_status()
            found: dict[str, Any] = answer.json()
            return found


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[RunningReceiver]:
    """Start `python -m bench.e2e_receiver` on a free port; stop it on the way out."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.e2e_receiver",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError("the receiver did not start")
        yield RunningReceiver(port, psutil.Process(process.pid))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_receiver")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(run_server(args.port))


if __name__ == "__main__":
    main()

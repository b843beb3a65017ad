"""One webhook call: check the target again, sign, POST, and say what came of it.

No transaction is open here (STYLE.md: claim, send, record). The call connects to the address the
SSRF guard just checked, with the registered host name in `Host` and as the TLS server name, so a
DNS answer that changed since registration cannot steer it elsewhere. Redirects are never
followed: a 3xx is a failed attempt, because following one would call a URL nobody checked.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from services.notify.deliveries.outcome import Outcome
from services.notify.deliveries.signing import signed_headers
from services.notify.deliveries.ssrf import Resolver, UnsafeUrl, resolve_target

ERROR_BODY_BYTES = 200  # of a refusing receiver's answer, for the delivery log
DRAIN_BYTES = 64 * 1024  # read at most this much of any answer


class EndpointClients:
    """HTTP clients per endpoint host (scheme, name, port), one connection each.

    Calls connect to an IP address with the host's name as the TLS server name; a client shared
    by several hosts could reuse a connection opened for one host (its certificate, its SNI) for
    another on the same address, so clients are never shared between hosts. Within a host, each
    call borrows a client of its own for its duration (`lease`) and gives it back, its connection
    kept alive for the next call: up to `max_connections` per host, a call beyond that waits for
    one to come back.

    Why not one pooled client per host: httpcore's pool does work in proportion to its
    connections at every request and every response closed (a scan of every connection, some of
    it squared, each idle one polled with a system call), so one client with 50 connections in
    use spent about 9 ms of CPU per call and sent about 110 calls per second, against 1.2 ms and
    about 800 with a client per connection (encode/httpx#3215; `bench/e2e_delivery.py`). A
    client with a single connection has nothing to scan. Connections
    idle longer than httpcore's keep-alive expiry are closed by their client on its next call.
    The number of clients is bounded by the distinct hosts of the registered endpoints times
    `max_connections`.
    """

    def __init__(self, *, timeout: float, max_connections: int = 64) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._hosts: dict[tuple[str, str, int | None], _HostClients] = {}
        # One TLS context for every client: making one loads the CA certificates (about 25 ms
        # of CPU), too dear for each of up to `max_connections` clients per host.
        self._tls: ssl.SSLContext | None = None

    @asynccontextmanager
    async def lease(self, url: httpx.URL) -> AsyncIterator[httpx.AsyncClient]:
        """A client for one call to the URL's host, for the duration of the call."""
        key = (url.scheme, url.raw_host.decode("ascii"), url.port)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _HostClients(self._new_client, self._max_connections)
        client = await host.take()
        try:
            yield client
        finally:
            host.give_back(client)

    def _new_client(self) -> httpx.AsyncClient:
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)  # as the clients had
        # No redirects; no proxies from the environment (a proxy would make the address check
        # meaningless).
        return httpx.AsyncClient(
            verify=self._tls,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def aclose(self) -> None:
        hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            await host.aclose()


class _HostClients:
    """The single-connection clients of one host: free ones (the most recently used first, so
    warm connections are reused and cold ones expire) and calls waiting for one."""

    def __init__(self, make: Callable[[], httpx.AsyncClient], limit: int) -> None:
        self._make = make
        self._limit = limit
        self._all: list[httpx.AsyncClient] = []
        self._free: list[httpx.AsyncClient] = []
        self._waiting: deque[asyncio.Future[httpx.AsyncClient]] = deque()

    async def take(self) -> httpx.AsyncClient:
        if self._free:
            return self._free.pop()
        if len(self._all) < self._limit:
            client = self._make()
            self._all.append(client)
            return client
        waiter: asyncio.Future[httpx.AsyncClient] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(waiter.result())  # handed over as we were cancelled: pass it on
            else:
                self._waiting.remove(waiter)
            raise

    def give_back(self, client: httpx.AsyncClient) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(client)
                return
        self._free.append(client)

    async def aclose(self) -> None:
        clients, self._all, self._free = self._all, [], []
        for client in clients:
            await client.aclose()


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


async def _drain(response: httpx.Response) -> bytes:
    """Read the answer's body up to DRAIN_BYTES: a body read to its end lets the connection be
    kept alive for the next call; a larger one is cut off (a hostile receiver may send
    gigabytes) and its connection closed. Returns the start, for the delivery log."""
    taken = b""
    async for chunk in response.aiter_raw():
        if len(taken) < ERROR_BODY_BYTES:
            taken += chunk[: ERROR_BODY_BYTES - len(taken)]
        drained = response.num_bytes_downloaded
        if drained > DRAIN_BYTES:
            break
    return taken


async def post_webhook(
    clients: EndpointClients,
    *,
    url: str,
    secret: str,
    message_id: str,
    body: str,
    seconds: float,
    allow_private: bool,
    resolver: Resolver,
) -> Outcome:
    """POST a signed body once; 2xx is success, anything else a failed attempt."""
    started = time.perf_counter()
    try:
        target = await resolve_target(url, allow_private=allow_private, resolver=resolver)
    except UnsafeUrl as exc:
        return Outcome.failure(f"refused before sending: {exc}", duration_ms=_elapsed_ms(started))
    headers = signed_headers(secret, message_id=message_id, body=body, at=datetime.now(UTC))
    headers["host"] = target.host_header
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        # httpx's timeout bounds each read; this bounds the whole call (a slow drip included),
        # and the wait for a free connection to the host.
        async with asyncio.timeout(seconds), clients.lease(target.url) as client:
            request = client.build_request(
                "POST",
                target.connect_url,
                content=body.encode(),
                headers=headers,
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                start = await _drain(response)
            finally:
                await response.aclose()
            status = response.status_code
            if 200 <= status < 300:
                return Outcome(ok=True, duration_ms=_elapsed_ms(started), status_code=status)
            if 300 <= status < 400:
                location = response.headers.get("location", "(no Location)")
                error = f"HTTP {status}: redirect to {location} not followed"
            else:
                snippet = start.decode("utf-8", "replace").strip()
                error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    except (TimeoutError, httpx.TimeoutException):
        return Outcome.failure(f"no answer within {seconds:g} s", duration_ms=_elapsed_ms(started))
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return Outcome.failure(
            f"{type(exc).__name__}: {reason} ({target.address})", duration_ms=_elapsed_ms(started)
        )
    return Outcome.failure(error, duration_ms=_elapsed_ms(started), status_code=status)

"""One webhook call: check the target again, sign, POST, and say what came of it.

No transaction is open here (STYLE.md: claim, send, record). The call connects to the address the
SSRF guard just checked, with the registered host name in `Host` and as the TLS server name, so a
DNS answer that changed since registration cannot steer it elsewhere. Redirects are never
followed: a 3xx is a failed attempt, because following one would call a URL nobody checked.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from services.notify.deliveries.outcome import Outcome
from services.notify.deliveries.signing import signed_headers
from services.notify.deliveries.ssrf import Resolver, UnsafeUrl, resolve_target

ERROR_BODY_BYTES = 200  # of a refusing receiver's answer, for the delivery log
DRAIN_BYTES = 64 * 1024  # read at most this much of any answer


class EndpointClients:
    """One HTTP client per endpoint host (scheme, name, port).

    Calls connect to an IP address with the host's name as the TLS server name; a client shared
    by several hosts could reuse a connection opened for one host (its certificate, its SNI) for
    another on the same address. One client per host keeps keep-alive (encode/httpx#3215: new
    connections are what make httpx slow under concurrency) and never mixes hosts. The number
    of clients is bounded by the distinct hosts of the registered endpoints.
    """

    def __init__(self, *, timeout: float, max_connections: int = 64) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._clients: dict[tuple[str, str, int | None], httpx.AsyncClient] = {}

    def client_for(self, url: httpx.URL) -> httpx.AsyncClient:
        key = (url.scheme, url.raw_host.decode("ascii"), url.port)
        client = self._clients.get(key)
        if client is None:
            # No redirects; no proxies from the environment (a proxy would make the address
            # check meaningless).
            client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self._timeout),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
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
    client = clients.client_for(target.url)
    request = client.build_request(
        "POST", target.connect_url, content=body.encode(), headers=headers, extensions=extensions
    )
    try:
        # httpx's timeout bounds each read; this bounds the whole call (a slow drip included).
        async with asyncio.timeout(seconds):
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

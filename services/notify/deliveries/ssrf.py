"""The SSRF guard: a webhook URL must be `https` and reach only public addresses.

A subscription URL is chosen by a customer, and our notifier calls it from inside our network; a
URL pointing at `127.0.0.1`, `10.x`, `169.254.169.254` (cloud metadata) and the like would turn the
notifier into a proxy into that network. So the URL is checked at registration and again at every
delivery (DNS can change between the two: "DNS rebinding"), and the delivery connects to the very
address that was checked (`ResolvedTarget.connect_url`), never resolving the name a second time.
`VROEGSIGNAAL_WEBHOOK_ALLOW_PRIVATE=true` lifts the address and `https` rules for tests and
closed networks; the name is still resolved once and that address used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name and port to IP addresses (strings); injectable for tests."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0  # a name that takes longer is refused, not waited for


class UnsafeUrl(ValueError):
    """The URL may not be called: its message says why, in one line, for the API's 422."""


@dataclass(frozen=True)
class ResolvedTarget:
    """Where one call goes: the checked address, and what the request must say to the host."""

    url: httpx.URL  # as registered
    address: str  # the checked IP address the call connects to
    connect_url: httpx.URL  # the URL with the address in place of the host name
    host_header: str  # the `Host` header: the registered host (and port, if not the default)
    sni_hostname: str | None  # TLS server name (and certificate name) when the host is a name


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver gives for a name."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be called, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address are judged by that address too.
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped)
        if address in _NAT64:
            return refusal(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        if address.sixtofour is not None and (embedded := refusal(address.sixtofour)):
            return embedded
        if address.teredo is not None:
            return "a Teredo tunnel address"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in _SHARED_ADDRESS_SPACE, "a carrier-grade NAT address (100.64.0.0/10)"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def parse_url(url: str, *, allow_private: bool) -> httpx.URL:
    """The URL, if its form is acceptable (scheme, host, no credentials); else UnsafeUrl."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeUrl("the URL may not contain spaces, line breaks or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed:
        raise UnsafeUrl(
            "the URL must start with https://"
            if not allow_private
            else "the URL must start with https:// or http://"
        )
    if not parsed.host:
        raise UnsafeUrl("the URL has no host")
    if parsed.userinfo:
        raise UnsafeUrl("the URL may not carry a user name or password; we sign every call")
    if parsed.fragment:
        raise UnsafeUrl("the URL may not have a #fragment")
    return parsed


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_target(url: str, *, allow_private: bool, resolver: Resolver) -> ResolvedTarget:
    """Check a URL and every address its host resolves to; UnsafeUrl says why not.

    Every address must be public, not just the first: a name that resolves to one public and
    one private address could otherwise be steered to the private one.
    """
    parsed = parse_url(url, allow_private=allow_private)
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    literal = _literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                found = await resolver(host, port)
        except TimeoutError as exc:
            raise UnsafeUrl(
                f"the host {host} did not resolve within {RESOLVE_SECONDS:g} s"
            ) from exc
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"the host {host} cannot be resolved ({exc})") from exc
        addresses = []
        for text in found:
            address = _literal(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
            if address is None:
                raise UnsafeUrl(f"the host {host} resolved to something that is not an address")
            addresses.append(address)
        if not addresses:
            raise UnsafeUrl(f"the host {host} does not resolve to any address")
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                where = "is" if literal is not None else f"resolves to {address}, which is"
                raise UnsafeUrl(
                    f"the host {host} {where} {reason}; webhooks go to public addresses only"
                )
    chosen = str(addresses[0])
    return ResolvedTarget(
        url=parsed,
        address=chosen,
        connect_url=parsed.copy_with(host=chosen),
        host_header=parsed.netloc.decode("ascii"),  # httpx leaves a default port out
        sni_hostname=host if literal is None else None,
    )

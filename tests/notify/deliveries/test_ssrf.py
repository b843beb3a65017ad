"""The SSRF guard on its own: which addresses and URLs are refused, and where a call connects."""

from __future__ import annotations

import ipaddress

import pytest

from services.notify.deliveries.ssrf import Resolver, UnsafeUrl, refusal, resolve_target


def resolver_of(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (refused, not bound)
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),  # reserved, which Python counts as private
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("2001:db8::1", "private"),  # documentation
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    refused = refusal(ipaddress.ip_address(address))
    assert refused is not None and reason in refused


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:85e5", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.nl/x", "https://"),
        ("ftp://hooks.example.nl/x", "https://"),
        ("https://user:pw@hooks.example.nl/x", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.nl/a b", "spaces"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]:8443/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://" + "a" * 2100 + ".nl/", "longer than"),
    ],
)
async def test_urls_refused_without_allow_private(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrl, match=message):
        await resolve_target(url, allow_private=False, resolver=resolver_of("93.184.215.14"))


async def test_every_resolved_address_must_be_public() -> None:
    with pytest.raises(UnsafeUrl, match=r"resolves to 10\.0\.0\.5, which is a private address"):
        await resolve_target(
            "https://hooks.example.nl/x",
            allow_private=False,
            resolver=resolver_of("93.184.215.14", "10.0.0.5"),
        )


async def test_unresolvable_host_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeUrl, match="cannot be resolved"):
        await resolve_target("https://nowhere.invalid/", allow_private=False, resolver=fails)


async def test_the_call_connects_to_the_checked_address_with_the_registered_host() -> None:
    target = await resolve_target(
        "https://hooks.example.nl:8443/in?x=1",
        allow_private=False,
        resolver=resolver_of("93.184.215.14"),
    )
    assert str(target.connect_url) == "https://93.184.215.14:8443/in?x=1"
    assert target.host_header == "hooks.example.nl:8443"
    assert target.sni_hostname == "hooks.example.nl"  # the certificate is checked for the name


async def test_allow_private_lifts_the_address_and_https_rules_only() -> None:
    target = await resolve_target(
        "http://receiver.test:8080/hook", allow_private=True, resolver=resolver_of("127.0.0.1")
    )
    assert str(target.connect_url) == "http://127.0.0.1:8080/hook"
    with pytest.raises(UnsafeUrl, match="https:// or http://"):
        await resolve_target("file:///etc/passwd", allow_private=True, resolver=resolver_of())

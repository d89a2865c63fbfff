"""Where a webhook may point (issue: webhooks that cannot reach inside). Every form of an internal
address is refused, at set time and at delivery time, and a delivery connects to the address it
checked, not to whatever a second lookup returns."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from datetime import UTC, datetime

import anyio
import httpx
import pytest

from ezla.distribution.addresses import WebhookPolicy, address_problem, pin, resolve_and_pin
from ezla.distribution.channels import Channels, DeliveryFailed
from ezla.distribution.outbox import Claim
from ezla.errors import BadRequest
from ezla.events import EzlaId

REFUSED = {
    # IPv4
    "127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local (cloud metadata)",
    "100.64.0.1": "carrier-grade NAT",
    "0.0.0.0": "this network",
    "192.0.0.8": "IETF protocol assignments",
    "192.0.2.1": "documentation",
    "192.88.99.1": "6to4 relay anycast",
    "198.18.0.1": "benchmarking",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast (SSDP)",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fec0::1": "site-local",
    "fc00::1": "unique-local",
    "fd12:3456::1": "unique-local",
    "ff02::1": "multicast",
    "ff0e::1": "global multicast",
    "64:ff9b::a9fe:a9fe": "NAT64 of 169.254.169.254",
    "64:ff9b:1::a9fe:a9fe": "local-use NAT64",
    "2002:a9fe:a9fe::": "6to4 of 169.254.169.254",
    "2002:0808:0808::1": "6to4 even of a public IPv4",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation (RFC 9637)",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:8.8.8.8": "IPv4-mapped, even of a public address",
    "::127.0.0.1": "IPv4-compatible (deprecated)",
    "100::1": "discard-only",
}


def _claim(payload: str) -> Claim:
    return Claim(
        id=1,
        ezla_id=EzlaId("e"),
        event="issued",
        recipient="employer_webhook",
        idempotency_key="k",
        fence=1,
        attempts=0,
        created_at=datetime.now(UTC),
        address="payer",
        payload=payload,
    )


ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888"]


@pytest.mark.parametrize("address", list(REFUSED), ids=[f"{a} ({why})" for a, why in REFUSED.items()])
def test_internal_address_forms_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(BadRequest):
        anyio.run(resolve_and_pin, f"https://{literal}/hook", WebhookPolicy())


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_is_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None
    literal = f"[{address}]" if ":" in address else address
    target = anyio.run(resolve_and_pin, f"https://{literal}/hook", WebhookPolicy())
    assert target.url == f"https://{literal}/hook"


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # clear text
        "https://93.184.216.34:8443/hook",  # a port not configured
        "https://93.184.216.34:22/hook",
        "https://user:pw@93.184.216.34/hook",  # credentials in the URL
        "https://2852039166/hook",  # 169.254.169.254 as one decimal number: checked as resolved
        "https://0xa9fea9fe/hook",
        "https://0251.0376.0251.0376/hook",  # octal
        "ftp://93.184.216.34/",
        "https:///nohost",
        "https://93.184.216.34:99999/",
    ],
)
def test_url_forms_are_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        anyio.run(resolve_and_pin, url, WebhookPolicy())


def test_configured_ports_are_allowed() -> None:
    policy = WebhookPolicy(ports=frozenset({443, 8443}))
    assert anyio.run(resolve_and_pin, "https://93.184.216.34:8443/h", policy).url == "https://93.184.216.34:8443/h"


def test_a_name_with_any_internal_address_is_refused() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(BadRequest, match="resolves to"):
        anyio.run(resolve_and_pin, "https://hooks.example.com/x", WebhookPolicy(), mixed)


def test_dns_rebinding_is_caught_at_delivery() -> None:
    """Public when the webhook was set, 169.254.169.254 when it is called: the delivery is refused."""
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    first = anyio.run(resolve_and_pin, "https://hooks.example.com/x", WebhookPolicy(), rebinding)
    assert first.url == "https://93.184.216.34/x" and first.sni_hostname == "hooks.example.com"
    with pytest.raises(BadRequest):
        anyio.run(resolve_and_pin, "https://hooks.example.com/x", WebhookPolicy(), rebinding)


def test_pinned_https_keeps_the_name_for_host_and_tls() -> None:
    target = pin("https://hooks.example.com/x?y=1", ipaddress.ip_address("2606:4700::1"), "hooks.example.com", 443)
    assert target.url == "https://[2606:4700::1]/x?y=1"
    assert target.host_header == "hooks.example.com" and target.sni_hostname == "hooks.example.com"


def test_delivery_connects_to_the_checked_address_not_a_second_lookup() -> None:
    """The worker's webhook request goes to the address the policy checked, with the payer's host
    name in Host: a name that resolves nowhere (``.invalid``) still reaches our receiver."""
    seen: dict[str, str] = {}
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            head = conn.recv(65536).decode("latin-1")
            seen["host"] = next(h.split(":", 1)[1].strip() for h in head.split("\r\n") if h.lower().startswith("host:"))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    lookups: list[str] = []

    async def resolver(host: str, p: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    channels = Channels(
        registry_url="http://127.0.0.1:1",
        registry_token=None,
        webhook_policy=WebhookPolicy(insecure=True),
        resolver=resolver,
    )
    claim = _claim(json.dumps({"x": 1}))
    url = f"http://hooks.invalid:{port}/hook"

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await channels.deliver_remote(claim, client, (url, "s" * 20))

    anyio.run(go)
    server.close()
    assert lookups == ["hooks.invalid"] and seen["host"] == f"hooks.invalid:{port}"


def test_strict_delivery_to_an_internal_address_fails_without_connecting() -> None:
    async def resolver(host: str, p: int) -> list[str]:
        return ["10.0.0.7"]

    channels = Channels(registry_url="http://127.0.0.1:1", registry_token=None, resolver=resolver)
    claim = _claim("{}")

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await channels.deliver_remote(claim, client, ("https://rebound.example.com/h", "s" * 20))

    with pytest.raises(DeliveryFailed, match="address refused"):
        anyio.run(go)


def test_an_international_name_travels_in_its_ascii_form() -> None:
    seen: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["93.184.216.34"]

    target = anyio.run(resolve_and_pin, "https://zażółć.example.pl/hook", WebhookPolicy(), resolver)
    assert seen == ["xn--za-6ja4f8n1l.example.pl"]
    assert target.host_header == "xn--za-6ja4f8n1l.example.pl" and target.sni_hostname == seen[0]

"""Where a webhook may point: globally routable unicast addresses on allowed ports, checked when the
webhook is set and again, against a fresh resolution, on every delivery, whose connection then goes
to the address that was checked (no second lookup for DNS rebinding to win).

An allow-list, not Python's ``is_global`` alone: that calls NAT64 (64:ff9b::/96), 6to4
(2002::/16), site-local (fec0::/10), IPv4-mapped forms and multicast "global". IPv6 must be in
2000::/3 (global unicast) and outside the special blocks inside it; IPv4 must be ``is_global`` and
outside the special-purpose blocks that flag misses (IANA special-purpose registries, RFC 6890).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import anyio

from ezla.errors import BadRequest
from ezla.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_FORBIDDEN_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID, ...
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: embeds any IPv4 address, 169.254.169.254 included
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_FORBIDDEN_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address``; None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address.sixtofour is not None or address.teredo is not None:
            return "an IPv6 form of an IPv4 address"
        if address not in _GLOBAL_UNICAST_V6 or any(address in n for n in _FORBIDDEN_V6):
            return "not a global unicast IPv6 address"
        if not address.is_global:
            return "not a globally routable address"
        return None
    if address.is_multicast or any(address in n for n in _FORBIDDEN_V4) or not address.is_global:
        return "not a globally routable IPv4 address"
    return None


@dataclass(frozen=True)
class WebhookPolicy:
    """``insecure`` (development and tests only) allows http, any port and any address."""

    insecure: bool = False
    ports: frozenset[int] = field(default_factory=lambda: frozenset({443}))

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        return cls(insecure=settings.webhook_allow_insecure, ports=frozenset(settings.webhook_ports))

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port of an acceptable webhook URL (before any resolution)."""
        parts = urlsplit(url)
        if len(url) > 500 or any(not ch.isprintable() or ch.isspace() for ch in url):
            raise BadRequest("url must be an absolute URL of at most 500 characters", field="url")
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise BadRequest("url has an invalid port", field="url") from exc
        if not host or parts.username is not None or parts.password is not None:
            raise BadRequest("url must be an absolute URL with a host and no credentials", field="url")
        if parts.scheme not in (("https", "http") if self.insecure else ("https",)):
            raise BadRequest("url must be https", field="url")
        if not host.isascii():  # an international name: its ASCII form is what DNS, Host and SNI carry
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise BadRequest("url has a host name that is not a valid domain name", field="url") from exc
        port = port or (443 if parts.scheme == "https" else 80)
        if not self.insecure and port not in self.ports:
            allowed = ", ".join(str(p) for p in sorted(self.ports))
            raise BadRequest(f"webhook port must be one of: {allowed}", field="url")
        return host, port

    def choose(self, host: str, addresses: Iterable[str]) -> IPAddress:
        """The address to connect to: every address the name has must be allowed (a name with one
        private address among public ones is refused), then the first is used."""
        resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if not resolved:
            raise BadRequest("the webhook host does not resolve", field="url")
        if not self.insecure:
            for address in resolved:
                problem = address_problem(address)
                if problem is not None:
                    raise BadRequest(f"the webhook host resolves to {problem}", field="url")
        return resolved[0]


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def resolve_now(host: str, port: int) -> list[str]:
    """Blocking resolution for the check when a webhook is set."""
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]
    except OSError as exc:
        raise BadRequest("the webhook host does not resolve", field="url") from exc


@dataclass(frozen=True)
class PinnedTarget:
    """A webhook URL rewritten to the checked address; Host and TLS SNI keep the name, so the
    receiver sees its own name and the certificate is verified against it."""

    url: str
    host_header: str
    sni_hostname: str | None


def pin(url: str, address: IPAddress, host: str, port: int) -> PinnedTarget:
    parts = urlsplit(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    default_port = 443 if parts.scheme == "https" else 80
    netloc = literal if port == default_port else f"{literal}:{port}"
    is_literal = host.replace(".", "").isdigit() or ":" in host
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default_port else f"{named}:{port}"
    sni = host if parts.scheme == "https" and not is_literal else None
    return PinnedTarget(urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, sni)


async def resolve_and_pin(url: str, policy: WebhookPolicy, resolver: Resolver = system_resolver) -> PinnedTarget:
    """At delivery time: check the URL, resolve afresh, check every address, pin the first."""
    host, port = policy.check_url(url)
    try:
        addresses = await resolver(host, port)
    except OSError as exc:
        raise BadRequest("the webhook host does not resolve", field="url") from exc
    return pin(url, policy.choose(host, addresses), host, port)

"""Per-client limits on anonymous and expensive endpoints, with Litestar's rate-limit middleware.

A handler joins a bucket with ``opt={"rate_limit": "<bucket>"}``; each bucket is one
``RateLimitConfig`` (requests per minute per client address, from ``Settings.rate_limits``) whose
counters live in the node's memory store. That is enough against floods: a flood split over both
twins gets twice the allowance at most. What matters for security is counted in the database
instead, where both nodes see it (wrong activation codes: ``ca/enrollment.py``).

The client address is the TCP peer, or, when the peer is a configured proxy (HAProxy), the
rightmost X-Forwarded-For entry that is not itself a trusted proxy: the leftmost ones are
whatever the client wrote.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig

from ezla.settings import Settings

OPT_KEY = "rate_limit"


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(trusted))


def client_address(connection: ASGIConnection[Any, Any, Any, Any], trusted_proxies: tuple[str, ...]) -> str:
    """``trusted_proxies`` holds addresses or networks (``10.0.0.0/8``: a compose network).

    Every X-Forwarded-For line counts, in order: HAProxy adds its own line after any the client
    sent, so reading only the first would believe the client. The rightmost hop that is not a
    trusted proxy is the client; one that is not an IP address was written by someone we do not
    trust, so the last trusted hop before it answers for the request."""
    peer = connection.client.host if connection.client else "unknown"
    if not _trusted(peer, trusted_proxies):
        return peer
    lines = connection.headers.getall("x-forwarded-for", [])
    hops = [h.strip() for line in lines for h in line.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
        if not _trusted(address, trusted_proxies):
            return address
    return peer


def _in_bucket(bucket: str) -> Callable[[Any], bool]:
    def check(request: Any) -> bool:
        return bool(request.route_handler.opt.get(OPT_KEY) == bucket)

    return check


def _identifier(bucket: str, trusted: tuple[str, ...]) -> Callable[[Any], str]:
    def identify(request: Any) -> str:
        return f"{bucket}:{client_address(request, trusted)}"

    return identify


def rate_limit_middleware(settings: Settings) -> list[DefineMiddleware]:
    return [
        RateLimitConfig(
            rate_limit=("minute", per_minute),
            identifier_for_request=_identifier(bucket, settings.trusted_proxies),
            check_throttle_handler=_in_bucket(bucket),
        ).middleware
        for bucket, per_minute in settings.rate_limits
        if per_minute > 0
    ]


def bucket(name: str) -> dict[str, str]:
    """``opt`` for a handler in bucket ``name``."""
    return {OPT_KEY: name}

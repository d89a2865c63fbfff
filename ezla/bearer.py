"""The ``Authorization: Bearer`` header, read the same way by the service and the registry."""

from __future__ import annotations

from litestar.connection import ASGIConnection


def bearer_token(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

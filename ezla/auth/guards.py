"""Litestar guards: bearer token -> Principal on ``connection.state``; role checks per route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from ezla.auth.service import Principal, Role, authenticate, touch
from ezla.bearer import bearer_token
from ezla.db import reading, transaction, utcnow
from ezla.errors import Forbidden, Unauthenticated

Guard = Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]]  # type: ignore[type-arg]


def principal_of(connection: ASGIConnection) -> Principal:  # type: ignore[type-arg]
    cached = connection.state.get("principal")
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(connection)
    if token is None:
        raise Unauthenticated("a bearer token is required")
    sessions = connection.app.state.sessionmaker
    now = utcnow()
    with reading(sessions) as session:  # revocation and expiry are read on every request, on every node
        found = authenticate(session, token, now=now)
    principal = found.principal
    if found.needs_touch:
        with transaction(sessions) as session:
            touch(session, principal.account_id, now=now)
    connection.state["principal"] = principal
    return principal


def requires(*roles: Role) -> Guard:
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        # The token lookup is a database round trip: keep it off the event loop.
        principal = await anyio.to_thread.run_sync(principal_of, connection)
        if principal.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")

    return guard

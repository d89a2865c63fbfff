"""Litestar guards: bearer token -> Principal on ``connection.state``; role checks per route."""

from __future__ import annotations

import anyio
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.orm import Session, sessionmaker

from ezla.auth.service import Principal, Role, authenticate, touch
from ezla.bearer import bearer_token
from ezla.db import reading, transaction, utcnow
from ezla.errors import Forbidden, Unauthenticated


def principal_for_token(sessions: sessionmaker[Session], token: str) -> Principal:
    """The token's account, read on every request on every node (revocation and expiry take
    effect at once); raises Unauthenticated. Blocking: two short transactions at most."""
    now = utcnow()
    with reading(sessions) as session:
        found = authenticate(session, token, now=now)
    if found.needs_touch:
        with transaction(sessions) as session:
            touch(session, found.principal.account_id, now=now)
    return found.principal


def principal_of(connection: ASGIConnection) -> Principal:  # type: ignore[type-arg]
    cached = connection.state.get("principal")
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(connection)
    if token is None:
        raise Unauthenticated("a bearer token is required")
    principal = principal_for_token(connection.app.state.sessionmaker, token)
    connection.state["principal"] = principal
    return principal


class RoleGuard:
    """A Litestar guard admitting the given roles; ``roles`` is read back by the API reference
    (``ezla.reference.openapi``) to document each operation's security."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    async def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        # The token lookup is a database round trip: keep it off the event loop.
        principal = await anyio.to_thread.run_sync(principal_of, connection)
        if principal.role not in self.roles:
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in self.roles)}")


def requires(*roles: Role) -> RoleGuard:
    return RoleGuard(roles)


AUTHENTICATED_BY = "authenticated_by"


def authenticated_by(what: str) -> dict[str, str]:
    """Handler ``opt`` for operations that take no token because the request proves itself (a
    signed document, an activation code): the API reference says so instead of listing a scheme."""
    return {AUTHENTICATED_BY: what}

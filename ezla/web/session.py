"""Signing in to the pages: the token a person pastes becomes an HttpOnly cookie, read only by the
pages (the API keeps to ``Authorization: Bearer``, so the cookie can never make an API call).

Forms carry a CSRF token derived from the session token with HMAC: only a page that could read
the cookie's value (ours) can produce it, and any node can check it without shared state. This
is Litestar's double-submit scheme done with the secret we already have, deliberately not its
CSRF middleware: that one needs a per-deployment secret at start-up and guards the API too.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from ezla.auth.guards import principal_for_token
from ezla.auth.service import Principal
from ezla.errors import Unauthenticated
from ezla.web.texts import LANGUAGES

COOKIE = "ezla_session"
LANG_COOKIE = "ezla_lang"
SESSION_SECONDS = 8 * 3600  # a working day; the token itself may live longer


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"ezla-web-csrf/1", hashlib.sha256).hexdigest()[:32]


def csrf_ok(token: str, submitted: object) -> bool:
    return isinstance(submitted, str) and hmac.compare_digest(csrf_for(token), submitted)


def is_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def session_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=token,
        path="/",
        max_age=SESSION_SECONDS,
        httponly=True,
        secure=is_https(request),
        samesite="lax",  # a link from an e-mail still lands signed in; forms are guarded by CSRF
    )


def lang_cookie(request: Request[Any, Any, Any], lang: str) -> Cookie:
    return Cookie(key=LANG_COOKIE, value=lang, path="/", max_age=365 * 86400, secure=is_https(request), samesite="lax")


def language(request: Request[Any, Any, Any]) -> str:
    lang = request.cookies.get(LANG_COOKIE, "pl")
    return lang if lang in LANGUAGES else "pl"


def principal_for(request: Request[Any, Any, Any], token: str | None) -> Principal | None:
    """The signed-in person, or None (no cookie, or a token since revoked or expired). Blocking."""
    if not token:
        return None
    try:
        return principal_for_token(request.app.state.sessionmaker, token)
    except Unauthenticated:
        return None

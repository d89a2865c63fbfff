"""What every page shares: the security headers, rendering with the language and the signed-in
person, and the role check that sends everyone else to sign in or to their own page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import State
from litestar.response import Redirect, Template

from ezla.auth.service import Principal, Role
from ezla.db import utcnow
from ezla.web import format as fmt
from ezla.web.session import COOKIE, csrf_for, csrf_ok, language, principal_for
from ezla.web.texts import LANGUAGES, TEXTS

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HOME = {
    Role.EMPLOYER: "/web/employer",
    Role.PATIENT: "/web/patient",
    Role.DOCTOR: "/web/doctor",
    Role.OPERATOR: "/web/operator",
}

Req = Request[Any, Any, State]


def render(request: Req, name: str, principal: Principal | None = None, **context: Any) -> Template:
    lang = language(request)
    token = request.cookies.get(COOKIE)
    return Template(
        template_name=name,
        context={
            "t": SimpleNamespace(**TEXTS[lang]),  # not the dict: t.clear would be dict.clear in Jinja
            "lang": lang,
            "other_lang": next(x for x in LANGUAGES if x != lang),
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "principal": principal,
            "csrf": csrf_for(token) if token and principal else "",
            "printed_at": fmt.pl_time(utcnow()),
            "fmt": fmt,
            **context,
        },
        headers=HEADERS,
    )


def signed_in(request: Req, role: Role) -> Principal | Response[Any]:
    """The person behind the cookie if they hold ``role``; otherwise where they should go."""
    principal = principal_for(request, request.cookies.get(COOKIE))
    if principal is None:
        return Redirect(f"/web/sign-in?{urlencode({'next': request.url.path})}", status_code=303)
    if principal.role != role:
        return render(request, "notice.html", principal, home=HOME.get(principal.role, "/schema"))
    return principal


def local_path(value: object, default: str) -> str:
    """Only paths on this site (no open redirect through ``next``)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def form_ok(request: Req, form: Any) -> bool:
    """The form carries this session's CSRF token (session.csrf_for)."""
    return csrf_ok(request.cookies.get(COOKIE, ""), form.get("csrf"))

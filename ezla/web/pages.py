from __future__ import annotations

from importlib.resources import files

from litestar import Response, get

_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'"
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _asset(name: str) -> str:
    return (files("ezla.web") / name).read_text(encoding="utf-8")


def _page(kind: str, title: str) -> Response[str]:
    html = _asset("page.html").replace("{{kind}}", kind).replace("{{title}}", title)
    return Response(html, media_type="text/html; charset=utf-8", headers=_HEADERS)


@get("/employer", include_in_schema=False, sync_to_thread=False)
def employer_page() -> Response[str]:
    return _page("employer", "e-ZLA pracowników (płatnik)")


@get("/patient", include_in_schema=False, sync_to_thread=False)
def patient_page() -> Response[str]:
    return _page("patient", "Moje zwolnienia lekarskie (e-ZLA)")


@get("/web/app.js", include_in_schema=False, sync_to_thread=False)
def app_js() -> Response[str]:
    return Response(_asset("app.js"), media_type="text/javascript; charset=utf-8", headers=_HEADERS)


@get("/web/app.css", include_in_schema=False, sync_to_thread=False)
def app_css() -> Response[str]:
    return Response(_asset("app.css"), media_type="text/css; charset=utf-8", headers=_HEADERS)


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False, status_code=204)
def favicon() -> None:
    """No icon; answering 204 keeps browsers from logging a 404 on every page."""


ROUTES = [employer_page, patient_page, app_js, app_css, favicon]

"""The API reference at ``/schema``: what Litestar generates from the handlers, completed with what
it cannot know, so that a client generated from it works.

- Security: each operation's bearer scheme, read from its ``RoleGuard`` (doctor tokens come from
  the challenge flow, every other token from an operator), and the roles it admits.
- Errors: the problem+json document the service really returns (``ezla.problems``), with the
  codes each operation can answer for each status and an example, instead of Litestar's default
  400 shape, which the service never sends.
- ``Idempotency-Key`` on every write the idempotency layer covers.
- The docs UI (Swagger UI) is served from the files of the ``swagger-ui-py`` package: no CDN, so
  the reference works on a closed clinic network.

The OpenAPI object is completed in place once, when the app is made; Litestar serves that object.
"""

from __future__ import annotations

import re
from collections import defaultdict
from importlib.resources import files
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute

from ezla.auth.guards import AUTHENTICATED_BY, RoleGuard
from ezla.auth.service import Role
from ezla.idempotency import OPT_KEY
from ezla.problems import PROBLEM_JSON, problem_document, refuse_unknown_parameters
from ezla.reference.catalogue import catalogue

ASSETS = "/schema/assets"
DOCS = SwaggerRenderPlugin(
    path=["/", "/swagger"],
    js_url=f"{ASSETS}/swagger-ui-bundle.js",
    css_url=f"{ASSETS}/swagger-ui.css",
    standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
    favicon="<link rel='icon' href='data:,'>",
)
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_ASSET_NAMES = ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js")


@get(f"{ASSETS}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def docs_asset(name: str) -> Response[bytes]:
    """Swagger UI's files as the swagger-ui-py package ships them (only these three)."""
    if name not in _ASSET_NAMES:
        raise NotFoundException()
    body = (files("swagger_ui") / "static" / name).read_bytes()
    suffix = name[name.rfind(".") :]
    return Response(body, media_type=_ASSET_TYPES[suffix], headers={"Cache-Control": "public, max-age=86400"})


SECURITY_SCHEMES = {
    "doctorToken": SecurityScheme(
        type="http",
        scheme="bearer",
        description="A doctor's token: GET /v1/auth/challenge, sign the challenge with the key of your "
        "document-signing certificate, POST /v1/auth/doctor-token (the SDK's `EzlaClient.log_in`).",
    ),
    "accountToken": SecurityScheme(
        type="http",
        scheme="bearer",
        description="An account token for a payer, a patient, an operator or an assistant, made by an "
        "operator (`ezla account add`) or, for an assistant, authorised by a doctor.",
    ),
}

PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "code"],
    description="RFC 9457 problem details. Clients switch on `code`; `type` is a page explaining it "
    "in Polish and English; the list of codes is GET /v1/rules.",
    properties={
        "type": Schema(
            type=OpenAPIType.STRING, format=OpenAPIFormat.URI_REFERENCE, examples=["/problems/pesel-invalid"]
        ),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": Schema(type=OpenAPIType.STRING),
        "detail": Schema(type=OpenAPIType.STRING),
        "field": Schema(type=OpenAPIType.STRING, description="The request field at fault, when one is."),
        "findings": Schema(
            type=OpenAPIType.ARRAY,
            description="Every rule finding of a refused document (the first one's code is `code`).",
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "code": Schema(type=OpenAPIType.STRING),
                    "severity": Schema(type=OpenAPIType.STRING, enum=["error", "warning"]),
                    "path": Schema(type=OpenAPIType.STRING, description="XPath of the element"),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
        "retry_after": Schema(type=OpenAPIType.INTEGER, description="Seconds, on 429 (also Retry-After)."),
    },
)

# Codes by what an operation takes, beyond the ones every operation can answer.
_XML_400 = re.compile(r"xml-|body-malformed")
_CA_CODES = re.compile(r"csr-|key-|pkcs12-|activation-code-|doctor-exists|lint-failed")
_SIGNED_DOCUMENT = re.compile(r"signature-|signing-|certificate-|unsigned-properties|wrong-namespace|schema-invalid")


def _codes_for(method: str, path: str, route: HTTPRoute, guarded: bool, body: bool) -> dict[int, list[str]]:
    """For each status, the problem codes this operation can answer with."""
    errors = [e for e in catalogue() if e.status is not None]
    out: dict[int, set[str]] = defaultdict(set)

    def add(status: int, *codes: str) -> None:
        out[status].update(codes)

    def matching(status: int, pattern: re.Pattern[str], *, exclude: bool = False) -> list[str]:
        return [e.code for e in errors if e.status == status and bool(pattern.search(e.code)) != exclude]

    add(400, "bad-request", "validation-failed")
    add(429, "rate-limited")
    add(503, "database-unavailable", "unavailable")
    if guarded:
        add(401, "unauthenticated")
        add(403, "forbidden")
    if route.path_parameters:
        add(404, "not-found")
    if body:
        add(400, "body-malformed", "idempotency-key-invalid")
        add(409, "idempotency-in-flight")
        add(413, "payload-too-large")
        add(422, "idempotency-key-reused")
    if path.startswith(("/v1/ezla", "/v1/drafts")) and method in ("POST", "PUT") and "reservations" not in path:
        add(400, *matching(400, _XML_400))
        add(403, "signer-not-doctor", "doctor-name-mismatch")
        add(409, "already-cancelled", "reserved-number-used")
        add(415, "unsupported-media-type")
        add(422, *matching(422, _CA_CODES, exclude=True))
    if path.startswith(("/v1/doctor/assistants", "/v1/drafts")) and method == "POST":
        add(404, "not-found")  # the assistant or doctor named in the body
    if path.startswith("/v1/ezla/{ezla_id}"):
        add(404, "ezla-not-found")
    if path.startswith("/v1/ca/"):
        add(400, *matching(400, _CA_CODES), *(["ocsp-request-malformed"] if "ocsp" in path else []))
        add(503, "pki-not-initialised")
        if route.path_parameters:
            add(404, "certificate-unknown", "not-found")  # not-found: an issuing CA number that is not ours
        if body:
            add(403, *matching(403, _CA_CODES))
            add(409, "doctor-exists", "certificate-already-revoked")
            add(422, *matching(422, _CA_CODES))
    if path.startswith("/v1/tsa"):
        add(415, "unsupported-media-type")
        add(503, "pki-not-initialised")
    if path.startswith("/v1/auth"):
        add(401, "unauthenticated", "challenge-invalid", "proof-invalid")
        add(422, *matching(422, _SIGNED_DOCUMENT))
    if path.startswith("/v1/accounts/{"):
        add(404, "account-not-found")
    return {status: sorted(codes) for status, codes in out.items()}


def _response(status: int, codes: list[str], titles: dict[str, str]) -> OpenAPIResponse:
    first = codes[0]
    listed = "; ".join(f"`{c}`" for c in codes)
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status == 401:
        headers = {
            "WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), example='Bearer realm="ezla"')
        }
    elif status == 429:
        headers = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="Seconds")}
    return OpenAPIResponse(
        description=f"Problem document; `code` is one of: {listed}",
        headers=headers,
        content={
            PROBLEM_JSON: OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/Problem"),
                examples={first: Example(value=problem_document(status, first, titles.get(first, first)))},
            )
        },
    )


IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    description="Any unique string (a UUID) per logical request. Repeating the request with the same "
    "key returns the first answer instead of acting twice; a different body with the same key is "
    "refused (422 `idempotency-key-reused`). Kept for 24 hours.",
)


def _security(roles: tuple[Role, ...]) -> list[dict[str, list[str]]]:
    schemes: list[dict[str, list[str]]] = []
    if Role.DOCTOR in roles:
        schemes.append({"doctorToken": []})
    if any(r != Role.DOCTOR for r in roles):
        schemes.append({"accountToken": []})
    return schemes


def _operations(app: Litestar) -> list[tuple[str, str, HTTPRoute, Any]]:
    out: list[tuple[str, str, HTTPRoute, Any]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            out.extend((method, route.path_format, route, handler) for method in handler.http_methods)
    return out


QUERY_PARAMETERS = "query_parameters"  # app.state key: route handler -> the query names it documents


def refuse_unknown_query(request: Request[Any, Any, Any]) -> None:
    """before_request: a query parameter the reference does not list for this operation is a
    400, not silently ignored (a misspelt filter would otherwise return everything)."""
    known = request.app.state.get(QUERY_PARAMETERS, {}).get(id(request.route_handler))
    if known is not None:
        refuse_unknown_parameters(request, known)


def complete(app: Litestar) -> OpenAPI:
    """Fill in security, problem responses and the Idempotency-Key header (see the module doc), and
    record each operation's query parameters for ``refuse_unknown_query``."""
    openapi = app.openapi_schema
    openapi.components = openapi.components or Components()
    openapi.components.security_schemes = dict(SECURITY_SCHEMES)
    openapi.components.schemas = {**(openapi.components.schemas or {}), "Problem": PROBLEM}
    titles = {e.code: e.title_en for e in catalogue()}
    query: dict[int, set[str]] = {}
    for method, path, route, handler in _operations(app):
        item = (openapi.paths or {}).get(path)
        operation: Operation | None = getattr(item, method.lower(), None) if item else None
        if operation is None:
            continue
        roles = tuple(r for g in handler.resolve_guards() if isinstance(g, RoleGuard) for r in g.roles)
        if roles:
            operation.security = _security(roles)
            who = ", ".join(r.value for r in roles)
            operation.description = ((operation.description or "") + f"\n\nFor: {who}.").strip()
        elif proof := handler.opt.get(AUTHENTICATED_BY):
            operation.security = []  # no token: the request proves itself
            operation.description = ((operation.description or "") + f"\n\nNo token: authenticated by {proof}.").strip()
        body = method in ("POST", "PUT", "PATCH")
        responses = {k: v for k, v in (operation.responses or {}).items() if not k.startswith("4")}
        # A proof-authenticated operation may also take a token (an operator revoking): 401/403 too.
        checks_token = bool(roles) or bool(handler.opt.get(AUTHENTICATED_BY))
        for status, codes in sorted(_codes_for(method, path, route, checks_token, body).items()):
            responses[str(status)] = _response(status, codes, titles)
        operation.responses = responses
        if method in ("POST", "PUT", "PATCH", "DELETE") and not handler.opt.get(OPT_KEY):
            operation.parameters = [*(operation.parameters or []), IDEMPOTENCY_KEY]
        names = {p.name for p in operation.parameters or [] if isinstance(p, Parameter) and p.param_in == "query"}
        query.setdefault(id(handler), set()).update(names)
    app.state[QUERY_PARAMETERS] = query
    return openapi

"""RFC 9457 problem documents: every error leaves the service through here."""

from __future__ import annotations

import json
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from ezla.errors import BadRequest, DatabaseUnavailable, EzlaError

PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "too-many-requests",
    503: "unavailable",
}
# Codes given to Litestar's own exceptions, beside the EzlaError tree (for the rules catalogue).
FRAMEWORK_CODES: dict[str, tuple[int, str]] = {
    "validation-failed": (400, "The request does not follow the schema"),
    "body-malformed": (400, "The request body cannot be decoded"),
    "http-error": (400, "HTTP error"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "too-many-requests": (429, "Too many requests; retry later"),
}
log = structlog.get_logger("ezla.problems")


def problem_type(code: str) -> str:
    """RFC 9457 3.1.1: a URI reference, here relative to the service (resolved against the request
    URI), to a page explaining the code (``ezla.reference``)."""
    return f"/problems/{code}"


# A database row id in a path: bounded, so a huge number is a 400 from validation rather than an
# overflow in the database driver.
ROW_ID = Parameter(gt=0, le=2**62, description="The row's id, as this API gave it.")


def refuse_unknown_parameters(request: Request[Any, Any, Any], known: set[str]) -> None:
    """A misspelt filter (``?statuss=``) silently ignored returns everything: say so instead."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"known: {', '.join(sorted(known))}" if known else "this operation takes none"
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}; {takes}")


def problem_document(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": problem_type(code), "title": title, "status": status, "code": code}
    if detail and detail != title:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> Response[dict[str, Any]]:
    return Response(problem_document(status, code, title, detail, **extra), status_code=status, media_type=PROBLEM_JSON)


def problem_bytes(exc: EzlaError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The same document for raw ASGI replies (the idempotency middleware runs outside Litestar's
    exception handlers)."""
    body = json.dumps(problem_document(exc.status, exc.code, exc.title, exc.detail, **exc.extra)).encode()
    return exc.status, [(b"content-type", PROBLEM_JSON.encode())], body


def handle_ezla_error(request: Request[Any, Any, Any], exc: EzlaError) -> Response[dict[str, Any]]:
    if exc.status >= 500 and exc.code == "internal":
        log.error("internal_error", error=type(exc).__name__)
        return problem(500, "internal", "Internal error")
    response = problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
    if exc.status == 401:  # RFC 6750 3: say how to authenticate, and whether the token was the problem
        presented = request.headers.get("authorization", "").lower().startswith("bearer ")
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="ezla", error="invalid_token"' if presented else 'Bearer realm="ezla"'
        )
    if exc.status == 429:
        response.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
    return response


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        errors = [{"key": e.get("key"), "message": e.get("message")} for e in (exc.extra or []) if isinstance(e, dict)]
        return problem(
            400, "validation-failed", "The request does not follow the schema", str(exc.detail), errors=errors
        )
    if status == 400 and "malformed" in str(exc.detail).lower():
        return problem(400, "body-malformed", "The request body cannot be decoded", str(exc.detail))
    if status >= 500:
        return problem(status, _HTTP_CODES.get(status, "internal"), "Service error")
    if status == 429:
        # Litestar's rate limiter: keep its RateLimit-* headers and say when to come back.
        headers = dict(exc.headers or {})
        retry = max(1, int(headers.get("RateLimit-Reset", "1") or 1))
        response = problem(429, "rate-limited", "Too many requests; retry later", None, retry_after=retry)
        response.headers.update({**headers, "Retry-After": str(retry)})
        return response
    response = problem(status, _HTTP_CODES.get(status, "http-error"), str(exc.detail), None)
    if status == 405 and exc.headers:  # RFC 9110 15.5.6: a 405 lists the methods the resource has
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    return response


def where(exc: BaseException) -> str:
    """file:line of the innermost frame: enough to find a bug, with no message that could quote data."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, OverflowError):
        # A number from the request too large for the database driver (SQLite's 64-bit INTEGER):
        # the client's input, and nothing was written. Bounded parameters (identifiers.ROW_ID)
        # refuse it earlier; this keeps any path we missed from answering 500.
        return problem(400, "invalid-value", "A value in the request is not acceptable")
    # Type and place only: exception messages may quote personal data or secrets.
    log.error("unhandled_error", error=type(exc).__name__, where=where(exc))
    return problem(500, "internal", "Internal error")


def handle_database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[dict[str, Any]]:
    """The database went away (restart, failover to a new primary, network). The transaction rolled
    back, or, if the connection broke during COMMIT, may have committed: either way an idempotent
    request is safe to repeat. 503 makes HAProxy replay it on the twin node and the SDK retry it
    (both only for idempotent requests); a 500 would tell them that retrying is pointless."""
    if isinstance(exc, DataError | IntegrityError):
        # A value the database refuses (too long, NUL byte, ...) that validation let through: still
        # the client's input, so a 400, and nothing was written (the transaction rolled back).
        log.warning("database_refused_value", error=type(exc.orig).__name__)
        return problem(400, "invalid-value", "A value in the request is not acceptable")
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        log.warning("database_unavailable", error=type(exc.orig).__name__)
        err = DatabaseUnavailable()
        response = problem(err.status, err.code, err.title)
        response.headers["Retry-After"] = "1"
        return response
    return handle_unexpected(request, exc)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DBAPIError: handle_database_error,
    EzlaError: handle_ezla_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

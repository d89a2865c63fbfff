"""``Idempotency-Key`` for state-changing requests (IETF draft-ietf-httpapi-idempotency-key-header).

Same key + same request -> the stored answer (``Idempotency-Replayed: true``); same key + a different
body -> 422 ``idempotency-key-reused``; same key while the first is still running -> 409
``idempotency-in-flight``. Keys are scoped by the caller's credential, method and path, kept 24 h.
The record lives in the shared database, so a retry that lands on the twin node gets the same answer.
A 5xx is not stored (the client should retry), nor is a PKCS#12 (it holds a private key), nor an
error answered to a caller without a credential: an anonymous flood of bad requests, each with its
own key, must not leave a row per request (such a retry re-runs and meets the same refusal).

Handlers whose request is its own idempotency key (``by_content()``: a signed e-ZLA carries its
DocumentId, a signed Cancellation its e-ZLA) skip this layer: the service already answers a repeat
with the first answer and a concurrent twin through the unique constraint, so the key would only add
two synchronously replicated commits to every submission.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

import anyio
from litestar.types import ASGIApp
from sqlalchemy import Integer, LargeBinary, String, Text, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ezla.db import Base, UtcDateTime, transaction, utcnow
from ezla.errors import IdempotencyInFlight, IdempotencyKeyInvalid, IdempotencyKeyReused, PayloadTooLarge
from ezla.problems import problem_bytes

TTL = timedelta(hours=24)
# A node died mid-request: after this the retry takes over. Requests take well under HAProxy's
# 5 s server timeout, so 10 s never steals a live request and keeps failover waits short.
STALE_IN_FLIGHT = timedelta(seconds=10)
MAX_BODY = 2_000_000  # same cap as the app; checked here because this layer buffers first
MAX_KEY = 255
# Visible ASCII only: a header value outside it is mangled differently by each proxy on the way.
KEY_PATTERN = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_KEY)
NOT_STORED_TYPES = ("application/x-pkcs12",)
OPT_KEY = "idempotent_by_content"


def by_content() -> dict[str, bool]:
    """``opt`` for a handler whose request body identifies it (see the module's docstring)."""
    return {OPT_KEY: True}


class IdempotencyRecord(Base):
    __tablename__ = "http_idempotency"

    scope_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_flight | done
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


def _in_flight() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, headers, body = problem_bytes(IdempotencyInFlight())
    return status, [*headers, (b"retry-after", b"1")], body


def _begin(factory: sessionmaker[Session], scope_hash: str, request_hash: str) -> tuple[str, Any]:
    """('run', None) to execute, or ('answer', (status, headers, body)) to reply without executing."""
    now = utcnow()
    with transaction(factory) as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now))
        row = session.get(IdempotencyRecord, scope_hash, with_for_update=True)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(
                        IdempotencyRecord(
                            scope_hash=scope_hash,
                            request_hash=request_hash,
                            state="in_flight",
                            created_at=now,
                            expires_at=now + TTL,
                        )
                    )
            except IntegrityError:
                return "answer", _in_flight()
            return "run", None
        if row.request_hash != request_hash:
            return "answer", problem_bytes(IdempotencyKeyReused())
        if row.state == "in_flight":
            if now - row.created_at > STALE_IN_FLIGHT:
                row.created_at = now
                return "run", None
            return "answer", _in_flight()
        headers = [(k.encode(), v.encode()) for k, v in json.loads(row.headers or "[]")]
        return "answer", (row.status, [*headers, (b"idempotency-replayed", b"true")], row.body or b"")


def _finish(
    factory: sessionmaker[Session],
    scope_hash: str,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    anonymous: bool = False,
) -> None:
    with transaction(factory) as session:
        row = session.get(IdempotencyRecord, scope_hash)
        if row is None:
            return
        ctype = dict(headers).get(b"content-type", b"").decode("latin-1")
        no_store = b"no-store" in {k.lower(): v for k, v in headers}.get(b"cache-control", b"")
        # Responses that carry credentials (activation codes, tokens, keys) say no-store: they are
        # never kept, so the table holds no secret in clear.
        if status >= 500 or (anonymous and status >= 400) or no_store or ctype.startswith(NOT_STORED_TYPES):
            session.delete(row)
            return
        keep = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in headers
            if k.lower() in (b"content-type", b"location", b"x-ezla-serial")
        ]
        row.state, row.status, row.headers, row.body = "done", status, json.dumps(keep), body


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    # Raw ASGI dicts are handled loosely typed: Litestar's TypedDict unions (HTTP and WebSocket
    # variants) cost more casts than they catch here, and only HTTP gets past the first line.
    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await app(scope, receive, send)
            return
        raw_headers = dict(scope["headers"])
        key = raw_headers.get(b"idempotency-key")
        handler = scope.get("route_handler")
        if key is None or (handler is not None and handler.opt.get(OPT_KEY)):
            await app(scope, receive, send)
            return
        factory = scope["app"].state.sessionmaker
        if not KEY_PATTERN.fullmatch(key):
            status, headers, body = problem_bytes(IdempotencyKeyInvalid())
            await _reply(send, status, headers, body)
            return
        declared = raw_headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await _reply(send, *problem_bytes(PayloadTooLarge()))
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:  # chunked bodies carry no Content-Length: count as we go
                await _reply(send, *problem_bytes(PayloadTooLarge()))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body_in = b"".join(chunks)
        credential = raw_headers.get(b"authorization", b"")
        scope_hash = hashlib.sha256(
            b"\0".join(
                [key, credential, scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b"")]
            )
        ).hexdigest()
        request_hash = hashlib.sha256(body_in).hexdigest()
        decision, answer = await anyio.to_thread.run_sync(_begin, factory, scope_hash, request_hash)
        if decision == "answer":
            await _reply(send, *answer)
            return

        sent = False

        async def replay_receive() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body_in, "more_body": False}
            return await receive()

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_receive, capture_send)
        finally:
            await anyio.to_thread.run_sync(
                _finish,
                factory,
                scope_hash,
                captured["status"],
                captured["headers"],
                b"".join(captured["body"]),
                not credential,
            )

    return middleware


async def _reply(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""Where deliveries go: the registry (HTTP PUT), the employer (inbox + signed webhook), the patient
(inbox). Each row carries its recipient's body as of the event (``outbox.Announcement``).

Local inboxes are written in the worker's transaction, many rows per statement; remote recipients
are idempotent by key. A remote attempt is bounded whatever the receiver does: one total deadline
over connect, send and response headers (anyio cancels even a receiver that drips its headers a
byte at a time), and the response body is never read, so neither its size nor its
Content-Encoding can cost us memory (``Accept-Encoding: identity`` asks for no compression anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import reading, utcnow
from ezla.distribution.addresses import Resolver, WebhookPolicy, resolve_and_pin, system_resolver
from ezla.distribution.models import EmployerInboxItem, PatientInboxItem, Webhook
from ezla.distribution.outbox import Claim
from ezla.errors import BadRequest

LOCAL = frozenset({"employer", "patient"})
SIGNATURE_HEADER = "X-Ezla-Signature"
TIMESTAMP_HEADER = "X-Ezla-Timestamp"
DEFAULT_DEADLINE = 10.0  # seconds for one remote attempt, connect to response headers
REGISTRY_BATCH = 50  # registry rows per request (the registry's MAX_BATCH)
MAX_REGISTRY_ANSWER = 256 * 1024  # a batch answer is ~100 bytes an item


class DeliveryFailed(Exception):
    """The recipient did not take it this time; the outbox retries."""


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``: the timestamp is signed too, so a replayed
    request cannot be made fresh; receivers refuse timestamps older than a few minutes."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def destination(c: Claim) -> str:
    """What one slow receiver can hold up: its own destination, never another's."""
    if c.recipient == "employer_webhook":
        return f"webhook:{c.address}"
    return "local" if c.recipient in LOCAL else c.recipient


def _body_of(c: Claim) -> str:
    if c.payload is None:  # only rows written before migration 0005 lack one
        raise DeliveryFailed("delivery has no payload snapshot")
    return c.payload


def _insert_ignore(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = model.__table__
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    session.connection().execute(ins.values(rows).on_conflict_do_nothing(index_elements=["idempotency_key"]))


class Channels:
    def __init__(
        self,
        *,
        registry_url: str,
        registry_token: str | None,
        deadline: float = DEFAULT_DEADLINE,
        factory: sessionmaker[Session] | None = None,
        webhook_policy: WebhookPolicy | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.registry_token = registry_token
        self.deadline = deadline
        self.factory = factory
        self.webhook_policy = webhook_policy or WebhookPolicy()
        self.resolver = resolver

    def is_local(self, recipient: str) -> bool:
        return recipient in LOCAL

    def deliver_local(self, session: Session, claims: Sequence[Claim]) -> None:
        """Every inbox row of ``claims`` in two statements (one per inbox); a row already there
        (same idempotency key) is left alone."""
        now = utcnow()
        rows: dict[str, list[dict[str, Any]]] = {"employer": [], "patient": []}
        for c in claims:
            if c.recipient not in rows:
                raise DeliveryFailed(f"unknown local recipient {c.recipient}")
            address_column = "payer_key" if c.recipient == "employer" else "pesel"
            rows[c.recipient].append(
                {
                    address_column: c.address,
                    "ezla_id": c.ezla_id,
                    "event": c.event,
                    "idempotency_key": c.idempotency_key,
                    "payload": _body_of(c),
                    "created_at": now,
                }
            )
        _insert_ignore(session, EmployerInboxItem, rows["employer"])
        _insert_ignore(session, PatientInboxItem, rows["patient"])

    def webhook_target(self, c: Claim) -> tuple[str, str] | None:
        """The payer's webhook as it is now (None once removed: the inbox still has the event)."""
        assert self.factory is not None
        with reading(self.factory) as session:
            webhook = session.get(Webhook, c.address)
            return (webhook.url, webhook.secret) if webhook is not None else None

    async def deliver_remote(self, c: Claim, client: httpx.AsyncClient, webhook: tuple[str, str] | None) -> None:
        body = _body_of(c)
        if c.recipient == "registry":
            envelope = json.dumps({"event": c.event, "idempotency_key": c.idempotency_key, **json.loads(body)})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.registry_token}"}
            await self._send(c, client, "PUT", f"{self.registry_url}/v1/registry/ezla/{c.ezla_id}", envelope, headers)
        elif c.recipient == "employer_webhook":
            if webhook is None:
                return
            url, secret = webhook
            # The stored body is spliced in as is: what the employer's inbox holds, byte for byte.
            head = json.dumps({"event": c.event, "idempotency_key": c.idempotency_key}, separators=(",", ":"))
            raw = f'{head[:-1]},"ezla":{body}}}'.encode()
            ts = str(int(time.time()))
            try:  # resolved and checked now, connected to what was checked: no DNS rebinding
                with anyio.fail_after(self.deadline):
                    target = await resolve_and_pin(url, self.webhook_policy, self.resolver)
            except BadRequest as exc:
                raise DeliveryFailed(f"webhook address refused: {exc.detail}") from exc
            except TimeoutError as exc:
                raise DeliveryFailed("webhook host did not resolve in time") from exc
            headers = {
                "Content-Type": "application/json",
                "Host": target.host_header,
                # The pool knows connections by address, not by TLS name: a connection verified for
                # one payer's name must never carry another payer's request to the same address.
                "Connection": "close",
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: webhook_signature(secret, ts, raw),
            }
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            await self._send(c, client, "POST", target.url, raw, headers, extensions)
        else:
            raise DeliveryFailed(f"unknown recipient {c.recipient}")

    async def deliver_registry_batch(self, claims: Sequence[Claim], client: httpx.AsyncClient) -> list[str | None]:
        """The registry's rows in one request (its ``POST /v1/registry/batch``): per claim, in order,
        None when stored or an error to retry it with. One slow registry still holds only its own
        rows, within one deadline."""
        items = [
            {"ezla_id": c.ezla_id, "event": c.event, "idempotency_key": c.idempotency_key, **json.loads(_body_of(c))}
            for c in claims
        ]
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.registry_token}",
            "Accept-Encoding": "identity",
        }
        body = bytearray()
        try:
            with anyio.fail_after(self.deadline):
                async with client.stream(
                    "POST",
                    f"{self.registry_url}/v1/registry/batch",
                    content=json.dumps({"items": items}),
                    headers=headers,
                ) as response:
                    status = response.status_code
                    async for chunk in response.aiter_raw():  # raw: never inflated, and capped
                        body += chunk
                        if len(body) > MAX_REGISTRY_ANSWER:
                            raise DeliveryFailed("registry answer too large")
        except TimeoutError as exc:
            raise DeliveryFailed(f"registry took longer than {self.deadline:.0f} s") from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"registry unreachable: {type(exc).__name__}") from exc
        if status != 200:
            raise DeliveryFailed(f"registry answered {status}")
        try:
            results = json.loads(body)["results"]
            if not isinstance(results, list) or len(results) != len(claims):
                raise ValueError("one result per item")
            return [
                None if r.get("status") in (200, 201) else f"registry refused: {r.get('status')} {r.get('code')}"
                for r in results
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DeliveryFailed("registry answer unreadable") from exc

    async def _send(
        self,
        c: Claim,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        content: str | bytes,
        headers: dict[str, str],
        extensions: dict[str, Any] | None = None,
    ) -> None:
        headers = {**headers, "Idempotency-Key": c.idempotency_key, "Accept-Encoding": "identity"}
        name = "registry" if c.recipient == "registry" else "webhook"
        try:
            with anyio.fail_after(self.deadline):
                async with client.stream(
                    method, url, content=content, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code  # the body is never read: see the module docstring
        except TimeoutError as exc:
            raise DeliveryFailed(f"{name} took longer than {self.deadline:.0f} s") from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{name} unreachable: {type(exc).__name__}") from exc
        if status >= 300:
            raise DeliveryFailed(f"{name} answered {status}")

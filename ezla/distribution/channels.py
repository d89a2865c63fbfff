"""Where deliveries go: the registry (HTTP PUT), the employer (inbox + signed webhook), the patient
(inbox). Local inboxes are written in the worker's transaction; remote ones are idempotent by key."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import transaction, utcnow
from ezla.distribution.models import EmployerInboxItem, PatientInboxItem, Webhook
from ezla.distribution.outbox import Claim

LOCAL = frozenset({"employer", "patient"})
SIGNATURE_HEADER = "X-Ezla-Signature"
TIMESTAMP_HEADER = "X-Ezla-Timestamp"


class DeliveryFailed(Exception):
    """The recipient did not take it this time; the outbox retries."""


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``: the timestamp is signed too, so a replayed
    request cannot be made fresh; receivers refuse timestamps older than a few minutes."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def _body_of(c: Claim) -> str:
    if c.payload is None:  # only rows written before migration 0005 lack one
        raise DeliveryFailed("delivery has no payload snapshot")
    return c.payload


def _insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    ins = pg_insert(model) if dialect == "postgresql" else sqlite_insert(model)
    session.execute(ins.values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]))


class Channels:
    def __init__(
        self,
        *,
        registry_url: str,
        registry_token: str | None,
        timeout: float = 5.0,
        factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.registry_token = registry_token
        self.factory = factory
        self.http = httpx.Client(timeout=timeout)

    def is_local(self, recipient: str) -> bool:
        return recipient in LOCAL

    def deliver_local(self, session: Session, c: Claim) -> None:
        body, now = _body_of(c), utcnow()
        if c.recipient == "employer":
            model: type[EmployerInboxItem | PatientInboxItem] = EmployerInboxItem
            address_column = "payer_key"
        elif c.recipient == "patient":
            model, address_column = PatientInboxItem, "pesel"
        else:
            raise DeliveryFailed(f"unknown local recipient {c.recipient}")
        _insert_ignore(
            session,
            model,
            {
                address_column: c.address,
                "ezla_id": c.ezla_id,
                "event": c.event,
                "idempotency_key": c.idempotency_key,
                "payload": body,
                "created_at": now,
            },
        )

    def deliver_remote(self, c: Claim) -> None:
        body = _body_of(c)
        if c.recipient == "registry":
            self._to_registry(c, body)
        elif c.recipient == "employer_webhook":
            assert self.factory is not None
            with transaction(self.factory) as session:
                webhook = session.get(Webhook, c.address)
                target = (webhook.url, webhook.secret) if webhook is not None else None
            if target is None:
                return  # the payer removed its webhook: nothing to push, the inbox still has it
            self._to_webhook(c, body, *target)
        else:
            raise DeliveryFailed(f"unknown recipient {c.recipient}")

    def _to_registry(self, c: Claim, body: str) -> None:
        envelope = json.dumps({"event": c.event, "idempotency_key": c.idempotency_key, **json.loads(body)})
        try:
            r = self.http.put(
                f"{self.registry_url}/v1/registry/ezla/{c.ezla_id}",
                content=envelope,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.registry_token}",
                    "Idempotency-Key": c.idempotency_key,
                },
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"registry unreachable: {type(exc).__name__}") from exc
        if r.status_code >= 300:
            raise DeliveryFailed(f"registry answered {r.status_code}")

    def _to_webhook(self, c: Claim, ezla: str, url: str, secret: str) -> None:
        # The stored body is spliced in as is: what the employer's inbox holds, byte for byte.
        head = json.dumps({"event": c.event, "idempotency_key": c.idempotency_key}, separators=(",", ":"))
        body = f'{head[:-1]},"ezla":{ezla}}}'.encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": c.idempotency_key,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: webhook_signature(secret, ts, body),
        }
        try:
            r = self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from exc
        if r.status_code >= 300:
            raise DeliveryFailed(f"webhook answered {r.status_code}")

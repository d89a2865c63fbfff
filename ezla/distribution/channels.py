"""Where deliveries go: the registry (HTTP PUT), the employer (inbox + signed webhook), the patient
(inbox). Local inboxes are written in the worker's transaction; remote ones are idempotent by key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import transaction, utcnow
from ezla.distribution.models import EmployerInboxItem, PatientInboxItem, Webhook

if TYPE_CHECKING:
    from ezla.distribution.worker import Claim

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

    def _view(self, session: Session, ezla_id: str):  # type: ignore[no-untyped-def]
        from ezla.issuance import service as issuance

        return issuance.get(session, ezla_id)

    def deliver_local(self, session: Session, c: Claim) -> None:
        view = self._view(session, c.ezla_id)
        now = utcnow()
        if c.recipient == "employer":
            _insert_ignore(
                session,
                EmployerInboxItem,
                {
                    "payer_key": view.payer_key,
                    "ezla_id": c.ezla_id,
                    "event": c.event,
                    "idempotency_key": c.idempotency_key,
                    "payload": json.dumps(view.for_employer(), ensure_ascii=False),
                    "created_at": now,
                },
            )
        elif c.recipient == "patient":
            _insert_ignore(
                session,
                PatientInboxItem,
                {
                    "pesel": view.patient_pesel,
                    "ezla_id": c.ezla_id,
                    "event": c.event,
                    "idempotency_key": c.idempotency_key,
                    "payload": json.dumps(view.full(), ensure_ascii=False),
                    "created_at": now,
                },
            )
        else:
            raise DeliveryFailed(f"unknown local recipient {c.recipient}")

    def deliver_remote(self, c: Claim) -> None:
        assert self.factory is not None
        with transaction(self.factory) as session:
            view = self._view(session, c.ezla_id)
            webhook = session.get(Webhook, view.payer_key) if c.recipient == "employer_webhook" else None
        if c.recipient == "registry":
            self._to_registry(c, view)
        elif c.recipient == "employer_webhook":
            if webhook is None:
                return  # the payer removed its webhook: nothing to push, the inbox still has it
            self._to_webhook(c, view, webhook.url, webhook.secret)
        else:
            raise DeliveryFailed(f"unknown recipient {c.recipient}")

    def _to_registry(self, c: Claim, view: Any) -> None:
        body = {
            "event": c.event,
            "idempotency_key": c.idempotency_key,
            **view.full(),
            "doctor_npwz": view.doctor_npwz,
            "patient_pesel": view.patient_pesel,
            "payer_key": view.payer_key,
            "signed_xml": base64.b64encode(view.signed_xml).decode(),
            "cancellation_xml": base64.b64encode(view.cancellation_xml).decode() if view.cancellation_xml else None,
        }
        try:
            r = self.http.put(
                f"{self.registry_url}/v1/registry/ezla/{c.ezla_id}",
                json=body,
                headers={"Authorization": f"Bearer {self.registry_token}", "Idempotency-Key": c.idempotency_key},
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"registry unreachable: {type(exc).__name__}") from exc
        if r.status_code >= 300:
            raise DeliveryFailed(f"registry answered {r.status_code}")

    def _to_webhook(self, c: Claim, view: Any, url: str, secret: str) -> None:
        body = json.dumps(
            {"event": c.event, "idempotency_key": c.idempotency_key, "ezla": view.for_employer()},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
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

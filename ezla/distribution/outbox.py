"""The outbox: rows written in the same transaction as the e-ZLA state change they announce."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezla.distribution.models import Delivery, DeliveryStatus, Webhook
from ezla.events import EzlaStatus

BASE_RECIPIENTS = ("registry", "employer", "patient")


def payer_key(nip: str | None, pesel: str | None) -> str:
    return f"nip:{nip}" if nip else f"pesel:{pesel}"


def idempotency_key(ezla_id: str, event: str, recipient: str) -> str:
    """Stable across retries, workers and nodes: receivers deduplicate on it."""
    return f"ezla:{ezla_id}:{event}:{recipient}"


def enqueue(session: Session, ezla_id: str, event: EzlaStatus, *, payer: str, now: datetime) -> list[Delivery]:
    recipients = list(BASE_RECIPIENTS)
    if session.scalar(select(Webhook.payer_key).where(Webhook.payer_key == payer)) is not None:
        recipients.append("employer_webhook")
    rows = [
        Delivery(
            ezla_id=ezla_id,
            event=event,
            recipient=r,
            idempotency_key=idempotency_key(ezla_id, event, r),
            status=DeliveryStatus.PENDING,
            attempts=0,
            fence=0,
            next_attempt_at=now,
            created_at=now,
        )
        for r in recipients
    ]
    session.add_all(rows)
    return rows

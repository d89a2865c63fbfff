"""The outbox: every state change of a delivery, in the style of procrastinate's job manager.

``enqueue`` writes the rows in the same transaction as the e-ZLA state change they announce, each
carrying its recipient's body as the e-ZLA stood at that moment (a late "issued" still says
issued). Claiming: PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers on both nodes take disjoint
batches; on SQLite the transaction begins IMMEDIATE (ezla.db), which serializes claimers as well.
Every claim bumps ``fence``; finishing requires the same fence and an unexpired lease, so a worker
that stalled past its lease (GC pause, SIGSTOP, partition) cannot mark a row done after another
worker re-claimed it. Receivers deduplicate on the idempotency key, which makes the at-least-once
sends exactly-once in effect.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select, text, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from ezla.distribution.backoff import next_delay
from ezla.distribution.models import Delivery, DeliveryStatus, Webhook
from ezla.events import EzlaId, EzlaStatus

NOTIFY_CHANNEL = "ezla_outbox"


def _write(session: Session, statement: Executable) -> CursorResult[Any]:
    """UPDATEs of delivery rows as plain Core statements: no ORM object ever needs synchronising
    (the ORM's bulk UPDATE path spends more CPU matching identity-map objects than the statement).
    Pending ORM changes (a claim's) are flushed first, so the statement sees and overrides them."""
    session.flush()
    return session.connection().execute(statement)


def payer_key(nip: str | None, pesel: str | None) -> str:
    return f"nip:{nip}" if nip else f"pesel:{pesel}"


def idempotency_key(ezla_id: EzlaId, event: str, recipient: str) -> str:
    """Stable across retries, workers and nodes: receivers deduplicate on it."""
    return f"ezla:{ezla_id}:{event}:{recipient}"


@dataclass(frozen=True)
class Announcement:
    """What each recipient is told of one event. The employer's body never has the diagnosis."""

    payer_key: str
    pesel: str
    employer: dict[str, Any]
    patient: dict[str, Any]
    registry: dict[str, Any]

    def for_recipient(self, recipient: str) -> tuple[str | None, dict[str, Any]]:
        if recipient in ("employer", "employer_webhook"):
            return self.payer_key, self.employer
        if recipient == "patient":
            return self.pesel, self.patient
        return None, self.registry


def enqueue(session: Session, ezla_id: EzlaId, event: EzlaStatus, announcement: Announcement, *, now: datetime) -> int:
    """One row per recipient, in one multi-row INSERT; returns how many."""
    recipients = ["registry", "employer", "patient"]
    if session.scalar(select(Webhook.payer_key).where(Webhook.payer_key == announcement.payer_key)) is not None:
        recipients.append("employer_webhook")
    rows = []
    for r in recipients:
        address, body = announcement.for_recipient(r)
        rows.append(
            {
                "ezla_id": ezla_id,
                "event": event,
                "recipient": r,
                "idempotency_key": idempotency_key(ezla_id, event, r),
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "fence": 0,
                "next_attempt_at": now,
                "created_at": now,
                "address": address,
                "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            }
        )
    # Core, not the ORM's bulk path: an executemany compiled once, one pipelined round trip.
    session.connection().execute(insert(Delivery), rows)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit to every listening worker (both nodes): deliveries start at once.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return len(rows)


@dataclass(frozen=True)
class Claim:
    id: int
    ezla_id: EzlaId
    event: str
    recipient: str
    idempotency_key: str
    fence: int
    attempts: int
    created_at: datetime
    address: str | None  # payer key (employer, webhook) or PESEL (patient); None for the registry
    payload: str | None  # the recipient's JSON body, rendered when the event happened


def _not_busy(busy: Collection[str]) -> list[ColumnElement[bool]]:
    """Rows of destinations already at their concurrency limit stay for another worker or later."""
    conditions: list[ColumnElement[bool]] = []
    webhooks = [d.removeprefix("webhook:") for d in busy if d.startswith("webhook:")]
    if webhooks:
        conditions.append(or_(Delivery.recipient != "employer_webhook", Delivery.address.not_in(webhooks)))
    plain = [d for d in busy if not d.startswith("webhook:")]
    if "registry" in plain:
        conditions.append(Delivery.recipient != "registry")
    if "local" in plain:
        conditions.append(Delivery.recipient.not_in(["employer", "patient"]))
    return conditions


def expire(session: Session, *, now: datetime, dead_after: timedelta) -> int:
    """Dead-letter pending rows older than ``dead_after`` that were tried and that nobody holds,
    whatever kept them from finishing (a receiver that always times out, a worker fenced again and
    again). A row never tried (every worker was down) gets its first attempt regardless."""
    result = _write(
        session,
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.created_at < now - dead_after,
            Delivery.attempts > 0,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .values(status=DeliveryStatus.DEAD, lease_owner=None, lease_until=None),
    )
    return result.rowcount


def claim(
    session: Session, owner: str, *, now: datetime, lease: timedelta, limit: int = 20, busy: Collection[str] = ()
) -> list[Claim]:
    rows = session.scalars(
        select(Delivery)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
            *_not_busy(busy),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claims = []
    for row in rows:
        row.lease_owner, row.lease_until = owner, now + lease
        row.fence += 1
        row.attempts += 1
        claims.append(
            Claim(
                row.id,
                EzlaId(row.ezla_id),
                row.event,
                row.recipient,
                row.idempotency_key,
                row.fence,
                row.attempts,
                row.created_at,
                row.address,
                row.payload,
            )
        )
    return claims


def _fenced(c: Claim, now: datetime):  # type: ignore[no-untyped-def]
    return update(Delivery).where(
        Delivery.id == c.id,
        Delivery.fence == c.fence,
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.lease_until > now,
    )


def complete(session: Session, c: Claim, *, now: datetime) -> bool:
    """Mark delivered; False when the lease was lost (someone else owns the row now)."""
    result = _write(
        session,
        _fenced(c, now).values(
            status=DeliveryStatus.DELIVERED, delivered_at=now, lease_owner=None, lease_until=None, last_error=None
        ),
    )
    return result.rowcount == 1


def complete_all(session: Session, claims: Sequence[Claim], *, now: datetime) -> bool:
    """``complete`` for a batch in one statement; False unless every row still carried its fence."""
    result = _write(
        session,
        update(Delivery)
        .where(
            tuple_(Delivery.id, Delivery.fence).in_([(c.id, c.fence) for c in claims]),
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.lease_until > now,
        )
        .values(status=DeliveryStatus.DELIVERED, delivered_at=now, lease_owner=None, lease_until=None, last_error=None),
    )
    return result.rowcount == len(claims)


def unclaim(session: Session, claims: Sequence[Claim]) -> int:
    """Give claimed rows back untried (their destination is full): no lease, the attempt uncounted."""
    result = _write(
        session,
        update(Delivery)
        .where(
            tuple_(Delivery.id, Delivery.fence).in_([(c.id, c.fence) for c in claims]),
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(lease_owner=None, lease_until=None, attempts=Delivery.attempts - 1),
    )
    return result.rowcount


def fail(
    session: Session, c: Claim, error: str, *, now: datetime, dead_after: timedelta, retry_cap: float = 300.0
) -> str:
    """Schedule a retry, or dead-letter once the delivery is older than ``dead_after``."""
    dead = now - c.created_at >= dead_after
    values: dict[str, object] = {"lease_owner": None, "lease_until": None, "last_error": error[:500]}
    if dead:
        values["status"] = DeliveryStatus.DEAD
    else:
        values["next_attempt_at"] = now + next_delay(c.attempts, cap=retry_cap)
    result = _write(session, _fenced(c, now).values(**values))
    if result.rowcount != 1:
        return "fenced"
    return "dead" if dead else "retry"


def release(session: Session, owner: str) -> int:
    """Give back this worker's leases (graceful shutdown) so the twin node picks them up at once."""
    result = _write(
        session,
        update(Delivery)
        .where(Delivery.lease_owner == owner, Delivery.status == DeliveryStatus.PENDING)
        .values(lease_owner=None, lease_until=None),
    )
    return result.rowcount


def retry_dead(session: Session, *, now: datetime, delivery_id: int | None = None) -> int:
    """Operator action: put dead deliveries back in the queue (their age clock restarts)."""
    stmt = update(Delivery).where(Delivery.status == DeliveryStatus.DEAD)
    if delivery_id is not None:
        stmt = stmt.where(Delivery.id == delivery_id)
    result = _write(
        session, stmt.values(status=DeliveryStatus.PENDING, next_attempt_at=now, created_at=now, attempts=0)
    )
    return result.rowcount

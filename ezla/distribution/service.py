"""Reads and small writes of the distribution domain: inboxes, acks, webhooks, outbox metrics."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ezla.audit import service as audit
from ezla.distribution.addresses import WebhookPolicy, resolve_now
from ezla.distribution.models import Delivery, DeliveryStatus, EmployerInboxItem, PatientInboxItem, Webhook
from ezla.errors import BadRequest, NotFound
from ezla.events import EzlaId

MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1..{MAX_PAGE}", field="limit")
    return limit


def _after(after: str | None) -> int:
    if after is None or after == "":
        return 0
    if not re.fullmatch(r"[0-9]{1,18}", after):
        raise BadRequest("after must be a cursor returned by this API", field="after")
    return int(after)


def employer_inbox(session: Session, payer_key: str, *, after: str | None, limit: int = 50) -> Page:
    """Events in delivery order; ``next_cursor`` continues after the last item (poll with it)."""
    rows = session.scalars(
        select(EmployerInboxItem)
        .where(EmployerInboxItem.payer_key == payer_key, EmployerInboxItem.id > _after(after))
        .order_by(EmployerInboxItem.id)
        .limit(_limit(limit))
    ).all()
    items = [
        {
            "cursor": str(r.id),
            "event": r.event,
            "ezla_id": r.ezla_id,
            "delivered_at": r.created_at.isoformat(),
            "acknowledged_at": r.acked_at.isoformat() if r.acked_at else None,
            "ezla": json.loads(r.payload),
        }
        for r in rows
    ]
    return Page(items, items[-1]["cursor"] if items else after)


def acknowledge(session: Session, payer_key: str, ezla_id: EzlaId, *, now: datetime) -> int:
    """Idempotent: acknowledging twice keeps the first time."""
    exists = session.scalar(
        select(func.count())
        .select_from(EmployerInboxItem)
        .where(EmployerInboxItem.payer_key == payer_key, EmployerInboxItem.ezla_id == ezla_id)
    )
    if not exists:
        raise NotFound("no such e-ZLA in this payer's inbox")
    result = session.execute(
        update(EmployerInboxItem)
        .where(
            EmployerInboxItem.payer_key == payer_key,
            EmployerInboxItem.ezla_id == ezla_id,
            EmployerInboxItem.acked_at.is_(None),
        )
        .values(acked_at=now)
    )
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


def patient_ezla(session: Session, pesel: str) -> list[dict[str, Any]]:
    """The patient's e-ZLA, newest state of each (a cancellation replaces the issued view)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in session.scalars(
        select(PatientInboxItem).where(PatientInboxItem.pesel == pesel).order_by(PatientInboxItem.id)
    ):
        latest[r.ezla_id] = {"ezla_id": r.ezla_id, "last_event": r.event, **json.loads(r.payload)}
    return list(reversed(latest.values()))


def check_webhook_url(url: str, policy: WebhookPolicy) -> None:
    """https to public addresses on an allowed port (``addresses``). A payer must not make our
    workers POST into our own network (SSRF), nor receive PESELs in clear. Resolved now for early
    feedback; every delivery resolves and checks again and connects to the address it checked."""
    host, port = policy.check_url(url)
    policy.choose(host, resolve_now(host, port))


def set_webhook(session: Session, payer_key: str, *, url: str, secret: str, now: datetime) -> None:
    """Store a webhook whose URL passed ``check_webhook_url`` (outside the transaction: it resolves)."""
    if not 16 <= len(secret) <= 200:
        raise BadRequest("secret must be 16..200 characters", field="secret")
    row = session.get(Webhook, payer_key)
    if row is None:
        session.add(Webhook(payer_key=payer_key, url=url, secret=secret, updated_at=now))
    else:
        row.url, row.secret, row.updated_at = url, secret, now
    audit.record(session, "webhook_set", payer_key, {}, now=now)


def webhook_url(session: Session, payer_key: str) -> str | None:
    """The payer's webhook address (never its secret)."""
    return session.scalar(select(Webhook.url).where(Webhook.payer_key == payer_key))


def delete_webhook(session: Session, payer_key: str) -> None:
    row = session.get(Webhook, payer_key)
    if row is not None:
        session.delete(row)


def deliveries(session: Session, *, status: str | None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(_limit(limit))
    if status:
        stmt = stmt.where(Delivery.status == status)
    return [
        {
            "id": d.id,
            "ezla_id": d.ezla_id,
            "event": d.event,
            "recipient": d.recipient,
            "status": d.status,
            "attempts": d.attempts,
            "idempotency_key": d.idempotency_key,
            "last_error": d.last_error,
            "next_attempt_at": d.next_attempt_at.isoformat(),
            "created_at": d.created_at.isoformat(),
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        }
        for d in session.scalars(stmt)
    ]


def outbox_metrics(session: Session, *, now: datetime) -> str:
    """Prometheus text exposition. Hand-written on purpose: five gauges don't justify a client
    library and its global registry (two apps share one process in tests)."""
    counts: dict[tuple[str, str], int] = {}
    for status, recipient, n in session.execute(
        select(Delivery.status, Delivery.recipient, func.count()).group_by(Delivery.status, Delivery.recipient)
    ):
        counts[(status, recipient)] = n
    for recipient, n in session.execute(
        select(Delivery.recipient, func.count())
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.lease_until > now)
        .group_by(Delivery.recipient)
    ):
        counts[("in_flight", recipient)] = n
        counts[("pending", recipient)] -= n
    oldest = session.scalar(select(func.min(Delivery.created_at)).where(Delivery.status == DeliveryStatus.PENDING))
    lag = (now - oldest).total_seconds() if oldest else 0.0
    lines = [
        "# HELP ezla_outbox_deliveries Outbox deliveries by state and recipient.",
        "# TYPE ezla_outbox_deliveries gauge",
    ]
    for state in ("pending", "in_flight", "delivered", "dead"):
        for recipient in ("registry", "employer", "employer_webhook", "patient"):
            lines.append(
                f'ezla_outbox_deliveries{{state="{state}",recipient="{recipient}"}} {counts.get((state, recipient), 0)}'
            )
    lines += [
        "# HELP ezla_outbox_lag_seconds Age of the oldest undelivered delivery.",
        "# TYPE ezla_outbox_lag_seconds gauge",
        f"ezla_outbox_lag_seconds {lag:.3f}",
    ]
    return "\n".join(lines) + "\n"

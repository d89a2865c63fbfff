"""Delivery workers: claim with leases, deliver, finish under a fencing token.

Claiming: PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers on both nodes take disjoint batches;
on SQLite the transaction begins IMMEDIATE (ezla.db), which serializes claimers just as well.
Every claim bumps ``fence``; finishing requires the same fence and an unexpired lease, so a worker
that stalled past its lease (GC pause, SIGSTOP, network partition) cannot mark a row done after
another worker re-claimed it. Receivers deduplicate on the delivery's idempotency key, which makes
the at-least-once sends exactly-once in effect.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import transaction, utcnow
from ezla.distribution.backoff import next_delay
from ezla.distribution.channels import Channels, DeliveryFailed
from ezla.distribution.models import Delivery, DeliveryStatus
from ezla.log import get_logger

log = get_logger("ezla.distribution")


class _LeaseLost(Exception):
    """Raised inside a transaction to roll back an inbox write whose lease another worker took."""


@dataclass(frozen=True)
class Claim:
    id: int
    ezla_id: str
    event: str
    recipient: str
    idempotency_key: str
    fence: int
    attempts: int
    created_at: datetime


def claim(session: Session, owner: str, *, now: datetime, lease: timedelta, limit: int = 20) -> list[Claim]:
    rows = session.scalars(
        select(Delivery)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
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
                row.ezla_id,
                row.event,
                row.recipient,
                row.idempotency_key,
                row.fence,
                row.attempts,
                row.created_at,
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
    result = session.execute(
        _fenced(c, now).values(
            status=DeliveryStatus.DELIVERED, delivered_at=now, lease_owner=None, lease_until=None, last_error=None
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


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
    result = session.execute(_fenced(c, now).values(**values))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return "fenced"
    return "dead" if dead else "retry"


def release(session: Session, owner: str) -> int:
    """Give back this worker's leases (graceful shutdown) so the twin node picks them up at once."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.lease_owner == owner, Delivery.status == DeliveryStatus.PENDING)
        .values(lease_owner=None, lease_until=None)
    )
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


def retry_dead(session: Session, *, now: datetime, delivery_id: int | None = None) -> int:
    """Operator action: put dead deliveries back in the queue (their age clock restarts)."""
    stmt = update(Delivery).where(Delivery.status == DeliveryStatus.DEAD)
    if delivery_id is not None:
        stmt = stmt.where(Delivery.id == delivery_id)
    result = session.execute(
        stmt.values(status=DeliveryStatus.PENDING, next_attempt_at=now, created_at=now, attempts=0)
    )
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


class Worker:
    """One background thread per node; ``run_once`` is what the tests drive directly."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        channels: Channels,
        *,
        node_id: str,
        lease: timedelta = timedelta(seconds=30),
        poll: float = 0.2,
        dead_after: timedelta = timedelta(hours=24),
        retry_cap: float = 300.0,
    ) -> None:
        self.factory = factory
        self.channels = channels
        self.owner = f"{node_id}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.poll = poll
        self.dead_after = dead_after
        self.retry_cap = retry_cap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Fault injection for the crash tests: die right after a send, before marking it done.
        self._crash_after = os.environ.get("EZLA_FAULT_CRASH_AFTER_SEND")

    def run_once(self) -> int:
        with transaction(self.factory) as session:
            claims = claim(session, self.owner, now=utcnow(), lease=self.lease)
        for c in claims:
            if self._stop.is_set():
                break
            self._deliver(c)
        return len(claims)

    def _deliver(self, c: Claim) -> None:
        try:
            if self.channels.is_local(c.recipient):
                # Inbox channels write in the same transaction that marks the row done: exactly once.
                try:
                    with transaction(self.factory) as session:
                        self.channels.deliver_local(session, c)
                        if not complete(session, c, now=utcnow()):
                            raise _LeaseLost
                except _LeaseLost:
                    log.warning("delivery_fenced", delivery_id=c.id, ezla_id=c.ezla_id)
                    return
                log.info("delivered", delivery_id=c.id, ezla_id=c.ezla_id, recipient=c.recipient)
                return
            self.channels.deliver_remote(c)
            if self._crash_after and self._crash_after in (c.recipient, "any"):
                log.warning("fault_injected_crash", delivery_id=c.id)
                os._exit(137)
            with transaction(self.factory) as session:
                done = complete(session, c, now=utcnow())
            log.info(
                "delivered" if done else "delivery_fenced", delivery_id=c.id, ezla_id=c.ezla_id, recipient=c.recipient
            )
        except DeliveryFailed as exc:
            self._failed(c, str(exc))
        except Exception as exc:  # a bug in a channel must not kill the worker; the row retries
            from ezla.problems import where

            log.error("delivery_error", delivery_id=c.id, error=type(exc).__name__, where=where(exc))
            self._failed(c, type(exc).__name__)

    def _failed(self, c: Claim, error: str) -> None:
        with transaction(self.factory) as session:
            outcome = fail(session, c, error, now=utcnow(), dead_after=self.dead_after, retry_cap=self.retry_cap)
        log.warning(
            "delivery_failed",
            delivery_id=c.id,
            ezla_id=c.ezla_id,
            recipient=c.recipient,
            outcome=outcome,
            attempts=c.attempts,
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # database away (PostgreSQL restart): wait and try again
                log.warning("worker_cycle_failed", error=type(exc).__name__)
                busy = 0
            if not busy:
                self._stop.wait(self.poll)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ezla-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        try:
            with transaction(self.factory) as session:
                released = release(session, self.owner)
            log.info("leases_released", count=released)
        except Exception as exc:  # shutting down anyway; leases then simply expire
            log.warning("lease_release_failed", error=type(exc).__name__)

"""The delivery loop: one background thread per node claims due rows and hands each to its
channel; every state change of a row is ``outbox``'s."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from ezla.db import transaction, utcnow
from ezla.distribution.channels import Channels, DeliveryFailed
from ezla.distribution.outbox import Claim, claim, complete, fail, release
from ezla.log import get_logger
from ezla.problems import where

log = get_logger("ezla.distribution")


class _LeaseLost(Exception):
    """Raised inside a transaction to roll back an inbox write whose lease another worker took."""


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

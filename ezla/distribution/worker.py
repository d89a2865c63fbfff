"""The delivery loop: one background thread per node running an event loop that keeps up to
``concurrency`` deliveries in flight, at most ``per_destination`` of them to any one destination
(the registry, one payer's webhook, the local inboxes). A slow or hostile receiver therefore holds
only its own slots; every other row is claimed past it. Each remote attempt ends within the
channel's deadline, and leases are sized to outlast it, so a working worker is never fenced.

Deliveries start when a row is committed: ``wake()`` from the accepting request on this node, and
PostgreSQL ``LISTEN``/``NOTIFY`` from either node; polling is only the fallback. Every state change
of a row is ``outbox``'s.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.abc
import httpx
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import transaction, utcnow
from ezla.distribution.channels import REGISTRY_BATCH, Channels, DeliveryFailed, destination
from ezla.distribution.outbox import (
    NOTIFY_CHANNEL,
    Claim,
    claim,
    complete,
    complete_all,
    expire,
    fail,
    release,
    unclaim,
)
from ezla.log import get_logger
from ezla.problems import where

log = get_logger("ezla.distribution")
EXPIRE_EVERY = timedelta(seconds=1)  # dead-lettering is a sweep, not something every claim round needs
# A wake-up waits this long, so that one claim round (a transaction, a registry batch) carries the
# commits of many requests rather than one: a few milliseconds of lag for far fewer round trips.
COALESCE = 0.02


class _LeaseLost(Exception):
    """Raised inside a transaction to roll back an inbox write whose lease another worker took."""


class Worker:
    """``start``/``stop`` run it in the background; ``run_once`` is what the tests drive directly."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        channels: Channels,
        *,
        node_id: str,
        lease: timedelta | None = None,
        poll: float = 0.2,
        dead_after: timedelta = timedelta(hours=24),
        retry_cap: float = 300.0,
        concurrency: int = 32,
        per_destination: int = 4,
    ) -> None:
        self.factory = factory
        self.channels = channels
        self.owner = f"{node_id}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease or timedelta(seconds=2 * channels.deadline + 5)
        self.poll = poll
        self.dead_after = dead_after
        self.retry_cap = retry_cap
        self.concurrency = concurrency
        self.per_destination = per_destination
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._in_flight: Counter[str] = Counter()
        self._expired_at: datetime | None = None
        # Fault injection for the crash tests: die right after a send, before marking it done.
        self._crash_after = os.environ.get("EZLA_FAULT_CRASH_AFTER_SEND")

    def wake(self) -> None:
        """A row was committed: look now rather than at the next poll (thread-safe)."""
        self._wake.set()

    # --- one round, for tests and for the loop -------------------------------------------------
    def run_once(self) -> int:
        """Claim what is due (up to ``concurrency``), deliver it all, return how many were claimed."""
        return anyio.run(self._run_once)

    async def _run_once(self) -> int:
        async with self._client() as client, anyio.create_task_group() as tg:
            claims = await anyio.to_thread.run_sync(self._claim, self.concurrency, {})
            self._dispatch(tg, client, claims)
        return len(claims)

    def _client(self) -> httpx.AsyncClient:
        # Redirects are not followed (a webhook may not bounce us elsewhere); limits cover the pool.
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(timeout=httpx.Timeout(self.channels.deadline), limits=limits)

    def _claim(self, limit: int, in_flight: dict[str, int]) -> list[Claim]:
        """Due rows, at most ``per_destination`` in flight per remote destination: destinations
        already full are not even read, and a batch's rows beyond a destination's remaining room
        are given back in the same transaction (one batch can hold many rows of one webhook)."""
        now = utcnow()
        busy = frozenset(d for d, n in in_flight.items() if n >= self._capacity(d))
        room = Counter({d: self._capacity(d) - n for d, n in in_flight.items()})
        with transaction(self.factory) as session:
            expired = 0
            if self._expired_at is None or now - self._expired_at >= EXPIRE_EVERY:
                expired = expire(session, now=now, dead_after=self.dead_after)
                self._expired_at = now
            claims = claim(session, self.owner, now=now, lease=self.lease, limit=limit, busy=busy)
            kept, back = [], []
            for c in claims:
                d = destination(c)
                if d == "local" or room.get(d, self._capacity(d)) > 0:
                    room[d] = room.get(d, self._capacity(d)) - 1
                    kept.append(c)
                else:
                    back.append(c)
            if back:
                unclaim(session, back)
        if expired:
            log.warning("deliveries_expired", count=expired)
        return kept

    def _capacity(self, d: str) -> int:
        """Rows in flight a destination may hold: ``per_destination`` requests, and a request to
        the registry carries up to REGISTRY_BATCH rows."""
        return self.per_destination * (REGISTRY_BATCH if d == "registry" else 1)

    def _slots(self) -> int:
        """Requests in flight (what ``concurrency`` bounds): registry rows travel in batches."""
        registry = self._in_flight.get("registry", 0)
        return sum(self._in_flight.values()) - registry + -(-registry // REGISTRY_BATCH)

    def _dispatch(self, tg: anyio.abc.TaskGroup, client: httpx.AsyncClient, claims: Sequence[Claim]) -> None:
        local = [c for c in claims if self.channels.is_local(c.recipient)]
        if local:
            self._in_flight["local"] += len(local)
            tg.start_soon(self._local, local)
        registry = [c for c in claims if c.recipient == "registry"]
        for i in range(0, len(registry), REGISTRY_BATCH):
            batch = registry[i : i + REGISTRY_BATCH]
            self._in_flight["registry"] += len(batch)
            tg.start_soon(self._registry, batch, client)
        for c in claims:
            if not self.channels.is_local(c.recipient) and c.recipient != "registry":
                self._in_flight[destination(c)] += 1
                tg.start_soon(self._remote, c, client)

    # --- delivering ----------------------------------------------------------------------------
    async def _local(self, claims: list[Claim]) -> None:
        try:
            await anyio.to_thread.run_sync(self._local_batch, claims)
        except Exception as exc:  # the database went away mid-batch: the leases expire, rows retry
            log.warning("delivery_outcome_unrecorded", deliveries=len(claims), error=type(exc).__name__)
        finally:
            self._in_flight["local"] -= len(claims)

    def _local_batch(self, claims: list[Claim]) -> None:
        """Inbox rows are written in the transaction that marks them done: exactly once. If any
        lease was lost, the batch rolls back and each row is tried alone."""
        try:
            with transaction(self.factory) as session:
                self.channels.deliver_local(session, claims)
                if not complete_all(session, claims, now=utcnow()):
                    raise _LeaseLost
        except _LeaseLost:
            if len(claims) > 1:
                for c in claims:
                    self._local_batch([c])
                return
            log.warning("delivery_fenced", delivery_id=claims[0].id, ezla_id=claims[0].ezla_id)
            return
        except Exception as exc:  # a bug or a bad row: each row retries on its own
            log.error("delivery_error", error=type(exc).__name__, where=where(exc))
            for c in claims:
                self._failed(c, str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__)
            return
        for c in claims:
            log.info("delivered", delivery_id=c.id, ezla_id=c.ezla_id, recipient=c.recipient)

    async def _remote(self, c: Claim, client: httpx.AsyncClient) -> None:
        try:
            webhook = None
            if c.recipient == "employer_webhook":
                webhook = await anyio.to_thread.run_sync(self.channels.webhook_target, c)
            await self.channels.deliver_remote(c, client, webhook)
            if self._crash_after and self._crash_after in (c.recipient, "any"):
                log.warning("fault_injected_crash", delivery_id=c.id)
                os._exit(137)
            done = await anyio.to_thread.run_sync(self._complete, c)
            log.info(
                "delivered" if done else "delivery_fenced", delivery_id=c.id, ezla_id=c.ezla_id, recipient=c.recipient
            )
        except DeliveryFailed as exc:
            await anyio.to_thread.run_sync(self._failed, c, str(exc))
        except Exception as exc:  # a bug in a channel must not kill the worker; the row retries
            log.error("delivery_error", delivery_id=c.id, error=type(exc).__name__, where=where(exc))
            await anyio.to_thread.run_sync(self._failed, c, type(exc).__name__)
        finally:
            self._in_flight[destination(c)] -= 1

    async def _registry(self, claims: list[Claim], client: httpx.AsyncClient) -> None:
        try:
            try:
                errors = await self.channels.deliver_registry_batch(claims, client)
                if self._crash_after in ("registry", "any"):
                    log.warning("fault_injected_crash", deliveries=len(claims))
                    os._exit(137)
            except DeliveryFailed as exc:
                errors = [str(exc)] * len(claims)
            except Exception as exc:  # a bug in a channel must not kill the worker; the rows retry
                log.error("delivery_error", deliveries=len(claims), error=type(exc).__name__, where=where(exc))
                errors = [type(exc).__name__] * len(claims)
            done = [c for c, e in zip(claims, errors, strict=True) if e is None]
            if done:
                await anyio.to_thread.run_sync(self._complete_batch, done)
            for c, error in zip(claims, errors, strict=True):
                if error is not None:
                    await anyio.to_thread.run_sync(self._failed, c, error)
        except Exception as exc:  # the database went away: the leases expire, the rows retry
            log.warning("delivery_outcome_unrecorded", deliveries=len(claims), error=type(exc).__name__)
        finally:
            self._in_flight["registry"] -= len(claims)

    def _complete_batch(self, claims: list[Claim]) -> None:
        """One statement for the batch; if any lease was lost meanwhile, each row on its own."""
        try:
            with transaction(self.factory) as session:
                if not complete_all(session, claims, now=utcnow()):
                    raise _LeaseLost  # rolls the batch back
        except _LeaseLost:
            for c in claims:
                done = self._complete(c)
                log.info(
                    "delivered" if done else "delivery_fenced",
                    delivery_id=c.id,
                    ezla_id=c.ezla_id,
                    recipient=c.recipient,
                )
            return
        for c in claims:
            log.info("delivered", delivery_id=c.id, ezla_id=c.ezla_id, recipient=c.recipient)

    def _complete(self, c: Claim) -> bool:
        with transaction(self.factory) as session:
            return complete(session, c, now=utcnow())

    def _failed(self, c: Claim, error: str) -> None:
        """Record a failed attempt. When even that fails (the database is away: a failover), the
        row keeps its lease until it expires and is claimed again; the worker carries on."""
        try:
            with transaction(self.factory) as session:
                outcome = fail(session, c, error, now=utcnow(), dead_after=self.dead_after, retry_cap=self.retry_cap)
        except Exception as exc:
            log.warning("delivery_outcome_unrecorded", delivery_id=c.id, error=type(exc).__name__)
            return
        log.warning(
            "delivery_failed",
            delivery_id=c.id,
            ezla_id=c.ezla_id,
            recipient=c.recipient,
            outcome=outcome,
            attempts=c.attempts,
        )

    # --- the background loop -------------------------------------------------------------------
    async def _loop(self) -> None:
        async with self._client() as client, anyio.create_task_group() as tg:
            while not self._stop.is_set():
                claims: list[Claim] = []
                free = self.concurrency - self._slots()
                if free > 0:
                    self._wake.clear()
                    try:
                        claims = await anyio.to_thread.run_sync(self._claim, free, dict(self._in_flight))
                    except Exception as exc:  # database away (PostgreSQL restart): wait and try again
                        log.warning("worker_cycle_failed", error=type(exc).__name__)
                    self._dispatch(tg, client, claims)
                if len(claims) < max(free, 1):
                    await self._idle(woken_by_rows=free > 0)
            # Draining: let what is in flight finish within the deadline, then give up the rest.
            with anyio.move_on_after(self.channels.deadline):
                while sum(self._in_flight.values()) > 0:
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()

    async def _idle(self, *, woken_by_rows: bool) -> None:
        """Until a finished delivery frees a slot, the poll interval passes, stop, or (when there
        are free slots to fill) a wake-up. Always yields at least once: a loop that does not would
        starve every delivery in flight."""
        in_flight = sum(self._in_flight.values())
        deadline = anyio.current_time() + self.poll
        while True:
            await anyio.sleep(0.01)
            if woken_by_rows and self._wake.is_set():
                await anyio.sleep(COALESCE)
                return
            if anyio.current_time() >= deadline or self._stop.is_set() or sum(self._in_flight.values()) < in_flight:
                return

    def _listen(self) -> None:
        """PostgreSQL only: a dedicated connection LISTENs for outbox commits on either node."""
        engine = self.factory.kw["bind"]
        while not self._stop.is_set():
            proxy: Any = None
            try:
                proxy = engine.raw_connection()
                conn = proxy.driver_connection
                conn.autocommit = True
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        self._wake.set()
            except Exception as exc:  # the database went away: reconnect after a pause
                log.warning("outbox_listen_failed", error=type(exc).__name__)
                self._stop.wait(1.0)
            finally:
                if proxy is not None:
                    with contextlib.suppress(Exception):
                        proxy.invalidate()  # a LISTENing connection never goes back to the pool

    def _supervise(self) -> None:
        """The loop, started again if anything escapes it: a worker that dies quietly would leave
        every row of this node's claims waiting for their leases to expire, and then some."""
        while not self._stop.is_set():
            try:
                anyio.run(self._loop)
            except Exception as exc:  # logged, and the loop runs again
                log.error("worker_crashed", error=type(exc).__name__, where=where(exc))
                self._in_flight.clear()
                self._stop.wait(1.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="ezla-delivery", daemon=True)
        self._thread.start()
        if self.factory.kw["bind"].dialect.name == "postgresql":
            self._listener = threading.Thread(target=self._listen, name="ezla-outbox-listen", daemon=True)
            self._listener.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._listener:
            self._listener.join(2.0)
        try:
            with transaction(self.factory) as session:
                released = release(session, self.owner)
            log.info("leases_released", count=released)
        except Exception as exc:  # shutting down anyway; leases then simply expire
            log.warning("lease_release_failed", error=type(exc).__name__)

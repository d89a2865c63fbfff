"""The CA's background work on every node: a fresh CRL when due, and the audit trail linked each
second and signed each minute. Every job is safe on both nodes at once (the audit head's lock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from ezla.audit import service as audit
from ezla.ca import service
from ezla.db import transaction, utcnow
from ezla.log import get_logger

log = get_logger("ezla.ca")


class Periodic:
    """``run_once`` every ``every`` seconds on a daemon thread, surviving its failures."""

    name = "periodic"

    def __init__(self, every: float) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> object:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # database away or PKI missing: try again next round
                log.warning(f"{self.name}_failed", error=type(exc).__name__)
            self._stop.wait(self.every)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"ezla-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


class CrlRefresher(Periodic):
    name = "crl_refresh"

    def __init__(
        self,
        factory: sessionmaker[Session],
        ctx: Callable[[], service.CaContext],
        *,
        refresh: timedelta,
        check_every: float = 60.0,
    ) -> None:
        super().__init__(check_every)
        self.factory, self.ctx, self.refresh = factory, ctx, refresh

    def run_once(self) -> bool:
        now = utcnow()
        made = False
        for crl in service.publish_crls(self.factory, self.ctx(), now=now, refresh=self.refresh):
            if crl.this_update == now:  # else the latest one is still fresh
                log.info("crl_generated", number=crl.number)
                made = True
        return made


class AuditKeeper(Periodic):
    """Links pending audit events into the chain every ``every`` seconds and signs the head with
    the audit key when it has moved and the newest checkpoint is older than ``sign_every``."""

    name = "audit"

    def __init__(
        self,
        factory: sessionmaker[Session],
        ctx: Callable[[], service.CaContext],
        *,
        every: float = 1.0,
        sign_every: timedelta = timedelta(minutes=1),
    ) -> None:
        super().__init__(every)
        self.factory, self.ctx, self.sign_every = factory, ctx, sign_every
        self._last_signed: datetime | None = None

    def run_once(self) -> int:
        linked = 0
        while True:
            with transaction(self.factory) as session:
                n = audit.sequence(session)
            linked += n
            if n < audit.BATCH:
                break
        now = utcnow()
        if self._last_signed is None or self._last_signed + self.sign_every <= now:
            keys = self.ctx().keys
            with transaction(self.factory) as session:
                newest = audit.latest_checkpoint_at(session)
                if newest is None or newest + self.sign_every <= now:
                    cp = audit.checkpoint(session, keys.audit_key, keys.audit, now=now)  # type: ignore[arg-type]
                    if cp is not None:
                        log.info("audit_checkpoint", seq=cp.seq)
            self._last_signed = now
        return linked

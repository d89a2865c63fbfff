"""Keeps the CRL fresh on a schedule, on every node (the audit lock makes concurrent runs safe)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from ezla.ca import service
from ezla.db import utcnow
from ezla.log import get_logger

log = get_logger("ezla.ca")


class CrlRefresher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        ctx: Callable[[], service.CaContext],
        *,
        refresh: timedelta,
        check_every: float = 60.0,
    ) -> None:
        self.factory, self.ctx, self.refresh, self.check_every = factory, ctx, refresh, check_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        now = utcnow()
        crl = service.publish_crl(self.factory, self.ctx(), now=now, refresh=self.refresh)
        if crl.this_update != now:
            return False  # the latest one is still fresh
        log.info("crl_generated", number=crl.number)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # database away or PKI missing: try again next round
                log.warning("crl_refresh_failed", error=type(exc).__name__)
            self._stop.wait(self.check_every)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ezla-crl", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

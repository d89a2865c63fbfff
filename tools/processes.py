"""Child processes for ``make cluster`` and the tests: each in its own session, logged to a file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx


class ClusterError(RuntimeError):
    """The cluster cannot be brought up (missing HAProxy, database, a process that did not start)."""


@dataclass
class Process:
    """One child process: its own session (Ctrl-C in the terminal reaches only us), log to a file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        if self.alive():
            raise ClusterError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise ClusterError(f"{self.name} exited with {self.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(self.ready_url, timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.05)
        raise ClusterError(f"{self.name} not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ClusterError(f"{self.name} was never started")
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: no drain, no lease release, sockets reset (a crashed machine, roughly)."""
        self.send(signal.SIGKILL)
        self.wait(10)

    def terminate(self) -> None:
        """SIGTERM, once (a second SIGTERM cuts a node's drain short). A frozen process is thawed."""
        self.send(signal.SIGCONT)
        self.send(signal.SIGTERM)

    def stop(self, timeout: float = 30.0, *, signalled: bool = False) -> int | None:
        """SIGTERM (unless ``signalled`` already) and wait; SIGKILL after ``timeout``."""
        if not self.alive():
            return self.returncode
        if not signalled:
            self.terminate()
        if self.wait(timeout) is None:
            self.kill()
        return self.returncode

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

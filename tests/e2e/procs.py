"""Real processes on loopback for end-to-end tests: nodes, the registry, HAProxy.

Every wait is bounded; every process is killed at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

EZLA = str(Path(sys.executable).parent / "ezla")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, timeout: float = 30.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == status:
                return
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready: {last}")


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *, wait: bool = True) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait and self.ready_url:
            try:
                wait_http(self.ready_url)
            except TimeoutError:
                raise TimeoutError(f"{self.name} did not start:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, sig: int) -> None:
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EZLA_")}
    env.update(extra)
    return env


def node(name: str, port: int, env: dict[str, str], log_dir: Path, *, node_id: str) -> Proc:
    return Proc(
        name,
        [EZLA, "serve", "--host", "127.0.0.1", "--port", str(port), "--node-id", node_id],
        {**env, "EZLA_PUBLIC_URL": env.get("EZLA_PUBLIC_URL", "http://ezla.127.0.0.1.nip.io:8000")},
        log_dir / f"{name}.log",
        f"http://127.0.0.1:{port}/health/ready",
    )

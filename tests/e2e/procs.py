"""Real processes on loopback for end-to-end tests: nodes, the registry, HAProxy.

Every wait is bounded; every process is killed at teardown.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx

from tools.cluster import Process

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


class Proc(Process):
    """tools.cluster's process handle, chainable for tests: ``node(...).start()`` returns it."""

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> Proc:  # type: ignore[override]
        super().start(wait=wait, timeout=timeout)
        return self


# Every test client is 127.0.0.1: per-address limits would make tests depend on each other's pace.
# Tests of the limits themselves pass their own EZLA_RATE_LIMITS. No "tsa" here: the rolling-upgrade
# test starts an older release with this, and a release refuses a bucket it does not know.
UNLIMITED = "challenge=0,login=0,enrollment=0,ocsp=0,submission=0"


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EZLA_")}
    env["EZLA_RATE_LIMITS"] = UNLIMITED
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

"""compose.yaml's database formation, without a Docker engine: each member container runs
deploy/pg_auto_failover/entrypoint.sh, so the same script runs here on loopback as the postgres user,
against Debian's pg_auto_failover. The monitor and two data nodes form a formation with the shared
failover timing, and a restarted member resumes (the "later boot" path) instead of re-creating.
Also: every app's database URL in compose.yaml names every data node."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from tests.e2e.procs import free_port
from tools.formation import FAST_MONITOR, POSTGRES_USER, find_pg_autoctl, postgres_bindir
from tools.processes import Process

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # serial: failover timings, one at a time
REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "pg_auto_failover" / "entrypoint.sh"


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ezla-pgaf-"))
    shutil.chown(path, POSTGRES_USER)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _member(root: Path, name: str, **env: str) -> Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "EZLA_"))}
    base |= {
        "PATH": f"{postgres_bindir()}:/usr/bin:/bin",
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root / "xdg" / "config"),
        "XDG_DATA_HOME": str(root / "xdg" / "share"),
        "XDG_RUNTIME_DIR": str(root / "xdg" / "run"),
        "PGDATA": str(root / name),
        "PGAF_CONF_DIR": str(ENTRYPOINT.parent),
        "PGAF_HOSTNAME": "127.0.0.1",
        **env,
    }
    args = [str(ENTRYPOINT)]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        args = [runuser, "-u", POSTGRES_USER, "--", "/usr/bin/env", *(f"{k}={v}" for k, v in base.items()), *args]
    proc = Process(f"pgaf-{name}", args, base, root / "logs" / f"{name}.log")
    proc.start()
    return proc


def _states(monitor_port: int) -> dict[str, str]:
    try:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{monitor_port}/pg_auto_failover", connect_timeout=2
        ) as c:
            return dict(c.execute("SELECT nodename, reportedstate FROM pgautofailover.node").fetchall())
    except psycopg.Error:
        return {}


def _system_identifier(port: int) -> int:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2) as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return int(row[0])


def _wait_monitor(monitor_port: int, procs: list[Process], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            url = f"postgresql://postgres@127.0.0.1:{monitor_port}/pg_auto_failover"
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1 FROM pgautofailover.node LIMIT 1")
            return
        except psycopg.Error:
            assert procs[0].alive(), f"the monitor exited:\n{procs[0].log_tail()}"
            assert time.monotonic() < deadline, f"the monitor did not come up:\n{procs[0].log_tail()}"
            time.sleep(0.3)


def _wait(monitor_port: int, wanted: dict[str, str], procs: list[Process], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while _states(monitor_port) != wanted:
        dead = [p for p in procs if not p.alive()]
        assert not dead, f"{dead[0].name} exited:\n{dead[0].log_tail()}"
        assert time.monotonic() < deadline, f"{_states(monitor_port)} != {wanted}:\n{procs[-1].log_tail()}"
        time.sleep(0.3)


def test_compose_members_form_a_formation_and_resume(root: Path) -> None:
    find_pg_autoctl()
    monitor_port, port_a, port_b = free_port(), free_port(), free_port()
    uri = f"postgresql://autoctl_node@127.0.0.1:{monitor_port}/pg_auto_failover?sslmode=require"
    procs: list[Process] = []
    try:
        procs.append(_member(root, "monitor", PGAF_ROLE="monitor", PGAF_PORT=str(monitor_port)))
        _wait_monitor(monitor_port, procs)  # compose: pg-a depends on the monitor being healthy
        procs.append(_member(root, "a", PGAF_ROLE="node", PGAF_NAME="a", PGAF_PORT=str(port_a), PGAF_MONITOR=uri))
        _wait(monitor_port, {"a": "single"}, procs)
        procs.append(_member(root, "b", PGAF_ROLE="node", PGAF_NAME="b", PGAF_PORT=str(port_b), PGAF_MONITOR=uri))
        _wait(monitor_port, {"a": "primary", "b": "secondary"}, procs)

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{monitor_port}/pg_auto_failover") as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone() for name in FAST_MONITOR}
        assert shown["pgautofailover.primary_demote_timeout"] == ("3s",)
        assert shown["pgautofailover.node_considered_unhealthy_timeout"] == ("2s",)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port_a}/ezla") as conn:
            names = conn.execute("SHOW synchronous_standby_names").fetchone()
        assert names is not None and names[0].startswith("ANY 1")

        # A later boot of the same container: resumed (same database system), back to the standby it was.
        identity = _system_identifier(port_b)
        procs[2].stop(30)
        _wait(monitor_port, {"a": "wait_primary", "b": "secondary"}, procs[:2], timeout=30)
        procs[2] = _member(root, "b", PGAF_ROLE="node", PGAF_NAME="b", PGAF_PORT=str(port_b), PGAF_MONITOR=uri)
        _wait(monitor_port, {"a": "primary", "b": "secondary"}, procs)
        assert _system_identifier(port_b) == identity
    finally:
        for proc in reversed(procs):
            proc.stop(30)


def test_compose_apps_name_every_data_node() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    data_nodes = {s["hostname"] for s in services.values() if s.get("environment", {}).get("PGAF_ROLE") == "node"}
    assert data_nodes == {"pg-a", "pg-b"}
    env = compose["x-ezla"]["environment"]
    for key in ("EZLA_DATABASE_URL", "EZLA_REGISTRY_DATABASE_URL"):
        url = urlsplit(env[key])
        hosts = {h.rsplit(":", 1)[0] for h in url.netloc.split("@", 1)[1].split(",")}
        assert hosts == data_nodes and "target_session_attrs=read-write" in url.query, key

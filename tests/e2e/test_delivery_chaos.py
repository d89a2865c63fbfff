"""Delivery survives crashes and outages: real node and registry processes on loopback.

Runs against SQLite and PostgreSQL node databases. Every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ezla.client import EzlaClient
from tests.conftest import PASSPHRASE, REGISTRY_READ_TOKEN, REGISTRY_TOKEN, pg_create, pg_drop
from tests.e2e.procs import EZLA, Proc, base_env, free_port, node, wait_http
from tests.factories import enroll_doctor_cli, signed_sick_leave

# Timings (recovery, response times) are measured: one at a time, never beside another test worker.
pytestmark = pytest.mark.serial

AUTH = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path, pki_dir: Path) -> Iterator[dict[str, str]]:
    import secrets

    name = f"ezla_e2e_{secrets.token_hex(4)}"
    url = f"sqlite:///{tmp_path}/ezla.sqlite3" if request.param == "sqlite" else pg_create(name)
    registry_port = free_port()
    e = base_env(
        EZLA_DATABASE_URL=url,
        EZLA_REGISTRY_DATABASE_URL=f"sqlite:///{tmp_path}/registry.sqlite3",
        EZLA_REGISTRY_TOKEN=REGISTRY_TOKEN,
        EZLA_REGISTRY_READ_TOKEN=REGISTRY_READ_TOKEN,
        EZLA_REGISTRY_URL=f"http://127.0.0.1:{registry_port}",
        EZLA_PKI_DIR=str(pki_dir),
        EZLA_CA_KEY_PASSPHRASE=PASSPHRASE,
        EZLA_VAR_DIR=str(tmp_path / "var"),
        EZLA_LEASE_SECONDS="2",
        EZLA_RETRY_CAP_SECONDS="1",
        EZLA_WORKER_POLL_SECONDS="0.1",
        EZLA_DRAIN_SECONDS="0.2",
        REGISTRY_PORT=str(registry_port),
    )
    for cmd in (["db", "upgrade"], ["registry", "db-upgrade"]):
        subprocess.run([EZLA, *cmd], env=e, check=True, capture_output=True, timeout=60)
    yield e
    if request.param == "postgresql":
        pg_drop(name)


def _registry(e: dict[str, str], log_dir: Path) -> Proc:
    port = e["REGISTRY_PORT"]
    return Proc(
        "registry",
        [EZLA, "registry", "serve", "--port", port],
        e,
        log_dir / "registry.log",
        f"http://127.0.0.1:{port}/health/ready",
    )


def _operator(e: dict[str, str]) -> str:
    out = subprocess.run(
        [EZLA, "account", "add", "--role", "operator", "--json"],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return str(json.loads(out.stdout)["token"])


def _wait_all_delivered(url: str, op: str, expected: int, timeout: float = 30.0) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    items: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        items = httpx.get(
            f"{url}/v1/ops/deliveries", params={"limit": 200}, headers={"Authorization": f"Bearer {op}"}
        ).json()["items"]
        if len(items) == expected and all(d["status"] == "delivered" for d in items):
            return items
        time.sleep(0.2)
    raise AssertionError(f"not all delivered in {timeout}s: {[(d['recipient'], d['status']) for d in items]}")


def _check_registry(e: dict[str, str], ids: list[str]) -> dict[str, int]:
    base = f"http://127.0.0.1:{e['REGISTRY_PORT']}"
    for ezla_id in ids:
        r = httpx.get(f"{base}/v1/registry/ezla/{ezla_id}", headers=AUTH)
        assert r.status_code == 200 and r.json()["status"] == "issued"
    counts = httpx.get(f"{base}/v1/registry/ingest-log", headers=AUTH).json()["counts"]
    assert set(counts) == {f"ezla:{i}:issued:registry" for i in ids}  # duplicates only ever share a key
    return counts  # type: ignore[no-any-return]


def test_worker_crash_between_send_and_done(env, tmp_path):
    logs = tmp_path / "logs"
    registry = _registry(env, logs).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The e-ZLA are accepted by a node without a worker first: the crash must hit a delivery, not
    # race the submissions (with a 0.1 s poll the worker could crash the node mid-request).
    accepting = node("node-a0", port, {**env, "EZLA_WORKER": "0"}, logs, node_id="A").start()
    try:
        op = _operator(env)
        doctor = enroll_doctor_cli(env, url, tmp_path)
        with EzlaClient([url], attempts=1) as client:
            ids = [client.submit(signed_sick_leave(doctor))["id"] for _ in range(3)]
    finally:
        accepting.stop()
    # Not waited for: with deliveries already pending it may crash before it ever reports ready.
    crashing = node("node-a", port, {**env, "EZLA_FAULT_CRASH_AFTER_SEND": "registry"}, logs, node_id="A")
    crashing.start(wait=False)
    try:
        assert crashing.popen is not None
        crashing.popen.wait(timeout=30)  # the fault: it sent to the registry, then died
        assert crashing.popen.returncode == 137
        restarted = node("node-a2", port, env, logs, node_id="A").start()
        try:
            _wait_all_delivered(url, op, expected=9)
            counts = _check_registry(env, ids)
            assert max(counts.values()) >= 2, counts  # the crashed send really was repeated...
            inbox = httpx.get(
                f"{url}/v1/ops/deliveries", params={"limit": 200}, headers={"Authorization": f"Bearer {op}"}
            ).json()["items"]
            assert sorted(d["recipient"] for d in inbox) == sorted(["registry", "employer", "patient"] * 3)
        finally:
            restarted.stop()
    finally:
        if crashing.alive():
            crashing.kill()
        registry.stop()


def test_registry_down_for_a_while(env, tmp_path):
    logs = tmp_path / "logs"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = node("node-a", port, env, logs, node_id="A").start()
    registry = _registry(env, logs)
    try:
        op = _operator(env)
        doctor = enroll_doctor_cli(env, url, tmp_path)
        with EzlaClient([url], attempts=1) as client:
            ids = [client.submit(signed_sick_leave(doctor))["id"] for _ in range(4)]
        time.sleep(2.5)  # several failed attempts against the missing registry
        pending = httpx.get(
            f"{url}/v1/ops/deliveries", params={"status": "pending"}, headers={"Authorization": f"Bearer {op}"}
        ).json()["items"]
        assert {d["recipient"] for d in pending} == {"registry"} and all(d["attempts"] >= 1 for d in pending)
        registry.start()
        started = time.monotonic()
        _wait_all_delivered(url, op, expected=12, timeout=20)
        print(f"registry back: all deliveries arrived in {time.monotonic() - started:.2f}s")
        counts = _check_registry(env, ids)
        assert all(v == 1 for v in counts.values()), counts
        wait_http(f"{url}/health/ready")
    finally:
        proc.stop()
        registry.stop()

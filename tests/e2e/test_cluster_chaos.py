"""Chaos on the twin-node cluster: real processes on loopback, a steady load of signed e-ZLA.

One cluster per module (``tools.cluster.Cluster``: HAProxy, node A, node B, registry) on a fresh
PostgreSQL database; each test disturbs it under load, then checks the invariants of issue 6:
every acknowledged submission stored once, numbers unique, every e-ZLA delivered once in effect
to the registry, the employer and the patient, and no error the caller could see while the SDK
retries. Each test prints the failover gap (longest time between two successful responses) and
the first-try errors (requests whose first attempt failed and had to be retried).

Missing HAProxy or PostgreSQL fails these tests; nothing here skips.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN
from tests.e2e.chaos import REGISTRY_READ_TOKEN, Chaos, chaos_cluster, chaos_env, under_load
from tests.factories import enroll, signed_sick_leave
from tools.cluster import find_haproxy

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # serial: failover timings, one at a time


def _pg(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Iterator[Chaos]:
    find_haproxy()  # fails (ClusterError) rather than skips when HAProxy is missing
    name = f"ezla_chaos_{secrets.token_hex(4)}"
    for db in (name, f"{name}_registry"):
        _admin(f'CREATE DATABASE "{db}"')  # fails loudly when PostgreSQL is not running
    root = tmp_path_factory.mktemp("chaos")
    cluster = chaos_cluster(
        root, pki_dir, chaos_env(), database_url=_pg(name), registry_database_url=_pg(f"{name}_registry")
    )
    try:
        cluster.start()
        operator = cluster.operator_token()
        with httpx.Client(base_url=cluster.lb_url, timeout=10) as http:
            doctor = enroll(http, operator)
        yield Chaos(cluster, _pg(name), doctor, REGISTRY_READ_TOKEN)
    finally:
        cluster.stop()
        for db in (name, f"{name}_registry"):
            _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def healthy(chaos: Chaos) -> Iterator[None]:
    """Each test starts and ends with both nodes up and in HAProxy's pool."""

    def restore() -> None:
        for handle in chaos.cluster.nodes.values():
            handle.sigcont()
            if not handle.alive():
                handle.start()
        chaos.cluster.wait_balanced({"A", "B"})

    restore()
    yield
    restore()


# --- the tests -------------------------------------------------------------------------------
def test_kill9_node_behind_haproxy(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    load = under_load(chaos, capsys, "kill -9 node A, HAProxy", [chaos.cluster.lb_url], chaos.cluster.node("A").kill)
    assert load.errors == []


def test_kill9_node_sdk_failover_only(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    load = under_load(
        chaos, capsys, "kill -9 node B, SDK failover", chaos.cluster.node_urls, chaos.cluster.node("B").kill
    )
    assert load.errors == []


@pytest.mark.parametrize("path", ["haproxy", "sdk"])
def test_hung_node(chaos: Chaos, capsys: pytest.CaptureFixture[str], path: str) -> None:
    node = chaos.cluster.node("B")

    def hang() -> None:
        node.sigstop()
        time.sleep(5)  # longer than a lease (3 s): the twin takes over B's deliveries
        node.sigcont()

    # Without HAProxy only the client's timeout notices a hung node: clinic software that wants
    # fast failover sets a short one (any submission is safe to repeat).
    urls, timeout = ([chaos.cluster.lb_url], 10.0) if path == "haproxy" else (chaos.cluster.node_urls, 2.0)
    load = under_load(chaos, capsys, f"SIGSTOP node B for 5 s, {path}", urls, hang, timeout=timeout)
    assert load.errors == []


def test_postgres_restart_sdk_retries(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]

    def restart_postgres() -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    load = under_load(chaos, capsys, "PostgreSQL restart, SDK", chaos.cluster.node_urls, restart_postgres)
    assert load.errors == []


# --- trust lifecycle across the twins ---------------------------------------------------------
def test_revocation_on_one_node_holds_on_the_other_at_once(chaos: Chaos) -> None:
    """The thief scenario on real twin processes: renew with the stolen key, revoke the original
    with keyCompromise on node A, and node B refuses the renewal's documents and every token at
    once; an operator's revocation of an employer token on A holds on B too."""
    from cryptography import x509

    from tests.factories import XML, log_in, renew

    operator = chaos.cluster.operator_token()
    a, b = (httpx.Client(base_url=chaos.cluster.node(n).url, timeout=10) for n in ("A", "B"))
    with a, b:
        for node in (a, b):  # after the PostgreSQL restart test a pool may still hold dead connections
            for _ in range(5):
                if node.get("/health/ready").status_code == 200:
                    break
                time.sleep(0.2)
        doctor = enroll(a, operator)
        stolen = renew(a, doctor)
        token = log_in(b, stolen).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        probe = "/v1/ezla/00000000-0000-0000-0000-000000000000"
        assert b.get(probe, headers=bearer).status_code == 404
        employer = a.post(
            "/v1/accounts",
            json={"role": "employer", "nip": "5260250274"},
            headers={"Authorization": f"Bearer {operator}"},
        ).json()

        started = time.monotonic()
        r = a.post(
            f"/v1/ca/certificates/{doctor.serial}/revocation",
            json={"reason": "keyCompromise"},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert r.status_code == 200 and r.json()["lineage_revoked"] == [stolen.serial]
        a.delete(f"/v1/accounts/{employer['account']['id']}", headers={"Authorization": f"Bearer {operator}"})
        assert b.get(probe, headers=bearer).status_code == 401
        assert b.get("/v1/employer/ezla", headers={"Authorization": f"Bearer {employer['token']}"}).status_code == 401
        refused = b.post("/v1/ezla", content=signed_sick_leave(stolen), headers=XML)
        assert refused.json()["code"] == "certificate-revoked"
        crl = x509.load_der_x509_crl(b.get("/v1/ca/crl").content)
        assert {doctor.cert.serial_number, stolen.cert.serial_number} <= {e.serial_number for e in crl}
        print(f"\n[trust] revoked on A, refused on B within {(time.monotonic() - started) * 1000:.0f} ms")

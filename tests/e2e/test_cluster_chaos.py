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

import itertools
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from ezla.client import EzlaClient
from tests.conftest import PASSPHRASE, PG_ADMIN, PUBLIC_URL
from tests.e2e.procs import base_env, free_port
from tests.factories import EnrolledDoctor, enroll, signed_sick_leave
from tools.cluster import Cluster, find_haproxy

pytestmark = pytest.mark.slow

LOAD_THREADS = 2
PACE = 0.04  # seconds between submissions per thread: ~50 e-ZLA/s in all, steady
RECIPIENTS = ("registry", "employer", "patient")
DELIVERY_DEADLINE = 60.0
REGISTRY_TOKEN = "chaos-registry-token"  # test credentials on loopback: the nodes write with this one
REGISTRY_READ_TOKEN = "chaos-registry-read-token"  # and the checks read with this one


@dataclass
class Chaos:
    cluster: Cluster
    db_url: str
    doctor: EnrolledDoctor
    registry_token: str


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
    env = base_env(
        EZLA_CA_KEY_PASSPHRASE=PASSPHRASE,
        EZLA_REGISTRY_TOKEN=REGISTRY_TOKEN,
        EZLA_REGISTRY_READ_TOKEN=REGISTRY_READ_TOKEN,
        EZLA_LEASE_SECONDS="3",
        EZLA_WORKER_POLL_SECONDS="0.1",
        EZLA_RETRY_CAP_SECONDS="1",
        # The production default: HAProxy sees a drain in ~0.7 s when idle, but its checks slow down
        # when the whole suite shares two cores (1.5 s once let a request reach a stopping node).
        EZLA_DRAIN_SECONDS="3",
    )
    cluster = Cluster(
        lb_port=free_port(),
        node_ports={"A": free_port(), "B": free_port()},
        registry_port=free_port(),
        stats_port=free_port(),
        database_url=_pg(name),
        registry_database_url=_pg(f"{name}_registry"),
        var_dir=root / "var",
        pki_dir=pki_dir,
        public_url=PUBLIC_URL,
        env=env,
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


# --- load ------------------------------------------------------------------------------------
@dataclass
class Load:
    """Threads submitting pre-signed e-ZLA at a steady pace through an SDK client each."""

    urls: list[str]
    docs: list[list[tuple[str, bytes]]]
    seconds: float
    attempts: int = 8
    timeout: float = 10.0
    acked: dict[str, dict[str, object]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    first_try_errors: int = 0
    failed_attempts: int = 0
    successes: dict[int, list[float]] = field(default_factory=dict)  # per thread
    started: float = 0.0
    ended: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self.started = time.monotonic()
        deadline = self.started + self.seconds
        # Thread i prefers node i: with the SDK alone, load is spread and a lost node hurts someone.
        n = len(self.urls)
        self._threads = [
            threading.Thread(
                target=self._run, args=(i, self.urls[i % n :] + self.urls[: i % n], batch, deadline), daemon=True
            )
            for i, batch in enumerate(self.docs)
        ]
        for t in self._threads:
            t.start()
        return self

    def _run(self, i: int, urls: list[str], batch: list[tuple[str, bytes]], deadline: float) -> None:
        done = self.successes.setdefault(i, [])
        with EzlaClient(urls, attempts=self.attempts, timeout=self.timeout) as client:
            for document_id, xml in batch:
                if time.monotonic() >= deadline:
                    return
                began = time.monotonic()
                before = client.failovers
                try:
                    answer = client.submit(xml)
                except Exception as exc:  # a client-visible error: what these tests must never see
                    with self._lock:
                        self.errors.append(f"{document_id}: {type(exc).__name__}: {exc}")
                else:
                    with self._lock:
                        self.acked[document_id] = answer
                        done.append(time.monotonic())
                retried = client.failovers - before
                if retried:
                    with self._lock:
                        self.first_try_errors += 1
                        self.failed_attempts += retried
                time.sleep(max(0.0, PACE - (time.monotonic() - began)))
            with self._lock:
                self.errors.append("ran out of pre-signed documents: raise the supply")

    def join(self) -> Load:
        for t in self._threads:
            t.join(self.seconds + 120)
            assert not t.is_alive(), "a load thread hung"
        self.ended = time.monotonic()
        return self

    def _gap(self, marks: list[float]) -> float:
        marks = sorted([self.started, *marks, self.ended])
        return max(b - a for a, b in itertools.pairwise(marks))

    @property
    def gap(self) -> float:
        """Failover gap: the longest stretch in which no client got a successful response."""
        return self._gap([t for ts in self.successes.values() for t in ts])

    @property
    def worst_client_gap(self) -> float:
        """The longest stretch one client waited between two successes (it may sit on a hung node)."""
        return max(self._gap(ts) for ts in self.successes.values())

    def summary(self, name: str) -> str:
        return (
            f"[chaos] {name}: {len(self.acked)} acknowledged in {self.ended - self.started:.1f} s, "
            f"failover gap {self.gap * 1000:.0f} ms (worst single client {self.worst_client_gap * 1000:.0f} ms), "
            f"first-try errors {self.first_try_errors} "
            f"({self.failed_attempts} failed attempts), client-visible errors {len(self.errors)}"
        )


def presign(doctor: EnrolledDoctor, seconds: float) -> list[list[tuple[str, bytes]]]:
    per_thread = int(seconds / PACE) + 20
    batches = []
    for _ in range(LOAD_THREADS):
        batch = []
        for _ in range(per_thread):
            xml = signed_sick_leave(doctor)
            found = re.search(rb'DocumentId="([^"]+)"', xml)
            assert found is not None
            batch.append((found.group(1).decode(), xml))
        batches.append(batch)
    return batches


def under_load(
    chaos: Chaos,
    capsys: pytest.CaptureFixture[str],
    name: str,
    urls: list[str],
    disturb: Callable[[], None],
    *,
    seconds: float = 10.0,
    at: float = 2.5,
    timeout: float = 10.0,
) -> Load:
    load = Load(urls, presign(chaos.doctor, seconds), seconds, timeout=timeout).start()
    time.sleep(at)
    disturb()
    load.join()
    with capsys.disabled():
        print("\n" + load.summary(name))
    assert load.acked, "nothing was acknowledged"
    check_invariants(chaos, load, capsys)
    return load


# --- invariants ------------------------------------------------------------------------------
def check_invariants(chaos: Chaos, load: Load, capsys: pytest.CaptureFixture[str]) -> None:
    acked = load.acked
    ids = {str(a["id"]) for a in acked.values()}
    with psycopg.connect(chaos.db_url, connect_timeout=10) as conn:
        # Every acknowledged submission is stored exactly once, under the id it was answered with.
        rows = conn.execute(
            "SELECT document_id, id, series, number FROM ezla_sick_leaves WHERE document_id = ANY(%s)",
            (list(acked),),
        ).fetchall()
        stored: dict[str, list[tuple[str, str, int]]] = {}
        for document_id, ezla_id, series, number in rows:
            stored.setdefault(document_id, []).append((ezla_id, series, number))
        for document_id, answer in acked.items():
            expected = (answer["id"], answer["series"], int(str(answer["number"])))
            assert stored.get(document_id) == [expected], document_id
        # Numbers are unique over the whole database, not only this test's e-ZLA.
        dupes = conn.execute(
            "SELECT series, number FROM ezla_sick_leaves GROUP BY series, number HAVING count(*) > 1"
        ).fetchall()
        assert dupes == []

        # Every e-ZLA reaches the three recipients: wait (bounded) for the outbox to empty.
        deadline = time.monotonic() + DELIVERY_DEADLINE
        while True:
            states = conn.execute(
                "SELECT ezla_id, recipient, status FROM dist_deliveries WHERE ezla_id = ANY(%s) AND event = 'issued'",
                (list(ids),),
            ).fetchall()
            conn.commit()
            dead = [s for s in states if s[2] == "dead"]
            assert not dead, f"dead-lettered: {dead[:5]}"
            pending = [s for s in states if s[2] != "delivered"]
            if not pending:
                break
            assert time.monotonic() < deadline, f"{len(pending)} deliveries still pending: {pending[:5]}"
            time.sleep(0.2)
        per_pair: dict[tuple[str, str], int] = {}
        for ezla_id, recipient, _ in states:
            per_pair[ezla_id, recipient] = per_pair.get((ezla_id, recipient), 0) + 1
        assert per_pair == {(i, r): 1 for i in ids for r in RECIPIENTS}

        # Local inboxes: one row per (e-ZLA, event), whatever the retries.
        for table in ("dist_employer_inbox", "dist_patient_inbox"):
            counts: dict[str, int] = dict(
                conn.execute(
                    f"SELECT ezla_id, count(*) FROM {table} WHERE ezla_id = ANY(%s) AND event = 'issued' "
                    "GROUP BY ezla_id",
                    (list(ids),),
                ).fetchall()
            )
            assert counts == dict.fromkeys(ids, 1), table

    # The registry: each e-ZLA exactly once (PUTs may repeat, the registry absorbs the repeats).
    auth = {"Authorization": f"Bearer {chaos.registry_token}"}
    with httpx.Client(base_url=chaos.cluster.registry_url, headers=auth, timeout=10) as registry:
        log = registry.get("/v1/registry/ingest-log").json()["counts"]
        keys = {f"ezla:{i}:issued:registry" for i in ids}
        assert keys <= set(log), "an e-ZLA never reached the registry"
        repeats = sum(log[k] - 1 for k in keys)
        for document_id, answer in acked.items():
            r = registry.get(f"/v1/registry/ezla/{answer['id']}")
            assert r.status_code == 200, r.text
            record = r.json()
            assert (record["document_id"], record["series"], int(record["number"])) == (
                document_id,
                answer["series"],
                int(str(answer["number"])),
            )
    with capsys.disabled():
        print(f"[chaos]   invariants hold; {repeats} repeated registry PUTs absorbed")


# --- the tests -------------------------------------------------------------------------------
def test_kill9_node_behind_haproxy(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    load = under_load(chaos, capsys, "kill -9 node A, HAProxy", [chaos.cluster.lb_url], chaos.cluster.node("A").kill)
    assert load.errors == []


def test_kill9_node_sdk_failover_only(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    load = under_load(
        chaos, capsys, "kill -9 node B, SDK failover", chaos.cluster.node_urls, chaos.cluster.node("B").kill
    )
    assert load.errors == []


def test_rolling_update_behind_haproxy(chaos: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = chaos.cluster

    def rolling_update() -> None:
        for name in ("A", "B"):
            cluster.node(name).drain_restart()
            cluster.wait_balanced({"A", "B"})  # the upgraded node is back in the pool first

    load = under_load(chaos, capsys, "rolling update A then B, HAProxy", [cluster.lb_url], rolling_update, seconds=16)
    assert load.errors == []
    assert load.first_try_errors == 0, "a drained node failed a request"


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

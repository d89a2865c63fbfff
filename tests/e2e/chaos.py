"""The chaos harness shared by the cluster and twin-failover tests: a steady load of pre-signed e-ZLA
through the SDK, and the invariants checked after every disturbance (every acknowledged submission
stored once under the id it was answered with, numbers unique, every e-ZLA at the registry, the
employer and the patient once in effect, no error the caller could see)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ezla.client import EzlaClient
from tests.conftest import PASSPHRASE, PUBLIC_URL
from tests.e2e.procs import base_env, free_port
from tests.factories import EnrolledDoctor, signed_sick_leave
from tools.cluster import Cluster

LOAD_THREADS = 2
PACE = 0.04  # seconds between submissions per thread: ~50 e-ZLA/s in all, steady
RECIPIENTS = ("registry", "employer", "patient")
DELIVERY_DEADLINE = 60.0
REGISTRY_TOKEN = "chaos-registry-token"  # test credentials on loopback: the nodes write with this one
REGISTRY_READ_TOKEN = "chaos-registry-read-token"  # and the checks read with this one


def chaos_env(**extra: str) -> dict[str, str]:
    """Node settings for the chaos clusters: short leases and retries, so recovery shows within a test."""
    return base_env(
        EZLA_CA_KEY_PASSPHRASE=PASSPHRASE,
        EZLA_REGISTRY_TOKEN=REGISTRY_TOKEN,
        EZLA_REGISTRY_READ_TOKEN=REGISTRY_READ_TOKEN,
        EZLA_LEASE_SECONDS="3",
        EZLA_WORKER_POLL_SECONDS="0.1",
        EZLA_RETRY_CAP_SECONDS="1",
        # The production default: HAProxy sees a drain in ~0.7 s when idle, but its checks slow down
        # when the whole suite shares two cores (1.5 s once let a request reach a stopping node).
        EZLA_DRAIN_SECONDS="3",
        **extra,
    )


def chaos_cluster(root: Path, pki_dir: Path, env: dict[str, str], **kwargs: Any) -> Cluster:
    """Two nodes, the registry and HAProxy on free ports (databases and formation from ``kwargs``)."""
    return Cluster(
        lb_port=free_port(),
        node_ports={"A": free_port(), "B": free_port()},
        registry_port=free_port(),
        stats_port=free_port(),
        var_dir=root / "var",
        pki_dir=pki_dir,
        public_url=PUBLIC_URL,
        env=env,
        **kwargs,
    )


@dataclass
class Chaos:
    cluster: Cluster
    db_url: str
    doctor: EnrolledDoctor
    registry_token: str


# --- load ------------------------------------------------------------------------------------
@dataclass
class Load:
    """Threads submitting pre-signed e-ZLA at a steady pace through an SDK client each."""

    urls: list[str]
    docs: list[list[tuple[str, bytes]]]
    seconds: float
    attempts: int = 10  # the SDK's default
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
def forensics(chaos: Chaos, wrong: dict[str, tuple[object, object]]) -> str:
    """What a lost or changed acknowledgement looked like: the answer and the stored row, the row as
    each data node has it (asked directly, not through the multi-host URL), and the formation's
    recent state changes. A failure this rare must explain itself from the CI log alone."""
    lines = [f"{len(wrong)} acknowledged e-ZLA not stored as answered:"]
    lines += [f"  {doc}: answered {answer}, stored {row}" for doc, (answer, row) in list(wrong.items())[:5]]
    formation = chaos.cluster.formation
    if formation is None:
        return "\n".join(lines)
    dbname = chaos.db_url.rsplit("/", 1)[-1].split("?", 1)[0]
    for twin in formation.node_ports:
        try:
            with psycopg.connect(formation.node_url(twin, dbname), connect_timeout=3) as conn:
                role = conn.execute(
                    "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                    "ELSE pg_current_wal_lsn() END)::text"
                ).fetchone()
                found = conn.execute(
                    "SELECT document_id, id, series, number, accepted_at, accepted_by_node FROM ezla_sick_leaves "
                    "WHERE document_id = ANY(%s)",
                    (list(wrong),),
                ).fetchall()
            lines.append(f"  twin {twin} (in recovery, lsn: {role}): {found}")
        except psycopg.Error as exc:
            lines.append(f"  twin {twin}: {type(exc).__name__}: {exc}")
    try:
        monitor = f"postgresql://postgres@{formation.host}:{formation.monitor_port}/pg_auto_failover"
        with psycopg.connect(monitor, connect_timeout=3) as conn:
            events = conn.execute(
                "SELECT eventtime, nodename, reportedstate, goalstate, description FROM pgautofailover.event "
                "ORDER BY eventid DESC LIMIT 40"
            ).fetchall()
        lines += [f"  {e[0]:%H:%M:%S.%f} {e[1]} {e[2]} -> {e[3]}: {e[4][:160]}" for e in reversed(events)]
    except psycopg.Error as exc:
        lines.append(f"  monitor: {type(exc).__name__}: {exc}")
    return "\n".join(lines)


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
        wrong = {
            document_id: ((answer["id"], answer["series"], int(str(answer["number"]))), stored.get(document_id))
            for document_id, answer in acked.items()
            if stored.get(document_id) != [(answer["id"], answer["series"], int(str(answer["number"])))]
        }
        assert not wrong, forensics(chaos, wrong)
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

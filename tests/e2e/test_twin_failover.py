"""Twin nodes that share nothing: each twin is an app and a PostgreSQL data node of a pg_auto_failover
formation (``tools.formation``), with synchronous replication between the twins' databases.

Under a steady load through HAProxy each test takes a whole twin away — SIGKILL of app and database
together, a partitioned primary (iptables), a planned switchover — and checks the chaos invariants
(``tests.e2e.chaos``): nothing acknowledged lost, no duplicate numbers, every e-ZLA at the three
recipients once, no client-visible error after the SDK's retries. Each prints the failover gap and
how long the formation took to heal (old primary back as the standby).

pg_auto_failover, HAProxy, iptables or PostgreSQL missing fails these tests; nothing here skips.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.chaos import REGISTRY_READ_TOKEN, Chaos, chaos_cluster, chaos_env, under_load
from tests.e2e.procs import free_port
from tests.factories import enroll
from tools.cluster import Formation, find_haproxy
from tools.formation import find_iptables, find_pg_autoctl

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # serial: failover timings, one at a time
HEAL_WITHIN = 10.0  # seconds from the loss of a whole twin to a writable primary again


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Iterator[Chaos]:
    find_haproxy()
    find_pg_autoctl()  # fails (ClusterError) rather than skips when pg_auto_failover is missing
    find_iptables()
    root = tmp_path_factory.mktemp("twins")
    # The data directories belong to the postgres user: outside pytest's root-only temp tree.
    pg_root = Path(tempfile.mkdtemp(prefix="ezla-twins-"))
    formation = Formation(free_port(), {"A": free_port(), "B": free_port()}, root=pg_root)
    cluster = chaos_cluster(root, pki_dir, chaos_env(), formation=formation)
    try:
        cluster.start()
        operator = cluster.operator_token()
        with httpx.Client(base_url=cluster.lb_url, timeout=10) as http:
            doctor = enroll(http, operator)
        yield Chaos(cluster, formation.url("ezla"), doctor, REGISTRY_READ_TOKEN)
    finally:
        cluster.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


def _formation(twins: Chaos) -> Formation:
    assert twins.cluster.formation is not None
    return twins.cluster.formation


@pytest.fixture(autouse=True)
def healthy(twins: Chaos) -> Iterator[None]:
    """Each test starts and ends with both twins whole: apps in HAProxy's pool, one primary and
    its synchronous standby."""

    def restore() -> None:
        formation = _formation(twins)
        for name, handle in twins.cluster.nodes.items():
            formation.heal(name)
            formation.thaw(name)
            node = formation.nodes[name]
            if node.process is None or not node.process.alive():
                formation.start_node(name)
            if not handle.alive():
                handle.start()
        formation.wait_healthy(timeout=60)
        twins.cluster.wait_balanced({"A", "B"})

    restore()
    yield
    restore()


def _make_primary(formation: Formation, twin: str) -> None:
    if formation.primary() != twin:
        formation.switchover()
        formation.wait_healthy(timeout=60)
    assert formation.primary() == twin


def _wait_primary(formation: Formation, *, other_than: str, since: float) -> float:
    """Seconds from ``since`` until a twin other than ``other_than`` accepts writes."""
    while time.monotonic() - since < 60:
        if formation.primary() not in (None, other_than):
            return time.monotonic() - since
        time.sleep(0.05)
    raise AssertionError("no new primary within 60 s")


def test_whole_twin_killed_under_load_and_rejoins(twins: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL twin A's app and its PostgreSQL (the primary) together; the standby takes over, and
    A's database, started again, rejoins as the standby by itself."""
    formation = _formation(twins)
    _make_primary(formation, "A")
    healed: dict[str, float] = {}

    def lose_twin_a() -> None:
        began = time.monotonic()
        twins.cluster.kill_twin("A")
        healed["failover"] = _wait_primary(formation, other_than="A", since=began)

    load = under_load(
        twins,
        capsys,
        "kill -9 twin A (app + primary database), HAProxy",
        [twins.cluster.lb_url],
        lose_twin_a,
        seconds=14,
    )
    assert load.errors == []
    assert healed["failover"] < HEAL_WITHIN
    began = time.monotonic()
    twins.cluster.restart_twin("A")
    formation.wait_healthy(timeout=60)
    rejoined = time.monotonic() - began
    assert formation.primary() == "B"
    with capsys.disabled():
        print(
            f"[twins]   database failover {healed['failover']:.1f} s; old primary back as standby in {rejoined:.1f} s"
        )


def test_partitioned_primary_is_replaced_and_demoted(twins: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    """The primary's database host is cut off (its port blocked with iptables, its keeper frozen) while
    its PostgreSQL runs on and its app keeps serving: commits wait for the standby they cannot reach,
    none is acknowledged, the monitor promotes the standby, and when the network comes back the old
    primary steps down and follows."""
    formation = _formation(twins)
    primary = formation.primary()
    assert primary is not None
    healed: dict[str, float] = {}

    def partition() -> None:
        began = time.monotonic()
        formation.partition(primary)
        try:
            healed["failover"] = _wait_primary(formation, other_than=primary, since=began)
            time.sleep(1.0)
        finally:
            formation.heal(primary)

    load = under_load(
        twins, capsys, f"partition of the primary ({primary})", [twins.cluster.lb_url], partition, seconds=14
    )
    assert load.errors == []
    assert healed["failover"] < HEAL_WITHIN
    formation.wait_healthy(timeout=60)
    assert formation.primary() != primary
    with capsys.disabled():
        print(f"[twins]   database failover {healed['failover']:.1f} s; old primary follows the new one")


def test_planned_switchover_under_load(twins: Chaos, capsys: pytest.CaptureFixture[str]) -> None:
    """Writes are fenced on the primary first (pg_auto_failover 2.0 may drop synchronous replication
    mid-switchover, see ``Formation.switchover``), then the standby is promoted and the old primary
    follows it; nothing acknowledged is lost."""
    formation = _formation(twins)
    before = formation.primary()
    timing: dict[str, float] = {}

    def switchover() -> None:
        began = time.monotonic()
        formation.switchover()
        timing["switchover"] = time.monotonic() - began

    load = under_load(twins, capsys, "planned switchover", [twins.cluster.lb_url], switchover, seconds=12)
    assert load.errors == []
    formation.wait_healthy(timeout=60)
    assert formation.primary() not in (None, before)
    # The write fence (Formation.switchover) is lifted again on both: neither is left read-only.
    for twin in formation.node_ports:
        with psycopg.connect(formation.node_url(twin)) as conn:
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",), twin
    with capsys.disabled():
        print(f"[twins]   switchover took {timing['switchover']:.1f} s")


def test_acknowledged_means_on_both_databases(twins: Chaos) -> None:
    """Synchronous replication is on whenever the standby is healthy: the primary waits for it."""
    formation = _formation(twins)
    with psycopg.connect(formation.url("ezla")) as conn:
        names = conn.execute("SHOW synchronous_standby_names").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    assert names is not None and names[0].startswith("ANY 1")
    assert commit is not None and commit[0] == "on"

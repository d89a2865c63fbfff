"""A release with a schema change rolls out one twin at a time, under load, with no error.

Release N is the last commit before migration 0008 (``RELEASE_N``), taken from this repository's
history with ``git archive`` and run from the same virtualenv (``PYTHONPATH`` puts its ``ezla``
first). Release N+1 is this checkout: it adds the incapacity period as columns, in three steps
(docs/postgres-ha.md):

1. both nodes run release N on its schema (0007) behind HAProxy, clinics submitting;
2. *expand*: ``ezla db upgrade`` of release N+1 applies 0008 (the columns, nullable, and an index
   built concurrently) while release N still serves, and holds the contract step 0012 back;
3. the registry is migrated and restarted on N+1 (a consumer before its producers), then node A is
   drained and restarted on N+1, then node B; N and N+1 serve side by side meanwhile, and N's rows
   lack the new columns;
4. *contract*, once no node of release N is left: ``ezla db upgrade --contract`` back-fills N's rows
   from their signed content in small batches and makes the columns required, under load.

The invariants of the chaos tests hold throughout, and no request fails even once: a drained node
finishes what it has and HAProxy sends it nothing new.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import pg_create, pg_drop
from tests.e2e.chaos import REGISTRY_READ_TOKEN, Chaos, chaos_cluster, chaos_env, under_load
from tests.factories import enroll
from tools.cluster import ezla_command, find_haproxy

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # serial: failover timings, one at a time
RELEASE_N = "bfbe59e"  # the last commit whose schema is 0007 (before 0008's incapacity period)
REPO = Path(__file__).resolve().parents[2]


def _nulls(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM ezla_sick_leaves WHERE incapacity_from IS NULL").fetchone()
    assert row is not None
    return int(row[0])


def _head(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def release_n(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Release N's source tree, from git (a clone without that history fails here, loudly)."""
    root = tmp_path_factory.mktemp("release-n")
    if (REPO / ".git" / "shallow").exists():  # a shallow CI clone: fetch the history the test needs
        subprocess.run(["git", "-C", str(REPO), "fetch", "--unshallow", "--quiet"], check=False, timeout=300)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", RELEASE_N], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True, timeout=60)
    assert (root / "ezla" / "migrations" / "versions" / "0007_trust_lifecycle.py").exists()
    assert not (root / "ezla" / "migrations" / "versions" / "0008_incapacity_period.py").exists()
    return root


@pytest.fixture(scope="module")
def on_release_n(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, release_n: Path) -> Iterator[Chaos]:
    find_haproxy()
    name = f"ezla_upgrade_{secrets.token_hex(4)}"
    db_url, registry_db_url = pg_create(name), pg_create(f"{name}_registry")
    root = tmp_path_factory.mktemp("upgrade")
    env = chaos_env(PYTHONPATH=str(release_n))
    cluster = chaos_cluster(root, pki_dir, env, database_url=db_url, registry_database_url=registry_db_url)
    try:
        cluster.start()  # release N migrates its own schema (0007) and serves
        operator = cluster.operator_token()
        with httpx.Client(base_url=cluster.lb_url, timeout=10) as http:
            doctor = enroll(http, operator)
        yield Chaos(cluster, db_url, doctor, REGISTRY_READ_TOKEN)
    finally:
        cluster.stop()
        for db in (name, f"{name}_registry"):
            pg_drop(db)


def test_rolling_upgrade_with_a_schema_change_under_load(
    on_release_n: Chaos, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = on_release_n.cluster
    db_url = on_release_n.db_url
    assert _head(db_url) == "0007"
    served_by = {name: handle.process.env.get("PYTHONPATH") for name, handle in cluster.nodes.items()}
    assert all(served_by.values()), "both nodes start on release N"
    new_env = {k: v for k, v in cluster.nodes["A"].process.env.items() if k != "PYTHONPATH"}
    steps: list[str] = []

    def db_upgrade(*flags: str) -> dict[str, object]:
        done = subprocess.run(
            [*ezla_command(), "db", "upgrade", "--json", *flags],
            env=new_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    def upgrade() -> None:
        # Expand while release N serves: the contract step is held back without --contract.
        expanded = db_upgrade()
        assert (expanded["to"], expanded["held_back"]) == ("0011", ["0012"])
        steps.append("schema 0008-0011 under release N")
        # The registry first: a consumer reads what N+1 nodes send before any of them sends it (their
        # receipts carry time-stamps, which release N's verifier refuses); on N+1 it still takes N's.
        assert cluster.registry is not None
        done = subprocess.run(
            [*ezla_command(), "registry", "db-upgrade", "--json"],
            env=new_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        cluster.registry.env = dict(new_env)
        cluster.registry.stop(30)
        cluster.registry.start()
        steps.append("registry on N+1")
        for name in ("A", "B"):  # one twin at a time; the other carries the traffic
            handle = cluster.node(name)
            handle.process.env = dict(new_env)
            handle.drain_restart()
            cluster.wait_balanced({"A", "B"})
            steps.append(f"node {name} on N+1")
        left_by_n = _nulls(db_url)
        assert left_by_n > 0, "release N wrote no rows without the new columns: the test proves nothing"
        # Contract, with only N+1 serving: back-fill, then required.
        contracted = db_upgrade("--contract")
        assert (contracted["from"], contracted["to"], contracted["held_back"]) == ("0011", "0012", [])
        steps.append(f"0012 back-filled {left_by_n} rows of release N and made the period required")

    load = under_load(
        on_release_n,
        capsys,
        "rolling upgrade N -> N+1, expand 0008-0011 then contract 0012, HAProxy",
        [cluster.lb_url],
        upgrade,
        seconds=30,
        at=2.0,
    )
    assert load.errors == []
    assert load.first_try_errors == 0, "a drained node failed a request"
    assert _head(db_url) == "0012"
    assert _nulls(db_url) == 0
    with psycopg.connect(db_url) as conn:
        nullable = conn.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'ezla_sick_leaves' AND column_name LIKE 'incapacity_%'"
        ).fetchall()
    assert sorted(nullable) == [("incapacity_from", "NO"), ("incapacity_to", "NO")]
    with capsys.disabled():
        print("[upgrade] " + "; ".join(steps))
    # Release N+1 works on the contracted schema: the audit trail links N's rows and N+1's.
    verify = subprocess.run(
        [*ezla_command(), "audit", "verify", "--json"],
        env=new_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

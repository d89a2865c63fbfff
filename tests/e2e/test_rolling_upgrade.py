"""A release with a schema change rolls out one twin at a time, under load, with no error.

Release N is the last commit before migration 0007 (``RELEASE_N``), taken from this repository's
history with ``git archive`` and run from the same virtualenv (``PYTHONPATH`` puts its ``ezla``
first). Release N+1 is this checkout. The upgrade, as docs/postgres-ha.md prescribes:

1. both nodes run release N on its schema (0006) behind HAProxy, clinics submitting;
2. release N+1's migration (0007: columns added nullable or with defaults, new tables) is applied
   while release N still serves: *expand* only, so N keeps working on the new schema;
3. node A is drained and restarted on N+1; N and N+1 serve side by side;
4. node B likewise; then the registry.

The contraction (making what 0007 added required, dropping what it replaced) belongs to the release
after, once no node of release N is left. The invariants of the chaos tests hold throughout.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.slow
RELEASE_N = "72f00dc"  # the last commit whose schema is 0006 (before the trust lifecycle's 0007)
REPO = Path(__file__).resolve().parents[2]


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
    assert (root / "ezla" / "migrations" / "versions" / "0006_inbox_paging_indexes.py").exists()
    assert not (root / "ezla" / "migrations" / "versions" / "0007_trust_lifecycle.py").exists()
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
        cluster.start()  # release N migrates its own schema (0006) and serves
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
    assert _head(on_release_n.db_url) == "0006"
    served_by = {name: handle.process.env.get("PYTHONPATH") for name, handle in cluster.nodes.items()}
    assert all(served_by.values()), "both nodes start on release N"
    # Release N has no /v1/accounts (it came with 0007): 404 there, 401 (no token) on N+1.
    for name in ("A", "B"):
        assert httpx.get(f"{cluster.node(name).url}/v1/accounts").status_code == 404
    new_env = {k: v for k, v in cluster.nodes["A"].process.env.items() if k != "PYTHONPATH"}
    steps: list[str] = []

    def upgrade() -> None:
        # Expand while release N serves: N+1's migration on the live database.
        done = subprocess.run(
            [*ezla_command(), "db", "upgrade"], env=new_env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        steps.append(f"schema {_head(on_release_n.db_url)} under release N")
        for name in ("A", "B"):  # one twin at a time; the other carries the traffic
            handle = cluster.node(name)
            handle.process.env = dict(new_env)
            handle.drain_restart()
            cluster.wait_balanced({"A", "B"})
            steps.append(f"node {name} on N+1")
        assert cluster.registry is not None
        cluster.registry.env = dict(new_env)
        cluster.registry.stop(30)
        cluster.registry.start()
        steps.append("registry on N+1")

    load = under_load(
        on_release_n,
        capsys,
        "rolling upgrade N -> N+1 with migration 0007, HAProxy",
        [cluster.lb_url],
        upgrade,
        seconds=24,
        at=2.0,
    )
    assert load.errors == []
    assert _head(on_release_n.db_url) == "0007"
    for name in ("A", "B"):
        assert httpx.get(f"{cluster.node(name).url}/v1/accounts").status_code == 401
    with capsys.disabled():
        print("[upgrade] " + "; ".join(steps))
    # Release N+1's own features work on the upgraded cluster: the audit trail links N's rows and N+1's.
    verify = subprocess.run(
        [*ezla_command(), "audit", "verify", "--json"],
        env=new_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

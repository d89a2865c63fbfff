from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.e2e.procs import EZLA, Proc, base_env, free_port, node


@pytest.fixture
def single_node(tmp_path: Path, pki_dir: Path) -> Iterator[tuple[Proc, str, dict[str, str]]]:
    """One real ``ezla serve`` on SQLite, as ``make run`` starts it."""
    import subprocess

    env = base_env(
        EZLA_VAR_DIR=str(tmp_path / "var"),
        EZLA_PKI_DIR=str(pki_dir),
        EZLA_CA_KEY_PASSPHRASE=PASSPHRASE,
        EZLA_WORKER="0",
        EZLA_DRAIN_SECONDS="0.2",
    )
    subprocess.run([EZLA, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = node("node-a", port, env, tmp_path / "logs", node_id="A").start()
    try:
        yield proc, f"http://127.0.0.1:{port}", env
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def node_js() -> str:
    from tests.e2e.tools import install_xadesjs

    return install_xadesjs()


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    from tests.e2e.tools import tool

    return tool("xmlsec1")

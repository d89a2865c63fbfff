"""The import-linter contracts have teeth: a probe import of each forbidden kind, planted in a copy
of the package, breaks the contract that names it (and the unchanged copy keeps them all)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

PROBES = {
    "sdk-pulls-sqlalchemy": ("ezla/client.py", "import sqlalchemy", "The SDK (ezla.client) imports no server code"),
    "sdk-pulls-ca-service": (
        "ezla/client.py",
        "import ezla.ca.service",
        "The SDK (ezla.client) imports no server code",
    ),
    "xades-knows-the-database": (
        "ezla/xades/verifier.py",
        "import ezla.db",
        "The XAdES core and the document format know no domain, web framework or database",
    ),
    "ca-core-via-ezla-db": (
        "ezla/ca/profile.py",
        "import ezla.db",
        "The CA core knows neither Litestar nor SQLAlchemy",
    ),
    "identifiers-reach-up": (
        "ezla/identifiers.py",
        "import ezla.issuance.rules",
        "Identifiers and errors are the bottom layer",
    ),
    "ca-reads-issuance-rules": (
        "ezla/ca/service.py",
        "import ezla.issuance.rules",
        "Layers, bottom-up",
    ),
    "registry-reads-issuance": (
        "ezla/registry/app.py",
        "import ezla.issuance.service",
        "The registry is its own service",
    ),
    "registry-reads-auth": (
        "ezla/registry/service.py",
        "import ezla.auth.guards",
        "The registry is its own service",
    ),
    "auth-reaches-up-to-ca": ("ezla/auth/service.py", "import ezla.ca.service", "Layers, bottom-up"),
    "distribution-reaches-up-to-issuance": (
        "ezla/distribution/channels.py",
        "import ezla.issuance.service",
        "Layers, bottom-up",
    ),
    "db-reaches-up-to-a-domain": ("ezla/db.py", "import ezla.distribution.outbox", "Layers, bottom-up"),
    "app-and-registry-entangled": ("ezla/registry/app.py", "import ezla.app", "Layers, bottom-up"),
    "service-calls-its-routes": (
        "ezla/ca/enrollment.py",
        "import ezla.ca.routes",
        "Inside a domain, CLI and HTTP sit above the service",
    ),
    "sdk-pulls-auth": ("ezla/client.py", "import ezla.auth.service", "The SDK (ezla.client) imports no server code"),
}


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("lint")
    shutil.copytree(ROOT / "ezla", tree / "ezla", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    done = _lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    return tree


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_probe_import_breaks_its_contract(pristine: Path, tmp_path: Path, probe: str) -> None:
    path, line, contract = PROBES[probe]
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    target = tree / path
    target.write_text(target.read_text() + f"\n{line}  # probe\n")
    done = _lint(tree)
    assert done.returncode != 0, f"{probe} went unnoticed:\n{done.stdout}"
    # Long contract names wrap in the report: read it as one line, up to the contract's verdict.
    verdict = re.search(re.escape(contract) + r".*?(KEPT|BROKEN)\b", " ".join(done.stdout.split()))
    assert verdict is not None and verdict.group(1) == "BROKEN", done.stdout

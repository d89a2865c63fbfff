"""Independent peers for interop tests: xadesjs (npm) and xmlsec1 (Debian). Missing is a failure."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

XADESJS = Path(__file__).parent / "xadesjs"


def run(
    cmd: list[str], *, timeout: float = 60, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # deliberately not a skip: interop is part of the contract
        pytest.fail(f"{name} is required for the interop tests but is not on PATH")
    return path


def install_xadesjs() -> str:
    """node, with tests/e2e/xadesjs/node_modules installed from the committed lock file."""
    node = tool("node")
    npm = tool("npm")
    # Test workers run side by side (make test): one installs, the others wait for it.
    with (XADESJS / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (XADESJS / "node_modules" / "xadesjs").is_dir():
            verb = "ci" if (XADESJS / "package-lock.json").is_file() else "install"
            done = run([npm, verb, "--no-audit", "--no-fund"], cwd=XADESJS, timeout=300)
            assert done.returncode == 0, f"npm {verb} failed:\n{done.stdout}\n{done.stderr}"
    return node


def xadesjs_sign(node: str, src: Path, key_pem: Path, certs: Path, kind: str, c14n: str) -> bytes:
    done = run([node, "sign.mjs", str(src), str(key_pem), str(certs), kind, c14n], cwd=XADESJS)
    assert done.returncode == 0, done.stderr
    return done.stdout.encode()


def xadesjs_verify(node: str, path: Path, cert_pem: Path | None) -> subprocess.CompletedProcess[str]:
    return run([node, "verify.mjs", str(path), *([str(cert_pem)] if cert_pem else [])], cwd=XADESJS)

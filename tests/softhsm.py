"""SoftHSM2 tokens for the tests that keep CA keys in PKCS#11 (Debian's softhsm2, installed by
``make test``). SoftHSM finds its tokens once, when a process first loads it, so each process
makes a pool of empty tokens in a directory of its own before that and hands them out; a child
process (``ezla pki init`` in a subprocess) sees tokens made later too."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ezla.ca.token import TokenConfig

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "test-passphrase-not-secret"  # tests/conftest.py's PASSPHRASE: the session PKI's token PIN
SO_PIN = "so-pin-not-secret"
POOL = 6
_handed_out: list[str] = []


def _init_token(label: str) -> TokenConfig:
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
        check=True,
        capture_output=True,
    )
    return TokenConfig(MODULE, label)


def _ensure_pool() -> None:
    if os.environ.get("EZLA_TEST_SOFTHSM_PID") == str(os.getpid()):
        return
    assert shutil.which("softhsm2-util") and Path(MODULE).exists(), "softhsm2 is not installed (make test installs it)"
    home = Path(tempfile.mkdtemp(prefix="ezla-softhsm-"))
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read when this process first loads the module
    os.environ["EZLA_TEST_SOFTHSM_PID"] = str(os.getpid())
    for n in range(POOL):
        _init_token(f"ezla-pool-{n}")


def new_token() -> TokenConfig:
    """A fresh, empty token in this process's SoftHSM2, user PIN ``PIN``."""
    _ensure_pool()
    label = f"ezla-pool-{len(_handed_out)}"
    assert len(_handed_out) < POOL, "tests/softhsm.py: raise POOL"
    _handed_out.append(label)
    return TokenConfig(MODULE, label)


def new_token_for_a_child_process(label: str) -> TokenConfig:
    """A token only a process started after this call uses (it finds the token when it starts)."""
    _ensure_pool()
    return _init_token(label)

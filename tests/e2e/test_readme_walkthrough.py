"""The README's walkthrough, run as a reader would: `make run` in a fresh directory (the checkout's
Makefile and virtualenv, nothing else of it), then the walkthrough's shell block pasted into bash,
top to bottom, every command required to succeed; then Ctrl-C, which must stop `make run` cleanly.
The README also may not send readers outside the repository."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.e2e.procs import free_port, wait_http
from tests.e2e.tools import tool

ROOT = Path(__file__).resolve().parents[2]


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Walkthrough", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the walkthrough is one shell block"
    return blocks[0]


def test_the_readme_links_only_inside_the_repository() -> None:
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = doc.read_text(encoding="utf-8")
        assert "../" not in re.sub(r"```.*?```", "", text, flags=re.S), f"{doc.name} points outside the repository"
        for target in re.findall(r"`((?:docs|bench|deploy|tools|tests)/[^`\s]+)`", text):
            assert (ROOT / target.split("#")[0]).exists(), f"{doc.name} names {target}, which does not exist"


def test_the_walkthrough_runs_as_written_and_ctrl_c_stops_make_run(tmp_path: Path) -> None:
    for name in ("curl", "jq", "openssl"):
        tool(name)
    here = tmp_path / "checkout"
    here.mkdir()
    for name in ("Makefile", "pyproject.toml", ".venv"):
        (here / name).symlink_to(ROOT / name)
    port, registry_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EZLA_")}
    run = subprocess.Popen(
        ["make", "-o", ".venv/bin/ezla", "run", f"PORT={port}", f"REGISTRY_PORT={registry_port}"],
        cwd=here,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches all of it
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/ready", timeout=120)
        script = walkthrough().replace(
            "export EZLA_URL=http://127.0.0.1:8000", f"export EZLA_URL=http://127.0.0.1:{port}"
        )
        assert f":{port}" in script
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        assert '"J06.9"' in done.stdout, "the patient sees the diagnosis"
        employer_lines = [line for line in done.stdout.splitlines() if line.startswith('["Z') and '"issued"' in line]
        assert employer_lines and "J06" not in "".join(employer_lines), "the payer sees the e-ZLA, not the diagnosis"
        assert "cancelled:" in done.stdout and "already accepted earlier" in done.stdout and "CANCELLED" in done.stdout
        assert "doctor.pem: revoked" in done.stdout and "refused: certificate revoked" in done.stdout
        assert "intact" in done.stdout
        for name in ("doctor.key", "doctor.pem", "my-ezla.signed.xml", "receipt.xml", "crl.pem"):
            assert (here / name).is_file(), name
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
        output, _ = run.communicate(timeout=60)
    # make itself gets the Ctrl-C too and may end by it (-2), as every make does; what the person sees
    # must be both servers finishing, and no error from make or a dying process.
    assert run.returncode in (0, -signal.SIGINT), output[-3000:]
    assert "make: ***" not in output and "Segmentation fault" not in output, output[-3000:]
    assert output.count("Finished server process") == 2, output[-3000:]

"""The command line as a script or a person meets it: the node URL from EZLA_URL or the config
file, exit codes that tell "fix the input" (3) from "not allowed" (4) from "retry later" (5), an
example document that signs and submits as is, cancelling by the printed number, an honest answer
to a repeat, and local verbs that refuse clearly where there is no database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.procs import EZLA
from tests.factories import enroll_doctor_cli


def _run(
    env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EZLA, *args], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=cwd, input=stdin
    )


def test_scripts_can_tell_what_went_wrong_and_people_get_what_they_expect(single_node: Any, tmp_path: Path) -> None:
    _, url, env = single_node
    doctor = enroll_doctor_cli(env, url, tmp_path)
    key, cert = doctor.write(tmp_path)
    signer = ["--key", str(key), "--cert", str(cert)]
    no_url = {k: v for k, v in env.items() if k != "EZLA_URL"}

    # The node URL from the environment, then from the config file, never a silent localhost:8000.
    unsigned = tmp_path / "leave.xml"
    made = _run(env, "example", "sick-leave", "--cert", str(cert), "--out", str(unsigned))
    assert made.returncode == 0, made.stderr
    signed = tmp_path / "leave.signed.xml"
    assert _run(env, "sign", str(unsigned), *signer, "--out", str(signed)).returncode == 0
    first = _run({**no_url, "EZLA_URL": url}, "submit", str(signed), "--json")
    assert first.returncode == 0, first.stderr
    accepted = json.loads(first.stdout)
    assert accepted["created"] is True
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{url}"\n')
    again = _run({**no_url, "EZLA_CONFIG": str(config)}, "submit", str(signed))
    assert again.returncode == 0 and "already accepted earlier as" in again.stdout, again.stdout + again.stderr

    # Cancel by the number printed on the paper; a second time says so and exits 3.
    number = f"{accepted['series']} {accepted['number']}"
    done = _run(env, "cancel", *number.split(), "--reason", "wrong-data", "--url", url, *signer, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["number"] == accepted["number"]
    twice = _run(env, "cancel", number.replace(" ", ""), "--reason", "wrong-data", "--url", url, *signer, "--json")
    assert twice.returncode == 3 and json.loads(twice.stdout)["error"] == "already-cancelled"
    repeat = _run(env, "submit", str(signed), "--url", url)
    assert repeat.returncode == 0 and "CANCELLED" in repeat.stdout and "accepted:" not in repeat.stdout

    # Exit codes: 3 fix the document, 4 not allowed, 5 retry later, 2 usage.
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(signed.read_bytes().replace(b"J06.9", b"J06.8"))
    assert _run(env, "submit", str(tampered), "--url", url).returncode == 3
    denied = _run({**env, "EZLA_TOKEN": "not-a-token"}, "employees", "remove", "44051401359", "--url", url)
    assert denied.returncode == 4, denied.stdout + denied.stderr
    assert _run(env, "submit", str(signed), "--url", "http://127.0.0.1:9").returncode == 5
    assert _run(env, "cancel").returncode == 2

    # A local verb away from the node's database: a clear refusal, no file left behind, no traceback.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = {k: v for k, v in env.items() if not k.startswith("EZLA_")}
    lost = _run(bare, "account", "add", "--role", "patient", "--pesel", "44051401359", cwd=elsewhere)
    assert lost.returncode == 5 and "no-database" in lost.stderr and "Traceback" not in lost.stderr
    assert list(elsewhere.iterdir()) == []

    # Secrets never only as flags: a password file for the server-made PKCS#12.
    code = json.loads(_run(env, "doctor", "code", "--npwz", doctor.npwz, "--json").stdout)["activation_code"]
    secret = tmp_path / "p12-password"
    secret.write_text("kot Filemon 2026\n")
    p12 = _run(env, "enroll", "--server-key", "--pkcs12-password-file", str(secret), "--code", code,
               "--out", str(tmp_path / "p12"), "--url", url, "--json")  # fmt: skip
    assert p12.returncode == 0, p12.stdout + p12.stderr
    listed = json.loads(_run(env, "doctor", "list", "--json").stdout)["doctors"]
    assert [d["npwz"] for d in listed if d["valid_certificates"] >= 2] == [doctor.npwz]

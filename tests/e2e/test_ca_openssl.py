"""The CA against independent peers: `openssl ocsp`, `openssl verify -crl_check`, `ezla audit verify`,
all talking to a real `ezla serve` process."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from ezla.client import EzlaClient, enroll_with_new_key
from tests.conftest import openssl
from tests.e2e.procs import EZLA
from tests.factories import doctor_payload


def _ezla(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EZLA, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def doctor_args_for(payload: dict[str, str]) -> list[str]:
    return [arg for k, v in payload.items() for arg in (f"--{k.replace('_', '-')}", v)]


def register_cli(env: dict[str, str], payload: dict[str, str] | None = None) -> dict[str, str]:
    """``ezla doctor add --json`` for a fresh doctor; returns the registration."""
    out = _ezla(env, "doctor", "add", "--json", *doctor_args_for(payload or doctor_payload()))
    return dict(json.loads(out.stdout))


def _ocsp(url: str, tmp: Path, cert: Path) -> str:
    out = openssl(
        "ocsp",
        "-issuer",
        str(tmp / "issuing.pem"),
        "-cert",
        str(cert),
        "-url",
        f"{url}/v1/ca/ocsp",
        "-CAfile",
        str(tmp / "chain.pem"),
        check=False,
    )
    return (out.stdout + out.stderr).decode()


def test_enroll_revoke_and_every_peer_agrees(single_node, tmp_path):
    _, url, env = single_node
    op = json.loads(_ezla(env, "account", "add", "--role", "operator", "--json").stdout)["token"]
    reg = register_cli(env)
    with EzlaClient([url]) as client:
        files = enroll_with_new_key(client, reg["activation_code"], tmp_path / "doctor")
    cert_path = Path(files["certificate"])
    chain = httpx.get(f"{url}/v1/ca/chain").text
    (tmp_path / "chain.pem").write_text(chain)
    issuing = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    (tmp_path / "issuing.pem").write_text(issuing)

    good = _ocsp(url, tmp_path, cert_path)
    assert "Response verify OK" in good and f"{cert_path}: good" in good

    def crl_verify() -> subprocess.CompletedProcess[bytes]:
        crl = openssl("crl", "-inform", "DER", input_bytes=httpx.get(f"{url}/v1/ca/crl").content).stdout
        (tmp_path / "cafile.pem").write_bytes(chain.encode() + crl)
        return openssl(
            "verify",
            "-purpose",
            "any",
            "-crl_check",
            "-CAfile",
            str(tmp_path / "cafile.pem"),
            str(cert_path),
            check=False,
        )

    assert crl_verify().returncode == 0
    r = httpx.post(
        f"{url}/v1/ca/certificates/{files['serial']}/revocation",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {op}"},
    )
    assert r.status_code == 200, r.text

    revoked = _ocsp(url, tmp_path, cert_path)
    assert "Response verify OK" in revoked and f"{cert_path}: revoked" in revoked and "keyCompromise" in revoked
    after = crl_verify()
    assert after.returncode != 0 and b"certificate revoked" in after.stdout + after.stderr

    # GET form of OCSP (RFC 6960 A.1) gives the same answer.
    openssl(
        "ocsp",
        "-issuer",
        str(tmp_path / "issuing.pem"),
        "-cert",
        str(cert_path),
        "-no_nonce",
        "-reqout",
        str(tmp_path / "req.der"),
    )
    b64 = base64.b64encode((tmp_path / "req.der").read_bytes()).decode()
    resp = httpx.get(f"{url}/v1/ca/ocsp/{b64}")
    assert resp.headers["content-type"] == "application/ocsp-response"
    text = openssl(
        "ocsp", "-respin", "/dev/stdin", "-CAfile", str(tmp_path / "chain.pem"), "-resp_text", input_bytes=resp.content
    ).stdout.decode()
    assert "Cert Status: revoked" in text

    # Malformed OCSP requests are a 400 problem, never a 500.
    bad = httpx.post(f"{url}/v1/ca/ocsp", content=b"\x30\x03junk", headers={"content-type": "application/ocsp-request"})
    assert bad.status_code == 400 and bad.json()["code"] == "ocsp-request-malformed"
    assert httpx.get(f"{url}/v1/ca/ocsp/%%%").status_code == 400

    # The audit chain covers all of it, is signed on demand, exports for offline checks, and
    # notices tampering.
    ok = json.loads(_ezla(env, "audit", "verify", "--json").stdout)
    assert ok["ok"] and ok["events"] >= 5
    signed = json.loads(_ezla(env, "audit", "checkpoint", "--json").stdout)
    assert signed["seq"] == ok["events"]
    exported = Path(env["EZLA_VAR_DIR"]) / "audit.jsonl"
    assert _ezla(env, "audit", "export", "--out", str(exported)).returncode == 0
    offline = json.loads(_ezla(env, "audit", "verify", "--file", str(exported), "--json").stdout)
    assert offline["ok"] and offline["checkpoints"] == 1
    db = Path(env["EZLA_VAR_DIR"]) / "ezla.sqlite3"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE ca_audit_events SET details = '{\"reason\":\"superseded\"}' WHERE action = 'certificate_revoked'"
        )
    broken = _ezla(env, "audit", "verify", "--json")
    assert broken.returncode == 1 and "does not match" in broken.stdout


def test_holder_revokes_with_its_own_key(single_node, tmp_path):
    _, url, env = single_node
    reg = register_cli(env)
    enrolled = _ezla(
        env,
        "enroll",
        "--url",
        url,
        "--code",
        reg["activation_code"],
        "--out",
        str(tmp_path / "d"),
        "--key-type",
        "rsa",
        "--json",
    )
    assert enrolled.returncode == 0, enrolled.stderr
    files = json.loads(enrolled.stdout)
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(files["certificate"]).read_bytes())
    key = serialization.load_pem_private_key(Path(files["key"]).read_bytes(), None)
    with EzlaClient([url]) as client:
        out = client.revoke_as_holder(cert, key, "cessationOfOperation")  # type: ignore[arg-type]
    assert out["status"] == "revoked"
    crl = openssl("crl", "-inform", "DER", "-text", "-noout", input_bytes=httpx.get(f"{url}/v1/ca/crl").content)
    assert format(cert.serial_number, "X").encode() in crl.stdout.upper() and b"Cessation Of Operation" in crl.stdout


def test_sqlite_refuses_a_second_node(single_node, tmp_path):
    from tests.e2e.procs import free_port, node

    _, _, env = single_node
    second = node("node-b", free_port(), env, tmp_path / "logs", node_id="B").start(wait=False)
    assert second.popen is not None
    assert second.popen.wait(timeout=30) != 0
    assert "use PostgreSQL for two nodes" in second.log_path.read_text()


def test_cli_new_code_enroll_and_renew(single_node, tmp_path):
    _, url, env = single_node
    payload = doctor_payload()
    reg = register_cli(env, payload)
    fresh = json.loads(_ezla(env, "doctor", "code", "--npwz", payload["npwz"], "--json").stdout)
    assert fresh["activation_code"] != reg["activation_code"]
    enrolled = json.loads(
        _ezla(
            env, "enroll", "--url", url, "--code", fresh["activation_code"], "--out", str(tmp_path / "d"), "--json"
        ).stdout
    )
    renewed = _ezla(
        env,
        "renew",
        "--url",
        url,
        "--key",
        enrolled["key"],
        "--cert",
        enrolled["certificate"],
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    out = json.loads(renewed.stdout)
    assert out["serial"] != enrolled["serial"]
    from cryptography import x509

    from ezla.ca.profile import npwz_of

    assert npwz_of(x509.load_pem_x509_certificate(Path(out["certificate"]).read_bytes())) == payload["npwz"]
    # The first code still works once (codes are independent), a used one never.
    again = _ezla(
        env, "enroll", "--url", url, "--code", fresh["activation_code"], "--out", str(tmp_path / "x"), "--json"
    )
    assert again.returncode == 4 and json.loads(again.stdout)["error"] == "activation-code-invalid"

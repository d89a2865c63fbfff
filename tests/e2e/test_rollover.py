"""An issuing CA rollover under live traffic loses nothing (issue: CA custody and trusted time).

A node and the registry run on a PKI of their own; clinics submit e-ZLA without pause while
``ezla pki rollover`` brings in "ezla Doctors CA 2". Afterwards: no request failed; new and renewed
doctors get certificates from CA 2 (AIA and CRL DP naming it), while CA 1's doctors keep submitting;
both chains are published; each CA publishes its own CRL and answers OCSP for its own certificates,
checked with openssl; every accepted e-ZLA reached the registry, which verifies both kinds from their
long-term evidence.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from ezla.client import EzlaClient, make_csr, new_key
from tests.conftest import REGISTRY_READ_TOKEN, REGISTRY_TOKEN
from tests.e2e.procs import EZLA, Proc, base_env, free_port, node
from tests.factories import XML, EnrolledDoctor, enroll, signed_sick_leave

pytestmark = pytest.mark.slow
PASSPHRASE = "rollover-test-passphrase"


def _ezla(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([EZLA, *args, "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


class Traffic:
    """Clinics submitting e-ZLA from every enrolled doctor, round robin, until stopped."""

    def __init__(self, url: str, doctors: list[EnrolledDoctor]) -> None:
        self.url, self.doctors = url, doctors
        self.accepted: list[tuple[str, str]] = []  # (e-ZLA id, the signer's issuer CN)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(2)]

    def _run(self, lane: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = lane
            while not self._stop.is_set():
                doctor = self.doctors[i % len(self.doctors)]
                i += 2
                r = http.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
                if r.status_code != 201:
                    self.failures.append(f"{r.status_code} {r.text[:300]}")
                    continue
                issuer = doctor.cert.issuer.rfc4514_string()
                self.accepted.append((r.json()["id"], issuer))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def _ocsp_checked(url: str, cert: x509.Certificate, issuer_pem: Path, chain_pem: Path, tmp: Path) -> str:
    issuer = x509.load_pem_x509_certificate(issuer_pem.read_bytes())
    req = x509_ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    r = httpx.post(
        f"{url}/v1/ca/ocsp",
        content=req.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    assert r.status_code == 200
    (tmp / "resp.der").write_bytes(r.content)
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return _openssl(
        "ocsp", "-sha256", "-respin", str(tmp / "resp.der"), "-CAfile", str(chain_pem),
        "-issuer", str(issuer_pem), "-cert", str(tmp / "cert.pem"),
    )  # fmt: skip


def test_a_rollover_under_live_traffic_loses_nothing(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    registry_port, node_port = free_port(), free_port()
    env = base_env(
        EZLA_VAR_DIR=str(tmp_path / "var"),
        EZLA_PKI_DIR=str(pki),
        EZLA_CA_KEY_PASSPHRASE=PASSPHRASE,
        EZLA_PUBLIC_URL="http://ezla.127.0.0.1.nip.io:8000",
        EZLA_REGISTRY_URL=f"http://127.0.0.1:{registry_port}",
        EZLA_REGISTRY_TOKEN=REGISTRY_TOKEN,
        EZLA_REGISTRY_READ_TOKEN=REGISTRY_READ_TOKEN,
        EZLA_REGISTRY_DATABASE_URL=f"sqlite:///{tmp_path}/registry.sqlite3",
        EZLA_DRAIN_SECONDS="0.2",
        EZLA_WORKER_POLL_SECONDS="0.2",
    )
    _ezla(env, "pki", "init")
    subprocess.run([EZLA, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([EZLA, "registry", "db-upgrade"], env=env, check=True, capture_output=True, timeout=120)
    registry = Proc(
        "registry",
        [EZLA, "registry", "serve", "--port", str(registry_port)],
        env,
        tmp_path / "registry.log",
        f"http://127.0.0.1:{registry_port}/health/ready",
    ).start()
    proc = node("node-a", node_port, env, tmp_path, node_id="A").start()
    url = f"http://127.0.0.1:{node_port}"
    try:
        operator = _ezla(env, "account", "add", "--role", "operator")["token"]
        with httpx.Client(base_url=url, timeout=30) as http:
            doctors = [enroll(http, operator) for _ in range(2)]
            first_ca = doctors[0].cert.issuer.rfc4514_string()
            with Traffic(url, doctors) as traffic:
                time.sleep(2)
                before = len(traffic.accepted)
                rolled = _ezla(env, "pki", "rollover")
                assert rolled["generation"] == 2 and rolled["previous"] == [1]
                time.sleep(1)
                newcomer = enroll(http, operator)  # a new doctor: from CA 2 at once
                doctors.append(newcomer)
                with EzlaClient([url]) as client:  # a CA 1 doctor renews: onto CA 2
                    key = new_key("ec")
                    renewed = client.renew(doctors[0].cert, doctors[0].key, make_csr(key))
                renewed_cert = x509.load_pem_x509_certificate(renewed["certificate_pem"].encode())
                time.sleep(2)
        assert traffic.failures == [], traffic.failures[:5]
        assert before > 0 and len(traffic.accepted) > before
        second_ca = newcomer.cert.issuer.rfc4514_string()
        assert "ezla Doctors CA 2" in second_ca and "ezla Doctors CA 1" in first_ca
        assert renewed_cert.issuer == newcomer.cert.issuer
        issuers = {issuer for _, issuer in traffic.accepted}
        assert issuers == {first_ca, second_ca}, "both CAs' doctors kept submitting"
        aia = newcomer.cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ca_issuers = [
            d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        ]
        assert ca_issuers == ["http://ezla.127.0.0.1.nip.io:8000/v1/ca/issuing/2"]

        # Both chains published; each CA's certificate where its certificates' AIA points.
        chain = x509.load_pem_x509_certificates(httpx.get(f"{url}/v1/ca/chain").content)
        assert [c.subject.rfc4514_string() for c in chain[:2]] == [second_ca, first_ca]
        ca2 = x509.load_der_x509_certificate(httpx.get(f"{url}/v1/ca/issuing/2").content)
        ca1 = x509.load_der_x509_certificate(httpx.get(f"{url}/v1/ca/issuing.cer").content)
        assert (ca2.subject, ca1.subject) == (newcomer.cert.issuer, doctors[1].cert.issuer)
        (tmp_path / "ca1.pem").write_bytes(ca1.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "ca2.pem").write_bytes(ca2.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "chain.pem").write_bytes(httpx.get(f"{url}/v1/ca/chain").content)
        for cert in (newcomer.cert, renewed_cert, doctors[1].cert):
            (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            assert ": OK" in _openssl("verify", "-CAfile", str(tmp_path / "chain.pem"), str(tmp_path / "leaf.pem"))

        # Each CA revokes on its own CRL, and answers OCSP for its own certificates.
        auth = {"Authorization": f"Bearer {operator}"}
        for doomed in (doctors[1].cert, newcomer.cert):
            r = httpx.post(
                f"{url}/v1/ca/certificates/{doomed.serial_number:x}/revocation",
                json={"reason": "superseded"},
                headers=auth,
            )
            assert r.status_code == 200, r.text
        crl1 = x509.load_der_x509_crl(httpx.get(f"{url}/v1/ca/crl").content)
        crl2 = x509.load_der_x509_crl(httpx.get(f"{url}/v1/ca/crl/2").content)
        assert crl1.issuer == ca1.subject and crl2.issuer == ca2.subject
        assert crl1.is_signature_valid(ca1.public_key()) and crl2.is_signature_valid(ca2.public_key())  # type: ignore[arg-type]
        assert {e.serial_number for e in crl1} == {doctors[1].cert.serial_number}
        assert {e.serial_number for e in crl2} == {newcomer.cert.serial_number}
        for name, crl in (("crl1.der", crl1), ("crl2.der", crl2)):
            (tmp_path / name).write_bytes(crl.public_bytes(serialization.Encoding.DER))
        assert "verify OK" in _openssl("crl", "-inform", "DER", "-in", str(tmp_path / "crl2.der"), "-CAfile", str(tmp_path / "ca2.pem"), "-noout")  # fmt: skip
        # `ezla verify --url` reads every CA's CRL: the revoked CA 2 doctor's signature is refused.
        (tmp_path / "late.xml").write_bytes(signed_sick_leave(newcomer))
        done = subprocess.run(
            [EZLA, "verify", str(tmp_path / "late.xml"), "--url", url, "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode != 0 and "certificate-revoked" in done.stdout, done.stdout + done.stderr
        out1 = _ocsp_checked(url, doctors[1].cert, tmp_path / "ca1.pem", tmp_path / "chain.pem", tmp_path)
        out2 = _ocsp_checked(url, renewed_cert, tmp_path / "ca2.pem", tmp_path / "chain.pem", tmp_path)
        assert "Response verify OK" in out1 and ": revoked" in out1
        assert "Response verify OK" in out2 and ": good" in out2

        # Nothing accepted is lost: all of it reaches the registry, which verifies both CAs' e-ZLA.
        read = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}
        deadline = time.monotonic() + 120
        missing = [i for i, _ in traffic.accepted]
        while missing and time.monotonic() < deadline:
            missing = [
                i
                for i in missing
                if httpx.get(f"http://127.0.0.1:{registry_port}/v1/registry/ezla/{i}", headers=read).status_code != 200
            ]
            time.sleep(0.5)
        assert not missing, f"{len(missing)} accepted e-ZLA never reached the registry"
        for wanted in (first_ca, second_ca):
            ezla_id = next(i for i, issuer in traffic.accepted if issuer == wanted)
            v = httpx.get(f"http://127.0.0.1:{registry_port}/v1/registry/ezla/{ezla_id}/verification", headers=read)
            assert v.status_code == 200 and v.json()["basis"] == "long-term-evidence", v.text
    finally:
        proc.stop()
        registry.stop()

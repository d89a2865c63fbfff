"""Issuance against independent peers and through the real CLI, all talking to a real ``ezla serve``.

(a) an e-ZLA signed by xadesjs with a key and certificate enrolled from our CA is accepted and
numbered; (b) our signed Receipt verifies in xmlsec1 and xadesjs; (c) ``ezla sign`` output for any
XML verifies in xmlsec1, xadesjs and ``ezla verify`` (which notices a revocation through a fresh
CRL); (d) ``ezla submit`` / ``ezla cancel`` end to end. node, npm and xmlsec1 are part of the
contract: their absence is a failure, not a skip. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ezla.business_time import local_date
from ezla.ca.keystore import load_cert
from ezla.client import EzlaClient, make_csr, new_key
from ezla.document.codec import build_sick_leave_xml
from ezla.issuance.samples import sample_sick_leave
from tests.e2e.procs import EZLA, Proc, base_env
from tests.e2e.tools import run, xadesjs_sign, xadesjs_verify
from tests.factories import doctor_payload

EZ = "urn:ezla:sick-leave:1"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
# A document that is not an e-ZLA: what an e-prescription integrator would sign with `ezla sign`.
PRESCRIPTION = """<?xml version="1.0" encoding="UTF-8"?>
<Recepta xmlns="urn:example:e-recepta:1" Id="rx-2025-0001">
  <Lekarz><Npwz>{npwz}</Npwz></Lekarz>
  <Pacjent><Pesel>44051401359</Pesel><Nazwisko>Kowalski-Łęcki</Nazwisko></Pacjent>
  <Lek><Nazwa>Amoksycylina</Nazwa><Dawka>500 mg</Dawka><Ilosc>16</Ilosc></Lek>
</Recepta>
"""


# --- tools ---------------------------------------------------------------------------------------
def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed ``ezla`` console script, with no EZLA_* configuration leaking in."""
    return run([EZLA, *args], timeout=timeout, env=base_env())


def cli_json(*args: str, expect: int = 0) -> dict:
    done = cli(*args, "--json")
    assert done.returncode == expect, f"ezla {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


# --- a running node, an operator and enrolled doctors ---------------------------------------------
@dataclass
class Doctor:
    npwz: str
    serial: str
    key_pem: Path
    cert_pem: Path
    kind: str  # "ec" | "rsa", as sign.mjs calls them


@dataclass
class Node:
    url: str
    operator: str
    dir: Path
    root_pem: Path
    issuing_pem: Path
    chain_pem: Path  # issuing + root, as GET /v1/ca/chain serves it

    def http(self, *, operator: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.operator}"} if operator else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15)

    def enroll(self, kind: str = "ec") -> Doctor:
        """Register (operator) and enroll with a CSR (doctor) over HTTP; key and cert saved as PEM."""
        with self.http() as http:
            reg = http.post("/v1/ca/doctors", json=doctor_payload())
        assert reg.status_code == 201, reg.text
        key = new_key(kind)
        body = {"activation_code": reg.json()["activation_code"], "csr_pem": make_csr(key)}
        with self.http(operator=False) as http:  # the doctor's side: only the activation code
            issued = http.post("/v1/ca/enrollments", json=body)
        assert issued.status_code == 201, issued.text
        serial = issued.json()["serial"]
        key_pem, cert_pem = self.dir / f"{serial}.key.pem", self.dir / f"{serial}.pem"
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_pem.write_text(issued.json()["certificate_pem"])
        return Doctor(reg.json()["npwz"], serial, key_pem, cert_pem, kind)

    def revoke(self, serial: str) -> None:
        with self.http() as http:
            r = http.post(f"/v1/ca/certificates/{serial}/revocation", json={"reason": "keyCompromise"})
        assert r.status_code == 200, r.text

    def crl(self, path: Path) -> Path:
        with self.http() as http:
            r = http.get("/v1/ca/crl")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/pkix-crl"), r.text
        path.write_bytes(r.content)
        return path

    def get(self, ezla_id: str) -> dict:
        with self.http() as http:
            r = http.get(f"/v1/ezla/{ezla_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def ezla_node(single_node: tuple[Proc, str, dict[str, str]], tmp_path: Path) -> Iterator[Node]:
    _, url, env = single_node
    done = run([EZLA, "account", "add", "--role", "operator", "--json"], env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    chain_pem = tmp_path / "chain.pem"
    chain_pem.write_bytes(httpx.get(f"{url}/v1/ca/chain", timeout=10).content)
    chain = x509.load_pem_x509_certificates(chain_pem.read_bytes())
    (root,) = (c for c in chain if c.issuer == c.subject)
    (issuing,) = (c for c in chain if c.issuer != c.subject)
    root_pem, issuing_pem = tmp_path / "root.pem", tmp_path / "issuing.pem"
    root_pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    issuing_pem.write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "doctors").mkdir()
    yield Node(url, json.loads(done.stdout)["token"], tmp_path / "doctors", root_pem, issuing_pem, chain_pem)


def unsigned_sick_leave(npwz: str, path: Path) -> Path:
    today = local_date(datetime.now(UTC))
    path.write_bytes(build_sick_leave_xml(sample_sick_leave(today=today, npwz=npwz)))
    return path


# --- independent verifiers ---------------------------------------------------------------------------
def xmlsec1_verify(xmlsec1: str, node: Node, path: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [
            xmlsec1,
            "--verify",
            # XAdES Ids live in ds:/xades: elements; xmlsec1 only resolves attributes it was told are IDs.
            "--id-attr:Id",
            f"{XADES}:SignedProperties",
            "--id-attr:Id",
            f"{DS}:KeyInfo",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--enabled-key-data",
            "x509",  # the key must come from a certificate that chains to the trusted root
            "--trusted-pem",
            str(node.root_pem),
            "--untrusted-pem",
            str(node.issuing_pem),
            str(path),
        ],
        timeout=30,
    )


def assert_verifies_everywhere(xmlsec1: str, node_js: str, node: Node, path: Path, signer_pem: Path) -> None:
    done = xmlsec1_verify(xmlsec1, node, path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SignedInfo References (ok/all): 3/3" in done.stdout + done.stderr
    for cert in (signer_pem, None):  # with the signer's key, and with whatever KeyInfo offers
        done = xadesjs_verify(node_js, path, cert)
        assert (done.returncode, done.stdout.strip()) == (0, "valid"), done.stdout + done.stderr
    # The harness does notice a broken signature (so "valid" above means something).
    data = path.read_bytes()
    content = next(
        e
        for e in etree.fromstring(data).iter()
        if isinstance(e.tag, str) and etree.QName(e).namespace not in (DS, XADES) and (e.text or "").strip()
    )
    needle = f">{content.text}<".encode()
    assert needle in data
    bad = path.with_suffix(".tampered.xml")
    bad.write_bytes(data.replace(needle, f">{content.text}0<".encode(), 1))
    assert xmlsec1_verify(xmlsec1, node, bad).returncode != 0
    assert xadesjs_verify(node_js, bad, signer_pem).returncode != 0


# --- (a) xadesjs signs with a certificate from our CA; the service accepts and numbers -------------
def sign_with_xadesjs(node_js: str, doctor: Doctor, src: Path, *, c14n: str, certs: Path) -> bytes:
    return xadesjs_sign(node_js, src, doctor.key_pem, certs, doctor.kind, c14n)


def test_xadesjs_signed_ezla_is_accepted_and_numbered(node_js, ezla_node, tmp_path):
    ec_doctor, rsa_doctor = ezla_node.enroll("ec"), ezla_node.enroll("rsa")
    with_chain = tmp_path / "ec-with-chain.pem"
    with_chain.write_bytes(ec_doctor.cert_pem.read_bytes() + ezla_node.issuing_pem.read_bytes())
    variants = [
        (ec_doctor, "exc-c14n", ec_doctor.cert_pem),
        (ec_doctor, "c14n", ec_doctor.cert_pem),
        (ec_doctor, "exc-c14n", with_chain),
        (rsa_doctor, "c14n", rsa_doctor.cert_pem),
    ]
    numbers = []
    for i, (doctor, c14n, certs) in enumerate(variants):
        src = unsigned_sick_leave(doctor.npwz, tmp_path / f"ezla-{i}.xml")
        signed = sign_with_xadesjs(node_js, doctor, src, c14n=c14n, certs=certs)
        refs = etree.fromstring(signed)[-1].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        assert len(refs) == 2  # xadesjs: data + SignedProperties, no KeyInfo reference (signxml expects 3)
        r = httpx.post(
            f"{ezla_node.url}/v1/ezla", content=signed, headers={"Content-Type": "application/xml"}, timeout=15
        )
        assert r.status_code == 201, f"{doctor.kind}/{c14n}/{certs.name}: {r.text}"
        body = r.json()
        assert body["status"] == "issued" and r.headers["location"] == f"/v1/ezla/{body['id']}"
        assert len(body["series"]) == 2 and body["series"].isalpha() and body["number"].isdigit()
        numbers.append((body["series"], body["number"]))
        stored = ezla_node.get(body["id"])
        assert (stored["series"], stored["number"], stored["status"]) == (body["series"], body["number"], "issued")
        assert stored["document"]["doctor"]["npwz"] == doctor.npwz
    assert len(set(numbers)) == len(variants) and numbers == sorted(numbers)


# --- (b) our Receipt verifies in xmlsec1 and xadesjs --------------------------------------------------
def test_receipt_verifies_in_xmlsec1_and_xadesjs(node_js, xmlsec1, ezla_node, pki_dir, tmp_path):
    doctor = ezla_node.enroll("ec")
    src = unsigned_sick_leave(doctor.npwz, tmp_path / "ezla.xml")
    signed = sign_with_xadesjs(node_js, doctor, src, c14n="exc-c14n", certs=doctor.cert_pem)
    with EzlaClient([ezla_node.url]) as client:
        accepted = client.submit(signed)
        key = serialization.load_pem_private_key(doctor.key_pem.read_bytes(), None)
        client.doctor_login(x509.load_pem_x509_certificate(doctor.cert_pem.read_bytes()), key)
        receipt = client.get_bytes(f"/v1/ezla/{accepted['id']}/receipt", "application/xml")
    path = tmp_path / "receipt.xml"
    path.write_bytes(receipt)
    root = etree.fromstring(receipt)
    assert root.tag == f"{{{EZ}}}Receipt"
    assert root.findtext(f"{{{EZ}}}DocumentSha256") == hashlib.sha256(signed).hexdigest()
    assert (root.findtext(f"{{{EZ}}}Series"), root.findtext(f"{{{EZ}}}Number")) == (
        accepted["series"],
        accepted["number"],
    )
    service_pem = tmp_path / "service.pem"
    service_pem.write_bytes(load_cert(pki_dir, "service").public_bytes(serialization.Encoding.PEM))
    assert_verifies_everywhere(xmlsec1, node_js, ezla_node, path, service_pem)


# --- (c) `ezla sign` for any XML; `ezla verify` with chain and CRL, before and after revocation ----------
def test_cli_sign_any_xml_verifies_everywhere_until_revoked(node_js, xmlsec1, ezla_node, tmp_path):
    doctor = ezla_node.enroll("ec")
    src = tmp_path / "recepta.xml"
    src.write_text(PRESCRIPTION.format(npwz=doctor.npwz), encoding="utf-8")
    out = tmp_path / "recepta.signed.xml"
    signed = cli_json("sign", str(src), "--key", str(doctor.key_pem), "--cert", str(doctor.cert_pem), "--out", str(out))
    assert signed == {"signed": str(out), "signer_serial": doctor.serial}
    root = etree.parse(str(out)).getroot()
    assert root.tag == "{urn:example:e-recepta:1}Recepta" and root[-1].tag == f"{{{DS}}}Signature"
    data_ref = root[-1].find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert data_ref.get("URI") == ""  # the whole document, even though the root carries an Id
    assert_verifies_everywhere(xmlsec1, node_js, ezla_node, out, doctor.cert_pem)

    crl_before = ezla_node.crl(tmp_path / "before.crl")
    verdict = cli_json("verify", str(out), "--chain", str(ezla_node.chain_pem), "--crl", str(crl_before))
    assert verdict["valid"] is True and verdict["crl_checked"] is True
    assert (verdict["npwz"], verdict["serial"]) == (doctor.npwz, doctor.serial)
    chain_and_crl = ["--chain", str(ezla_node.chain_pem), "--crl", str(crl_before)]
    report = cli_json("verify", str(out), *chain_and_crl, "--report")["report"]
    assert report["indication"] == "TOTAL-PASSED"
    assert {c["check"]: c["outcome"] for c in report["checks"]}["revocation"] == "passed"

    ezla_node.revoke(doctor.serial)
    crl_after = ezla_node.crl(tmp_path / "after.crl")
    refused = cli_json(
        "verify", str(out), "--chain", str(ezla_node.chain_pem), "--crl", str(crl_after), "--report", expect=3
    )
    assert refused["error"] == "certificate-revoked", refused
    assert refused["report"]["indication"] in ("TOTAL-FAILED", "INDETERMINATE")
    assert {c["check"]: c["outcome"] for c in refused["report"]["checks"]}["revocation"] == "failed"
    refused = cli_json("verify", str(out), "--url", ezla_node.url, expect=3)  # chain and CRL fetched live
    assert refused["error"] == "certificate-revoked", refused
    # The stale CRL still says valid: the verdict really comes from the CRL given.
    assert cli_json("verify", str(out), "--chain", str(ezla_node.chain_pem), "--crl", str(crl_before))["valid"]


# --- (d) `ezla sign` -> `ezla submit` -> receipt -> tampered copy refused -> `ezla cancel` ---------------
def test_cli_submit_receipt_tamper_and_cancel(ezla_node, tmp_path):
    doctor = ezla_node.enroll("ec")
    signer = ["--key", str(doctor.key_pem), "--cert", str(doctor.cert_pem)]
    src = unsigned_sick_leave(doctor.npwz, tmp_path / "ezla.xml")
    signed = tmp_path / "ezla.signed.xml"
    cli_json("sign", str(src), *signer, "--out", str(signed))

    receipt = tmp_path / "receipt.xml"
    accepted = cli_json("submit", str(signed), "--url", ezla_node.url, *signer, "--receipt-out", str(receipt))
    assert accepted["status"] == "issued" and accepted["receipt"] == str(receipt)
    assert len(accepted["series"]) == 2 and len(accepted["number"]) == 7
    stored = ezla_node.get(accepted["id"])
    assert (stored["series"], stored["number"], stored["status"]) == (accepted["series"], accepted["number"], "issued")
    # The receipt quotes exactly the bytes submitted and is sealed by our CA.
    assert (
        etree.parse(str(receipt)).getroot().findtext(f"{{{EZ}}}DocumentSha256")
        == hashlib.sha256(signed.read_bytes()).hexdigest()
    )
    assert cli_json("verify", str(receipt), "--chain", str(ezla_node.chain_pem))["valid"] is True
    # Idempotent: submitting the same file again answers with the same e-ZLA.
    again = cli_json("submit", str(signed), "--url", ezla_node.url)
    assert {k: again[k] for k in ("id", "series", "number")} == {k: accepted[k] for k in ("id", "series", "number")}

    tampered = tmp_path / "ezla.tampered.xml"
    assert b"<Icd10>J06.9</Icd10>" in signed.read_bytes()
    tampered.write_bytes(signed.read_bytes().replace(b"<Icd10>J06.9</Icd10>", b"<Icd10>A09</Icd10>"))
    refused = cli_json("submit", str(tampered), "--url", ezla_node.url, expect=3)
    assert refused["error"] == "signature-invalid", refused
    assert refused["detail"]  # the reason travels to the user

    cancelled = cli_json("cancel", accepted["id"], "--reason", "Pomyłka w dacie", "--url", ezla_node.url, *signer)
    assert (cancelled["id"], cancelled["status"]) == (accepted["id"], "cancelled")
    stored = ezla_node.get(accepted["id"])
    assert stored["status"] == "cancelled" and stored["cancellation_reason"] == "Pomyłka w dacie"
    # A cancelled e-ZLA cannot be cancelled again with another reason.
    again = cli_json("cancel", accepted["id"], "--reason", "Inny powód", "--url", ezla_node.url, *signer, expect=3)
    assert again["error"] == "already-cancelled", again

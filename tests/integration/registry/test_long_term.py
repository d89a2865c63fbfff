"""Every accepted e-ZLA reaches the registry as XAdES-LT (our time-stamp over the doctor's
signature, the chain, the signer's OCSP status at acceptance), and stays verifiable from that
evidence alone: years later, after the doctor's certificate expired and was revoked (superseded),
by the registry's endpoint and offline by ``ezla verify --at``."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from lxml import etree

from tests.conftest import REGISTRY_READ_TOKEN
from tests.e2e.procs import EZLA
from tests.factories import XML, enroll, signed_sick_leave
from tests.integration.registry.test_forgery import _announced, _put

READ = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}
XADES = "http://uri.etsi.org/01903/v1.3.2#"


def _accept(client: Any, operator_token: str, session_factory: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    doctor = enroll(client, operator_token)
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    assert r.status_code == 201, r.text
    return doctor, r.json(), _announced(session_factory, r.json()["id"])


def test_the_registry_archives_and_verifies_the_long_term_form_years_later(
    client: Any, operator_token: str, session_factory: Any, registry: str, pki_dir: Path, tmp_path: Path
) -> None:
    doctor, sub, body = _accept(client, operator_token, session_factory)
    long_term = base64.b64decode(body["evidence_xml"])
    root = etree.fromstring(long_term)
    assert len(list(root.iter(f"{{{XADES}}}EncapsulatedTimeStamp"))) == 1
    assert len(list(root.iter(f"{{{XADES}}}EncapsulatedOCSPValue"))) == 1
    assert _put(registry, sub["id"], body).status_code == 201

    # The doctor's certificate is revoked (superseded) after acceptance: live OCSP says revoked now.
    serial = format(doctor.cert.serial_number, "x")
    r = client.post(
        f"/v1/ca/certificates/{serial}/revocation",
        json={"reason": "superseded"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 200, r.text

    # Years later, after it expired too: judged from the stored evidence alone.
    later = doctor.cert.not_valid_after_utc + timedelta(days=400)
    verification = httpx.get(
        f"{registry}/v1/registry/ezla/{sub['id']}/verification", params={"at": later.isoformat()}, headers=READ
    )
    assert verification.status_code == 200, verification.text
    result = verification.json()
    assert result["valid"] and result["basis"] == "long-term-evidence"
    assert datetime.fromisoformat(result["validated_at"]) == later
    existed = datetime.fromisoformat(result["verified_at_time"])
    assert doctor.cert.not_valid_before_utc < existed < doctor.cert.not_valid_after_utc
    assert result["report"]["indication"] == "TOTAL-PASSED"

    # The same, offline: the archived XML and the published chain, no CRL, no network.
    archived = httpx.get(f"{registry}/v1/registry/ezla/{sub['id']}/long-term", headers=READ)
    assert archived.status_code == 200 and archived.headers["content-type"].startswith("application/xml")
    (tmp_path / "ezla-lt.xml").write_bytes(archived.content)
    issued = pki_dir / "issued"
    (tmp_path / "chain.pem").write_bytes((issued / "issuing.pem").read_bytes() + (issued / "root.pem").read_bytes())
    done = subprocess.run(
        [EZLA, "verify", str(tmp_path / "ezla-lt.xml"), "--chain", str(tmp_path / "chain.pem"),
         "--at", later.isoformat(), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["valid"] and out["basis"] == "long-term-evidence" and out["existed_at"] == result["verified_at_time"]

    # Without the evidence the plain signature, judged at that time, is refused (expired long ago).
    (tmp_path / "ezla.xml").write_bytes(base64.b64decode(body["signed_xml"]))
    done = subprocess.run(
        [EZLA, "verify", str(tmp_path / "ezla.xml"), "--chain", str(tmp_path / "chain.pem"), "--at", later.isoformat()],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "certificate-expired" in done.stdout + done.stderr


def test_evidence_of_another_ezla_or_tampered_evidence_is_refused(
    client: Any, operator_token: str, session_factory: Any, registry: str
) -> None:
    _, sub, body = _accept(client, operator_token, session_factory)
    _, _, other = _accept(client, operator_token, session_factory)
    r = _put(registry, sub["id"], {**body, "evidence_xml": other["evidence_xml"]})
    assert (r.status_code, r.json()["code"]) == (422, "evidence-mismatch"), r.text

    root = etree.fromstring(base64.b64decode(body["evidence_xml"]))
    value = next(root.iter(f"{{{XADES}}}EncapsulatedOCSPValue"))
    der = bytearray(base64.b64decode(value.text or ""))
    der[40] ^= 0x01  # inside the signed response data (the responder's key hash)
    value.text = base64.b64encode(bytes(der)).decode()
    r = _put(registry, sub["id"], {**body, "evidence_xml": base64.b64encode(etree.tostring(root)).decode()})
    assert (r.status_code, r.json()["code"]) == (422, "revocation-evidence-invalid"), r.text
    assert httpx.get(f"{registry}/v1/registry/ezla/{sub['id']}", headers=READ).status_code == 404


def test_the_receipt_is_xades_t_with_a_time_stamp_openssl_accepts(
    client: Any, operator_token: str, session_factory: Any, pki_dir: Path, tmp_path: Path
) -> None:
    import hashlib

    _, _, body = _accept(client, operator_token, session_factory)
    receipt = etree.fromstring(base64.b64decode(body["receipt_xml"]))
    value = receipt.find(
        "{http://www.w3.org/2000/09/xmldsig#}Signature/{http://www.w3.org/2000/09/xmldsig#}SignatureValue"
    )
    assert value is not None
    token = base64.b64decode(next(receipt.iter(f"{{{XADES}}}EncapsulatedTimeStamp")).text or "")
    (tmp_path / "receipt.tst").write_bytes(token)
    issued = pki_dir / "issued"
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", hashlib.sha256(etree.tostring(value, method="c14n")).hexdigest(),
         "-token_in", "-in", str(tmp_path / "receipt.tst"), "-CAfile", str(issued / "root.pem"),
         "-untrusted", str(issued / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in done.stdout, done.stderr
    tsa = x509.load_pem_x509_certificate((issued / "tsa.pem").read_bytes())
    assert tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage).critical

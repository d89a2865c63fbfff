"""Registration and enrollment through the HTTP API, checked with openssl and pkilint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select

from ezla.ca.models import Certificate
from ezla.ca.profile import npwz_of
from ezla.client import make_csr
from ezla.db import transaction
from ezla.xades import DOCUMENT_SIGNING_EKU
from tests.conftest import openssl
from tests.factories import enroll, register


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _openssl_csr(tmp_path: Path, subj: str, newkey: list[str]) -> str:
    openssl(
        "req",
        "-new",
        *newkey,
        "-nodes",
        "-keyout",
        str(tmp_path / "k.pem"),
        "-subj",
        subj,
        "-out",
        str(tmp_path / "r.csr"),
    )
    return (tmp_path / "r.csr").read_text()


def _cert_count(session_factory) -> int:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        return s.scalar(select(func.count()).select_from(Certificate)) or 0


def test_openssl_csr_gives_a_certificate_pkilint_and_openssl_accept(client, operator_token, tmp_path):
    reg = register(client, operator_token, given_name="Anna", family_name="Nowak")
    csr = _openssl_csr(
        tmp_path, "/C=PL/GN=Anna/SN=Nowak/CN=Anna Nowak", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    )
    resp = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": csr})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["location"] == f"/v1/ca/certificates/{body['serial']}"
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert npwz_of(cert) == reg["npwz"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [DOCUMENT_SIGNING_EKU]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.content_commitment and not ku.digital_signature
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 730
    assert cert.serial_number.bit_length() > 64
    (tmp_path / "doc.pem").write_text(body["certificate_pem"])
    (tmp_path / "chain.pem").write_text(body["chain_pem"])
    lint = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint_etsi_cert"),
            "lint",
            "-t",
            "NCP-NATURAL-PERSON-CERTIFICATE",
            "-s",
            "WARNING",
            str(tmp_path / "doc.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    verify = openssl("verify", "-purpose", "any", "-CAfile", str(tmp_path / "chain.pem"), str(tmp_path / "doc.pem"))
    assert b"OK" in verify.stdout
    # The same certificate is served by serial, as PEM.
    got = client.get(f"/v1/ca/certificates/{body['serial'].upper()}")
    assert got.status_code == 200 and got.text == body["certificate_pem"]


def test_rsa_csr_is_accepted(client, operator_token, tmp_path):
    reg = register(client, operator_token)
    csr = _openssl_csr(tmp_path, "/CN=Anna Nowak", ["-newkey", "rsa:2048"])
    resp = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": csr})
    assert resp.status_code == 201, resp.text
    assert isinstance(
        x509.load_pem_x509_certificate(resp.json()["certificate_pem"].encode()).public_key(), rsa.RSAPublicKey
    )


def test_pkcs12_enrollment_opens_with_its_password(client, operator_token, tmp_path):
    reg = register(client, operator_token)
    resp = client.post(
        "/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "pkcs12_password": "correct horse"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["content-type"].startswith("application/x-pkcs12")
    (tmp_path / "d.p12").write_bytes(resp.content)
    out = openssl("pkcs12", "-in", str(tmp_path / "d.p12"), "-passin", "pass:correct horse", "-nokeys", "-clcerts")
    assert f"NP:PL-{reg['npwz']}".encode() in out.stdout
    wrong = openssl("pkcs12", "-in", str(tmp_path / "d.p12"), "-passin", "pass:wrong", "-nokeys", check=False)
    assert wrong.returncode != 0


def _problem(resp, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code


def test_bad_enrollments_get_specific_problems_and_change_nothing(client, operator_token, session_factory, tmp_path):
    reg = register(client, operator_token)
    code = reg["activation_code"]
    before = _cert_count(session_factory)
    _problem(
        client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": "garbage"}), 400, "csr-malformed"
    )
    weak = _openssl_csr(tmp_path, "/CN=x", ["-newkey", "rsa:1024"])
    _problem(client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": weak}), 422, "key-too-weak")
    wrong_curve = make_csr(ec.generate_private_key(ec.SECP256K1()))
    _problem(
        client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": wrong_curve}), 422, "key-too-weak"
    )
    other = _openssl_csr(
        tmp_path, "/C=PL/GN=Piotr/SN=Wisniewski", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    )
    _problem(
        client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": other}), 422, "csr-subject-mismatch"
    )
    good = make_csr(ec.generate_private_key(ec.SECP256R1()))
    _problem(
        client.post("/v1/ca/enrollments", json={"activation_code": "WRONG-CODE", "csr_pem": good}),
        403,
        "activation-code-invalid",
    )
    _problem(client.post("/v1/ca/enrollments", json={"activation_code": code}), 400, "bad-request")
    _problem(
        client.post("/v1/ca/enrollments", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "body-malformed",
    )
    _problem(client.post("/v1/ca/enrollments", json={"activation_code": 5}), 400, "validation-failed")
    assert _cert_count(session_factory) == before
    # None of the refusals spent the code: it still works once, then never again.
    assert client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": good}).status_code == 201
    _problem(
        client.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": good}),
        403,
        "activation-code-invalid",
    )
    assert _cert_count(session_factory) == before + 1


def test_csr_with_broken_proof_of_possession_is_refused(client, operator_token):
    reg = register(client, operator_token)
    pem = make_csr(ec.generate_private_key(ec.SECP256R1()))
    csr = x509.load_pem_x509_csr(pem.encode())
    from cryptography.hazmat.primitives.serialization import Encoding

    der = bytearray(csr.public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # flip a bit inside the signature
    import base64

    broken = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(bytes(der)).decode()
        + "-----END CERTIFICATE REQUEST-----\n"
    )
    resp = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": broken})
    assert resp.status_code in (400, 422)
    assert resp.json()["code"] in ("csr-signature-invalid", "csr-malformed")


def test_registration_needs_an_operator_and_valid_numbers(client, operator_token, session_factory):
    from tests.factories import doctor_payload

    _problem(client.post("/v1/ca/doctors", json=doctor_payload()), 401, "unauthenticated")
    _problem(client.post("/v1/ca/doctors", json=doctor_payload(), headers=_auth("nope")), 401, "unauthenticated")
    _problem(
        client.post("/v1/ca/doctors", json=doctor_payload(npwz="1234567"), headers=_auth(operator_token)),
        400,
        "bad-request",
    )
    _problem(
        client.post("/v1/ca/doctors", json=doctor_payload(pesel="44051401358"), headers=_auth(operator_token)),
        400,
        "bad-request",
    )
    p = doctor_payload()
    assert client.post("/v1/ca/doctors", json=p, headers=_auth(operator_token)).status_code == 201
    _problem(client.post("/v1/ca/doctors", json=p, headers=_auth(operator_token)), 409, "doctor-exists")


def test_unknown_serial_is_404(client):
    _problem(client.get("/v1/ca/certificates/deadbeef"), 404, "certificate-unknown")
    _problem(client.get("/v1/ca/certificates/not-hex"), 404, "certificate-unknown")


def test_renewal_signed_by_the_current_key(client, operator_token):
    from ezla.proof import holder_message, sign_proof

    doc = enroll(client, operator_token)
    new_key = ec.generate_private_key(ec.SECP256R1())
    csr_pem = make_csr(new_key)
    import base64
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    digest = hashlib.sha256(x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(Encoding.DER)).hexdigest()
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    bad = base64.b64encode(sign_proof(new_key, holder_message("renew", doc.serial, challenge, digest))).decode()
    resp = client.post(
        f"/v1/ca/certificates/{doc.serial}/renewal", json={"csr_pem": csr_pem, "challenge": challenge, "signature": bad}
    )
    _problem(resp, 401, "proof-invalid")
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    sig = base64.b64encode(sign_proof(doc.key, holder_message("renew", doc.serial, challenge, digest))).decode()
    resp = client.post(
        f"/v1/ca/certificates/{doc.serial}/renewal", json={"csr_pem": csr_pem, "challenge": challenge, "signature": sig}
    )
    assert resp.status_code == 201, resp.text
    renewed = x509.load_pem_x509_certificate(resp.json()["certificate_pem"].encode())
    assert npwz_of(renewed) == doc.npwz and renewed.serial_number != doc.cert.serial_number
    # The challenge was single-use.
    again = client.post(
        f"/v1/ca/certificates/{doc.serial}/renewal", json={"csr_pem": csr_pem, "challenge": challenge, "signature": sig}
    )
    _problem(again, 401, "challenge-invalid")

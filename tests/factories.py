"""A valid object in one call; tests override only what they test."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ezla.client import make_csr, new_key
from ezla.identifiers import make_npwz

_npwz_tails = itertools.count(100001)


def next_npwz() -> str:
    while True:
        npwz = make_npwz(f"{next(_npwz_tails):06d}")
        if npwz is not None:
            return npwz


def doctor_payload(**overrides: Any) -> dict[str, Any]:
    return {"npwz": next_npwz(), "pesel": "44051401359", "given_name": "Anna", "family_name": "Nowak", **overrides}


@dataclass
class EnrolledDoctor:
    npwz: str
    serial: str
    key: PrivateKeyTypes
    cert: x509.Certificate
    chain_pem: str

    def write(self, directory: Path) -> tuple[Path, Path]:
        key_path, cert_path = directory / f"{self.serial}.key.pem", directory / f"{self.serial}.pem"
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path


def register(client: Any, operator_token: str, **overrides: Any) -> dict[str, Any]:
    resp = client.post(
        "/v1/ca/doctors", json=doctor_payload(**overrides), headers={"Authorization": f"Bearer {operator_token}"}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def enroll(client: Any, operator_token: str, key_type: str = "ec", **overrides: Any) -> EnrolledDoctor:
    reg = register(client, operator_token, **overrides)
    key = new_key(key_type)
    resp = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": make_csr(key)})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    return EnrolledDoctor(reg["npwz"], body["serial"], key, cert, body["chain_pem"])


def signed_sick_leave(
    doctor: EnrolledDoctor, *, today: Any = None, signing_time: Any = None, **overrides: Any
) -> bytes:
    """A valid e-ZLA for ``doctor``, signed with its key (XAdES-BES), issued today (Warsaw)."""
    from datetime import UTC, datetime

    from ezla.business_time import local_date
    from ezla.ca.profile import names_of
    from ezla.document.codec import build_sick_leave_xml
    from ezla.issuance.samples import sample_sick_leave
    from ezla.xades import sign_enveloped

    today = today or local_date(datetime.now(UTC))
    names = names_of(doctor.cert)
    if names is not None:  # the document names the doctor as the certificate does
        overrides = {"given_name": names[0], "family_name": names[1], **overrides}
    sl = sample_sick_leave(today=today, npwz=doctor.npwz, **overrides)
    return sign_enveloped(build_sick_leave_xml(sl), doctor.key, doctor.cert, signing_time=signing_time)


def signed_cancellation(
    doctor: EnrolledDoctor,
    *,
    document_id: str,
    series: str,
    number: str,
    reason: str = "Pomyłka",
    npwz: str | None = None,
) -> bytes:
    from ezla.document.codec import build_cancellation_xml
    from ezla.document.model import Cancellation
    from ezla.xades import sign_enveloped

    c = Cancellation(document_id=document_id, series=series, number=number, reason=reason, npwz=npwz or doctor.npwz)
    return sign_enveloped(build_cancellation_xml(c), doctor.key, doctor.cert)


XML = {"content-type": "application/xml"}


def enroll_doctor_cli(e: dict[str, str], url: str, tmp: Path) -> EnrolledDoctor:
    """A doctor registered with ``ezla doctor add`` (local DB, as an operator) and enrolled over HTTP."""
    import json
    import subprocess

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ezla.client import EzlaClient, enroll_with_new_key
    from tests.e2e.procs import EZLA

    payload = doctor_payload()
    args = [a for k, v in payload.items() for a in (f"--{k.replace('_', '-')}", v)]
    reg = json.loads(
        subprocess.run(
            [EZLA, "doctor", "add", "--json", *args], env=e, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    with EzlaClient([url]) as c:
        files = enroll_with_new_key(c, reg["activation_code"], tmp / "doctor")
    key = serialization.load_pem_private_key(Path(files["key"]).read_bytes(), None)
    cert = x509.load_pem_x509_certificate(Path(files["certificate"]).read_bytes())
    return EnrolledDoctor(payload["npwz"], files["serial"], key, cert, Path(files["chain"]).read_text())  # type: ignore[arg-type]


def renew(client: Any, doctor: EnrolledDoctor, key_type: str = "ec", *, proving_key: Any = None) -> EnrolledDoctor:
    """Renew ``doctor``'s certificate onto a fresh key, proving possession of ``proving_key``
    (default: the doctor's own; a thief who stole it proves it just the same)."""
    import base64
    import hashlib

    from ezla.proof import holder_message, sign_proof

    key = new_key(key_type)
    csr_pem = make_csr(key)
    digest = hashlib.sha256(
        x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    proof = sign_proof(proving_key or doctor.key, holder_message("renew", doctor.serial, challenge, digest))
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/renewal",
        json={"csr_pem": csr_pem, "challenge": challenge, "signature": base64.b64encode(proof).decode()},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    return EnrolledDoctor(doctor.npwz, body["serial"], key, cert, body["chain_pem"])


def log_in(client: Any, doctor: EnrolledDoctor) -> Any:
    """POST /v1/auth/doctor-token with a signed challenge; returns the response."""
    import base64

    from ezla.proof import login_message, sign_proof

    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    signature = base64.b64encode(sign_proof(doctor.key, login_message(challenge))).decode()
    pem = doctor.cert.public_bytes(serialization.Encoding.PEM).decode()
    return client.post(
        "/v1/auth/doctor-token", json={"certificate_pem": pem, "challenge": challenge, "signature": signature}
    )

"""A doctor logs in by signing a server challenge with the certificate's key (design.md)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy.orm import Session

from ezla.audit import service as audit
from ezla.auth.service import consume_challenge, issue_doctor_token
from ezla.ca import serials
from ezla.ca.profile import npwz_of
from ezla.ca.records import lock_certificate
from ezla.ca.revocation import signer_status
from ezla.errors import BadRequest, Forbidden
from ezla.proof import login_message, verify_proof


@dataclass(frozen=True)
class DoctorToken:
    token: str
    expires_at: datetime


def log_in_doctor(
    session: Session, certificate_pem: str, challenge: str, signature_b64: str, *, now: datetime
) -> DoctorToken:
    """A doctor's short-lived bearer token for a signed login challenge. Only a certificate this CA
    issued, valid now and unrevoked, may log in; the token is bound to the certificate (it ends
    with the certificate's validity and is revoked with it) and carries its NPWZ."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError as exc:
        raise BadRequest("certificate_pem must be PEM and signature base64") from exc
    lock_certificate(session, cert.serial_number)
    status = signer_status(session, cert)
    if status is None or status.revocation is not None:
        raise Forbidden("certificate unknown or revoked")
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise Forbidden("certificate not valid now")
    npwz = npwz_of(cert)
    if npwz is None:
        raise Forbidden("not a doctor certificate")
    consume_challenge(session, challenge, now=now)
    verify_proof(cert, login_message(challenge), signature)
    serial = serials.to_hex(cert.serial_number)
    token, expires_at = issue_doctor_token(session, npwz, serial, cert.not_valid_after_utc, now=now)
    audit.record(session, "doctor_logged_in", serial, {"npwz": npwz}, now=now)
    return DoctorToken(token, expires_at)

"""Proof that a caller holds a certificate's private key: a signature over a server challenge.

Holders renew and revoke with it (and log in: ``login.py``); the challenge is spent in the caller's transaction, so a
proof works once.
"""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography import x509
from sqlalchemy.orm import Session

from ezla.auth.service import consume_challenge
from ezla.ca.models import Certificate
from ezla.errors import BadRequest
from ezla.proof import holder_message, verify_proof


def check_holder(
    session: Session, row: Certificate, purpose: str, challenge: str, signature_b64: str, extra: str, now: datetime
) -> None:
    assert row.der is not None
    verify_holder(row.serial, row.der, purpose, challenge, signature_b64, extra)
    consume_challenge(session, challenge, now=now)


def verify_holder(serial: str, der: bytes, purpose: str, challenge: str, signature_b64: str, extra: str) -> None:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError as exc:
        raise BadRequest("signature must be base64") from exc
    verify_proof(x509.load_der_x509_certificate(der), holder_message(purpose, serial, challenge, extra), signature)

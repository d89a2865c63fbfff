"""Doctor challenge-token flow (design.md): sign a server challenge with the certificate's key."""

from __future__ import annotations

import base64
from datetime import datetime

import msgspec
from cryptography import x509
from litestar import Controller, get, post
from litestar.datastructures import CacheControlHeader, State
from sqlalchemy.orm import Session

from ezla.auth import service
from ezla.auth.proof import login_message, verify_proof
from ezla.db import utcnow
from ezla.errors import BadRequest, Forbidden


class ChallengeOut(msgspec.Struct):
    challenge: str
    expires_at: datetime


class DoctorTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    certificate_pem: str
    challenge: str
    signature: str


class TokenOut(msgspec.Struct):
    token: str
    expires_at: datetime


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @get("/challenge", sync_to_thread=True)
    def challenge(self, db_session: Session) -> ChallengeOut:
        challenge, expires_at = service.issue_challenge(db_session, now=utcnow())
        db_session.commit()
        return ChallengeOut(challenge, expires_at)

    @post("/doctor-token", status_code=200, sync_to_thread=True, cache_control=CacheControlHeader(no_store=True))
    def doctor_token(self, data: DoctorTokenIn, state: State, db_session: Session) -> TokenOut:
        from ezla.ca import service as ca_service
        from ezla.ca.profile import npwz_of

        now = utcnow()
        try:
            cert = x509.load_pem_x509_certificate(data.certificate_pem.encode())
            signature = base64.b64decode(data.signature, validate=True)
        except ValueError as exc:
            raise BadRequest("certificate_pem must be PEM and signature base64") from exc
        # Only a certificate we issued, still valid and unrevoked, may log in.
        status = ca_service.signer_status(db_session, cert)
        if status is None or status.revocation is not None:
            raise Forbidden("certificate unknown or revoked")
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise Forbidden("certificate not valid now")
        npwz = npwz_of(cert)
        if npwz is None:
            raise Forbidden("not a doctor certificate")
        service.consume_challenge(db_session, data.challenge, now=now)
        verify_proof(cert, login_message(data.challenge), signature)
        token, expires_at = service.issue_doctor_token(db_session, npwz, now=now)
        db_session.commit()
        return TokenOut(token, expires_at)

"""Revocation and what relying parties read of it: CRLs, OCSP, and the verifier's status check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ezla.ca import audit, crl, ocsp, serials
from ezla.ca.context import CaContext
from ezla.ca.holders import check_holder
from ezla.ca.models import Certificate, CertificateStatus, Crl
from ezla.ca.records import load_row
from ezla.db import reading, transaction
from ezla.errors import BadRequest, CertificateAlreadyRevoked
from ezla.xades import Revocation


@dataclass(frozen=True)
class Revoked:
    serial: str
    status: CertificateStatus
    reason: str
    revoked_at: datetime


@dataclass(frozen=True)
class CrlRecord:
    number: int
    this_update: datetime
    next_update: datetime
    der: bytes

    @classmethod
    def of(cls, row: Crl) -> CrlRecord:
        return cls(row.number, row.this_update, row.next_update, row.der)


def revoke(
    session: Session,
    serial: str,
    *,
    reason: str,
    now: datetime,
    by: str,
    challenge: str | None = None,
    signature: str | None = None,
) -> Revoked:
    """Revoke by the operator (``by="operator"``) or by the holder proving possession of the key."""
    if reason not in crl.REASONS:
        raise BadRequest(f"reason must be one of {', '.join(crl.REASONS)}", field="reason")
    row = load_row(session, serial)
    if by == "holder":
        if not challenge or not signature:
            raise BadRequest("a holder revocation needs challenge and signature")
        check_holder(session, row, "revoke", challenge, signature, reason, now)
    if row.status == CertificateStatus.REVOKED:
        raise CertificateAlreadyRevoked()
    row.status, row.revoked_at, row.revocation_reason = CertificateStatus.REVOKED, now, reason
    audit.append(session, "certificate_revoked", row.serial, {"reason": reason, "by": by}, now=now)
    return Revoked(row.serial, CertificateStatus.REVOKED, reason, now)


def publish_crl(
    sessions: sessionmaker[Session], ctx: CaContext, *, now: datetime, refresh: timedelta | None = None
) -> CrlRecord:
    """The CRL to serve: the latest one while it is fresh (``refresh`` given and no revocation
    since), otherwise a new one. Read -> build, lint, sign (CPU, no transaction) -> store under the
    audit chain's CA-wide lock, which also keeps CRL numbers unique across nodes: a twin that
    published the same number first makes us build again with the next one."""
    for _ in range(3):
        with reading(sessions) as session:
            latest = latest_crl(session)
            if refresh is not None and not _stale(session, latest, now=now, refresh=refresh):
                assert latest is not None
                return latest
            number = (latest.number if latest else 0) + 1
            revoked = session.execute(
                select(Certificate.serial, Certificate.revoked_at, Certificate.revocation_reason).where(
                    Certificate.status == CertificateStatus.REVOKED, Certificate.not_after > now
                )
            ).all()
        entries = [crl.RevokedEntry(int(s, 16), at, r) for s, at, r in revoked if at is not None and r is not None]
        der = crl.build_crl(
            ctx.keys.issuing, ctx.keys.issuing_key, entries, number=number, now=now, validity=ctx.crl_validity
        )
        with transaction(sessions) as session:
            audit.append(session, "crl_generated", "crl", {"number": number}, now=now)  # takes the CA lock
            if (session.scalar(select(func.max(Crl.number))) or 0) >= number:
                continue  # a twin published this number meanwhile
            row = Crl(number=number, this_update=now, next_update=now + ctx.crl_validity, der=der)
            session.add(row)
            return CrlRecord.of(row)
    raise RuntimeError("CRL number contended three times in a row")


def latest_crl(session: Session) -> CrlRecord | None:
    row = session.scalar(select(Crl).order_by(Crl.number.desc()).limit(1))
    return CrlRecord.of(row) if row is not None else None


def _stale(session: Session, latest: CrlRecord | None, *, now: datetime, refresh: timedelta) -> bool:
    if latest is None or latest.this_update + refresh <= now:
        return True
    newest_revocation = session.scalar(select(func.max(Certificate.revoked_at)))
    return newest_revocation is not None and newest_revocation >= latest.this_update


def status_of(session: Session, serial: int) -> ocsp.Status:
    row = session.get(Certificate, serials.to_hex(serial))
    if row is None or row.der is None:
        return ocsp.Status("unknown")
    cert = x509.load_der_x509_certificate(row.der)
    if row.status == CertificateStatus.REVOKED:
        return ocsp.Status("revoked", cert, row.revoked_at, row.revocation_reason)
    return ocsp.Status("good", cert)


def ocsp_response(sessions: sessionmaker[Session], ctx: CaContext, request_der: bytes, *, now: datetime) -> bytes:
    """Parse, read the status in a short transaction, then sign outside it."""
    req = ocsp.parse_request(request_der)
    with reading(sessions) as session:
        status = status_of(session, req.serial_number)
    return ocsp.respond(req, ctx.keys, lambda _serial: status, now=now)


@dataclass(frozen=True)
class SignerStatus:
    """What signature verification asks of the CA's records about a certificate."""

    revocation: Revocation | None


def signer_status(session: Session, cert: x509.Certificate) -> SignerStatus | None:
    """None unless the exact certificate is one we issued (not merely one with a known serial);
    otherwise its revocation, read from the database on every call so that a revocation recorded
    by either node takes effect at once."""
    row = session.get(Certificate, serials.to_hex(cert.serial_number))
    if row is None or row.der != cert.public_bytes(serialization.Encoding.DER):
        return None
    if row.status == CertificateStatus.REVOKED and row.revoked_at is not None:
        return SignerStatus(Revocation(row.revoked_at, row.revocation_reason))
    return SignerStatus(None)

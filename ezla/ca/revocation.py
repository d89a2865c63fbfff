"""Revocation and what relying parties read of it: CRLs, OCSP, and the verifier's status check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ezla.audit import service as audit
from ezla.auth.service import revoke_certificate_tokens
from ezla.ca import crl, ocsp, serials
from ezla.ca.context import CaContext
from ezla.ca.holders import check_holder
from ezla.ca.models import Certificate, CertificateStatus, Crl
from ezla.ca.records import load_row
from ezla.db import reading, transaction
from ezla.errors import BadRequest, CertificateAlreadyRevoked
from ezla.log import get_logger
from ezla.xades import Revocation

log = get_logger(__name__)


@dataclass(frozen=True)
class Revoked:
    serial: str
    status: CertificateStatus
    reason: str
    revoked_at: datetime
    # Renewals the compromised key made (and theirs): revoked with it, in the same transaction.
    lineage: tuple[str, ...] = ()
    tokens_revoked: int = 0


# A compromise reaches every certificate renewed with proof of the compromised key: RFC 5280's
# keyCompromise, and an operator's unspecified (a careful operator's choice when unsure). A holder's
# unspecified does not: a doctor retiring an old certificate keeps the renewal made with it.


def _renewals(session: Session, serial: str, *, since: datetime | None) -> list[Certificate]:
    """Certificates renewed from ``serial`` (from ``since`` on), and everything renewed from those
    at any time: once the thief holds a renewed key, all that key later proves is the thief's."""
    found: list[Certificate] = []
    frontier = [serial]
    first = True
    while frontier:
        stmt = select(Certificate).where(Certificate.renewed_from.in_(frontier)).with_for_update()
        if first and since is not None:
            stmt = stmt.where(Certificate.created_at >= since)
        children = list(session.scalars(stmt))
        found += children
        frontier, first = [c.serial for c in children], False
        if len(found) > 10_000:  # pragma: no cover - a lineage is a handful of renewals
            raise BadRequest("lineage too long to revoke in one request")
    return found


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
    compromised_at: datetime | None = None,
) -> Revoked:
    """Revoke by the operator (``by="operator"``) or by the holder proving possession of the key.

    For keyCompromise (and an operator's unspecified) every renewal made with the key since
    ``compromised_at`` (default: since the certificate was issued) is revoked too, as keyCompromise,
    and with all of them every doctor token they obtained. A certificate already revoked for
    another reason can be revoked again for keyCompromise (RFC 5280 lets the reason change; the
    revocation date stays): a thief who revoked it "superseded" first does not shield the renewal.
    The certificate row is locked first, so a renewal or login racing this either committed before
    (and is found) or sees the certificate revoked."""
    if reason not in crl.REASONS:
        raise BadRequest(f"reason must be one of {', '.join(crl.REASONS)}", field="reason")
    cascade = reason == "keyCompromise" or (reason == "unspecified" and by == "operator")
    if compromised_at is not None and (compromised_at.tzinfo is None or not cascade or compromised_at > now):
        raise BadRequest(
            "compromised_at is a past time with its UTC offset, for keyCompromise or unspecified",
            field="compromised_at",
        )
    row = load_row(session, serial)
    if by == "holder":
        if not challenge or not signature:
            raise BadRequest("a holder revocation needs challenge and signature")
        check_holder(session, row, "revoke", challenge, signature, reason, now)
    session.refresh(row, with_for_update=True)
    if row.status == CertificateStatus.REVOKED:
        upgrade = reason == "keyCompromise" and (row.revocation_reason != reason or compromised_at is not None)
        if not upgrade:
            raise CertificateAlreadyRevoked()
        row.revocation_reason = reason
        row.invalid_since = compromised_at or row.invalid_since or row.created_at
    else:
        row.status, row.revoked_at, row.revocation_reason = CertificateStatus.REVOKED, now, reason
        row.invalid_since = compromised_at
    session.flush()
    lineage: list[Certificate] = []
    if cascade:
        for c in _renewals(session, row.serial, since=compromised_at):
            if c.status == CertificateStatus.REVOKED and c.revocation_reason == "keyCompromise":
                continue
            if c.status != CertificateStatus.REVOKED:
                c.status, c.revoked_at = CertificateStatus.REVOKED, now
            c.revocation_reason = "keyCompromise"
            c.invalid_since = compromised_at or row.created_at
            lineage.append(c)
    serials_revoked = [row.serial, *(c.serial for c in lineage)]
    tokens = revoke_certificate_tokens(session, serials_revoked, now=now)
    audit.record(
        session,
        "certificate_revoked",
        row.serial,
        {"reason": reason, "by": by, "lineage": serials_revoked[1:], "tokens_revoked": tokens},
        now=now,
    )
    assert row.revoked_at is not None
    return Revoked(row.serial, CertificateStatus.REVOKED, reason, row.revoked_at, tuple(serials_revoked[1:]), tokens)


class CrlContended(RuntimeError):
    """Both twins kept publishing a CRL at the same moment."""


def publish_crl(
    sessions: sessionmaker[Session],
    ctx: CaContext,
    *,
    now: datetime,
    refresh: timedelta | None = None,
    generation: int = 1,
) -> CrlRecord:
    """The CRL of issuing CA ``generation`` to serve: the latest one while it is fresh (``refresh``
    given and no revocation since), otherwise a new one. Read -> build, lint, sign (CPU, no
    transaction) -> store under the audit chain's CA-wide lock, which also keeps CRL numbers unique
    across nodes: a twin that published the same number first makes us build again with the next
    one. The numbers are one sequence for all generations, so each CA's own CRLs still increase."""
    gen = ctx.keys.generation(generation) or ctx.keys.current
    for _ in range(3):
        with reading(sessions) as session:
            latest = latest_crl(session, gen.issuing)
            if refresh is not None and not _stale(session, latest, now=now, refresh=refresh):
                assert latest is not None
                return latest
            number = (session.scalar(select(func.max(Crl.number))) or 0) + 1
            revoked = session.execute(
                select(
                    Certificate.serial,
                    Certificate.revoked_at,
                    Certificate.revocation_reason,
                    Certificate.invalid_since,
                    func.coalesce(Certificate.der, Certificate.lint_der),  # an intent revoked with its lineage
                ).where(Certificate.status == CertificateStatus.REVOKED, Certificate.not_after > now)
            ).all()
        entries = [
            crl.RevokedEntry(int(s, 16), at, r, inv)
            for s, at, r, inv, der in revoked
            if at is not None and r is not None and der is not None and gen.issued(x509.load_der_x509_certificate(der))
        ]
        der = crl.build_crl(gen.issuing, gen.issuing_key, entries, number=number, now=now, validity=ctx.crl_validity)
        with transaction(sessions) as session:
            audit.lock(session)  # the CA-wide lock: one CRL number at a time, across nodes
            if (session.scalar(select(func.max(Crl.number))) or 0) >= number:
                continue  # a twin published this number meanwhile
            row = Crl(number=number, this_update=now, next_update=now + ctx.crl_validity, der=der)
            session.add(row)
            audit.record(session, "crl_generated", "crl", {"number": number, "generation": gen.number}, now=now)
            return CrlRecord.of(row)
    raise CrlContended("CRL number contended three times in a row")


def publish_crls(
    sessions: sessionmaker[Session], ctx: CaContext, *, now: datetime, refresh: timedelta | None = None
) -> list[CrlRecord]:
    """Every issuing CA's CRL (after a rollover the older CAs keep publishing theirs)."""
    return [publish_crl(sessions, ctx, now=now, refresh=refresh, generation=g.number) for g in ctx.keys.all_generations]


_CRL_SCAN = 64  # CRLs looked at per issuer query: each generation publishes at least hourly


def latest_crl(session: Session, issuer: x509.Certificate | None = None) -> CrlRecord | None:
    """The newest CRL, of ``issuer`` when given (read off the CRL itself: no column for it)."""
    rows = session.scalars(select(Crl).order_by(Crl.number.desc()).limit(1 if issuer is None else _CRL_SCAN))
    for row in rows:
        if issuer is None or x509.load_der_x509_crl(row.der).issuer == issuer.subject:
            return CrlRecord.of(row)
    return None


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

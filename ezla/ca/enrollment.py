"""Enrollment and renewal: Boulder's issuance recipe as short transactions around CPU work.

Read the registration -> lint (CPU) -> [spend the code or challenge, record intent + audit] ->
sign (CPU) -> [store the certificate + audit]. CSR checks, key generation, linting, signing and
the PKCS#12 KDF never hold a transaction. A crash between the brackets leaves a recorded intent
without a certificate, never a certificate without a record.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ezla.audit import service as audit
from ezla.auth.service import FailureLimit, check_failures, consume_challenge, count_failure
from ezla.ca import profile, serials
from ezla.ca.context import CaContext
from ezla.ca.holders import verify_holder
from ezla.ca.models import ActivationCode, Certificate, CertificateStatus, Doctor
from ezla.ca.passwords import check_pkcs12_password
from ezla.ca.records import load_row
from ezla.ca.serials import Serial
from ezla.ca.signer import issue
from ezla.db import transaction
from ezla.errors import (
    ActivationCodeInvalid,
    ActivationCodeLocked,
    BadRequest,
    CertificateUnknown,
    CsrMalformed,
    CsrSignatureInvalid,
    CsrSubjectMismatch,
    DoctorExists,
    Forbidden,
)
from ezla.identifiers import npwz_valid, pesel_valid
from ezla.keys import check_key


@dataclass(frozen=True)
class Registration:
    npwz: str
    activation_code: str
    expires_at: datetime


@dataclass(frozen=True)
class Issued:
    serial: Serial
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)


def _hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()


def _new_activation_code() -> str:
    # 100 bits in Crockford-ish base32, grouped for reading over the phone.
    raw = base64.b32encode(secrets.token_bytes(15)).decode().rstrip("=")
    return "-".join(raw[i : i + 6] for i in range(0, len(raw), 6))


def register_doctor(
    session: Session, *, npwz: str, pesel: str, given_name: str, family_name: str, ttl: timedelta, now: datetime
) -> Registration:

    if not npwz_valid(npwz):
        raise BadRequest("npwz fails its check digit", field="npwz")
    if not pesel_valid(pesel):
        raise BadRequest("pesel fails its check digit", field="pesel")
    for name_field, value in (("given_name", given_name), ("family_name", family_name)):
        if not value.strip() or len(value) > 64 or any(not ch.isprintable() for ch in value):
            raise BadRequest(f"{name_field} must be 1-64 printable characters", field=name_field)
    if len(given_name.strip()) + 1 + len(family_name.strip()) > 64:
        # RFC 5280 ub-common-name: the certificate's CN is "given family".
        raise BadRequest("given and family name together must fit 63 characters", field="family_name")
    if session.scalar(select(Doctor.id).where(Doctor.npwz == npwz)) is not None:
        raise DoctorExists()
    doctor = Doctor(
        npwz=npwz, pesel=pesel, given_name=given_name.strip(), family_name=family_name.strip(), created_at=now
    )
    session.add(doctor)
    session.flush()
    code = _new_activation_code()
    expires_at = now + ttl
    session.add(ActivationCode(doctor_id=doctor.id, code_hash=_hash(code), expires_at=expires_at))
    audit.record(session, "doctor_registered", npwz, {"doctor_id": doctor.id}, now=now)
    return Registration(npwz, code, expires_at)


def new_activation_code(session: Session, npwz: str, *, ttl: timedelta, now: datetime) -> Registration:
    """A fresh code for an already registered doctor (lost code, or a second enrollment)."""
    doctor = session.scalar(select(Doctor).where(Doctor.npwz == npwz))
    if doctor is None:
        raise CertificateUnknown("no doctor with this NPWZ")
    code = _new_activation_code()
    session.add(ActivationCode(doctor_id=doctor.id, code_hash=_hash(code), expires_at=now + ttl))
    audit.record(session, "activation_code_issued", npwz, {"doctor_id": doctor.id}, now=now)
    return Registration(npwz, code, now + ttl)


@dataclass(frozen=True)
class _DoctorRef:
    """A registered doctor as read in one transaction and used in the next."""

    id: int
    npwz: str
    given_name: str
    family_name: str

    @classmethod
    def of(cls, doctor: Doctor) -> _DoctorRef:
        return cls(doctor.id, doctor.npwz, doctor.given_name, doctor.family_name)


# Wrong codes: per client address, counted in the database so both nodes see the same count
# (a code has 100 bits, so this is about floods, not guessing); and per doctor, when the request
# names the NPWZ, after which that doctor's outstanding codes are locked until the operator issues
# a new one.
CODE_FAILURES_PER_CLIENT = FailureLimit(failures=10, window=timedelta(minutes=15))
MAX_CODE_FAILURES = 5


@dataclass(frozen=True)
class Requester:
    """Who is enrolling, as far as the failure counters care."""

    client: str  # client address
    npwz: str | None = None  # the doctor the code is claimed to belong to, when the client says


def _doctor_for_code(sessions: sessionmaker[Session], code: str, now: datetime, requester: Requester) -> _DoctorRef:
    """Who an unspent activation code belongs to; spending it is ``_redeem``'s, with the intent."""
    client_key = f"activation-code:{requester.client}"
    with transaction(sessions) as session:
        check_failures(session, client_key, CODE_FAILURES_PER_CLIENT, now=now)
        found = session.execute(
            select(Doctor, ActivationCode.failed_attempts)
            .join(ActivationCode, ActivationCode.doctor_id == Doctor.id)
            .where(
                ActivationCode.code_hash == _hash(code),
                ActivationCode.used_at.is_(None),
                ActivationCode.expires_at > now,
            )
        ).first()
        if found is not None and (requester.npwz is None or found[0].npwz == requester.npwz):
            if found[1] >= MAX_CODE_FAILURES:
                raise ActivationCodeLocked()
            return _DoctorRef.of(found[0])
    with transaction(sessions) as session:  # the failed lookup above wrote nothing; count it
        count_failure(session, client_key, CODE_FAILURES_PER_CLIENT, now=now)
        if requester.npwz is not None:
            doctor_id = select(Doctor.id).where(Doctor.npwz == requester.npwz).scalar_subquery()
            session.execute(
                update(ActivationCode)
                .where(ActivationCode.doctor_id == doctor_id, ActivationCode.used_at.is_(None))
                .values(failed_attempts=ActivationCode.failed_attempts + 1)
            )
        audit.record(session, "activation_code_failed", requester.npwz or "-", {"client": requester.client}, now=now)
    raise ActivationCodeInvalid()


def _redeem(session: Session, code: str, now: datetime) -> Doctor:
    """Single use across nodes: the conditional UPDATE succeeds for exactly one caller."""
    row = session.execute(
        update(ActivationCode)
        .where(
            ActivationCode.code_hash == _hash(code),
            ActivationCode.used_at.is_(None),
            ActivationCode.expires_at > now,
            ActivationCode.failed_attempts < MAX_CODE_FAILURES,
        )
        .values(used_at=now)
        .returning(ActivationCode.doctor_id)
    ).first()
    if row is None:
        raise ActivationCodeInvalid()
    doctor = session.get(Doctor, row[0])
    assert doctor is not None
    return doctor


def parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    if len(csr_pem) > 20_000:
        raise CsrMalformed("CSR too large")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        key = csr.public_key()
    except Exception as exc:  # cryptography raises ValueError/UnsupportedAlgorithm on junk
        raise CsrMalformed() from exc
    check_key(key)
    if not csr.is_signature_valid:
        raise CsrSignatureInvalid()
    return csr


def _check_subject(csr: x509.CertificateSigningRequest, doctor: _DoctorRef) -> None:
    """Any attribute the CSR states must agree with the registration; the issued subject comes
    from the registration alone, so an empty CSR subject is fine."""
    ident = profile.DoctorIdentity(doctor.npwz, doctor.given_name, doctor.family_name)
    expected: dict[x509.ObjectIdentifier, set[str]] = {}
    for attr in profile.doctor_subject(ident, profile.Profile()):
        expected.setdefault(attr.oid, set()).add(str(attr.value))
    expected[x509.NameOID.SERIAL_NUMBER].add(doctor.npwz)  # a bare NPWZ is fine too
    for attr in csr.subject:
        allowed = expected.get(attr.oid)
        if allowed is None:
            if attr.oid in (
                x509.NameOID.ORGANIZATION_NAME,
                x509.NameOID.ORGANIZATIONAL_UNIT_NAME,
                x509.NameOID.LOCALITY_NAME,
                x509.NameOID.STATE_OR_PROVINCE_NAME,
                x509.NameOID.EMAIL_ADDRESS,
            ):
                continue  # ignored: not part of our profile's subject
            raise CsrSubjectMismatch(f"attribute {attr.oid.dotted_string} is not part of the doctor profile")
        if str(attr.value).strip().casefold() not in {v.casefold() for v in allowed}:
            raise CsrSubjectMismatch(f"{attr.rfc4514_attribute_name} disagrees with the registered doctor")


def _issue_for(
    sessions: sessionmaker[Session],
    ctx: CaContext,
    doctor: _DoctorRef,
    public_key: object,
    *,
    now: datetime,
    action: str,
    claim: Callable[[Session], None],
    renewed_from: str | None = None,
) -> Issued:
    """Boulder's order, each database step its own short transaction. ``claim`` spends what
    authorises this issuance (activation code, holder challenge) in the intent's transaction, so
    two racing requests cannot both get a certificate."""
    serial = serials.new_serial(ctx.node_number)
    ident = profile.DoctorIdentity(doctor.npwz, doctor.given_name, doctor.family_name)
    gen = ctx.keys.current  # after a rollover, new and renewed certificates come from the new CA
    urls = ctx.urls.for_generation(gen.number)
    builder = profile.doctor_builder(ident, public_key, gen.issuing, serial, now, ctx.profile, urls)  # type: ignore[arg-type]
    hexs = serials.to_hex(serial)

    def record_intent(lint_copy: x509.Certificate) -> None:
        with transaction(sessions) as session:
            claim(session)
            session.add(
                Certificate(
                    serial=hexs,
                    doctor_id=doctor.id,
                    kind="doctor",
                    status=CertificateStatus.INTENT,
                    lint_der=lint_copy.public_bytes(serialization.Encoding.DER),
                    not_before=lint_copy.not_valid_before_utc,
                    not_after=lint_copy.not_valid_after_utc,
                    created_at=now,
                    renewed_from=renewed_from,
                )
            )
            audit.record(
                session, f"{action}_intent", hexs, {"npwz": doctor.npwz, "renewed_from": renewed_from}, now=now
            )

    cert = issue(builder, gen.issuing_key, doctor=True, record_intent=record_intent)
    with transaction(sessions) as session:
        der = cert.public_bytes(serialization.Encoding.DER)
        session.execute(update(Certificate).where(Certificate.serial == hexs).values(der=der))
        # Only an intent becomes issued: a lineage revocation may have reached it while we signed.
        session.execute(
            update(Certificate)
            .where(Certificate.serial == hexs, Certificate.status == CertificateStatus.INTENT)
            .values(status=CertificateStatus.ISSUED)
        )
        audit.record(session, action, hexs, {"npwz": doctor.npwz}, now=now)
    return Issued(hexs, cert, (gen.issuing, ctx.keys.root))


def _spend_code(code: str, doctor: _DoctorRef, now: datetime) -> Callable[[Session], None]:
    def claim(session: Session) -> None:
        if _redeem(session, code, now).id != doctor.id:  # pragma: no cover - a code names one doctor
            raise ActivationCodeInvalid()

    return claim


def enroll_with_csr(
    sessions: sessionmaker[Session],
    ctx: CaContext,
    *,
    activation_code: str,
    csr_pem: str,
    now: datetime,
    requester: Requester = Requester("local"),
) -> Issued:
    csr = parse_csr(csr_pem)  # cheap checks before any database work
    doctor = _doctor_for_code(sessions, activation_code, now, requester)
    _check_subject(csr, doctor)
    claim = _spend_code(activation_code, doctor, now)
    return _issue_for(sessions, ctx, doctor, csr.public_key(), now=now, action="certificate_issued", claim=claim)


def enroll_with_pkcs12(
    sessions: sessionmaker[Session],
    ctx: CaContext,
    *,
    activation_code: str,
    password: str,
    now: datetime,
    requester: Requester = Requester("local"),
) -> tuple[Issued, bytes]:
    """ZUS-style delivery: the server makes the key and returns it only inside a PKCS#12."""
    check_pkcs12_password(password)
    doctor = _doctor_for_code(sessions, activation_code, now, requester)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claim = _spend_code(activation_code, doctor, now)
    issued = _issue_for(sessions, ctx, doctor, key.public_key(), now=now, action="certificate_issued", claim=claim)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(200_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .build(password.encode())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        f"{doctor.given_name} {doctor.family_name}".encode(), key, issued.certificate, list(issued.chain), encryption
    )
    return issued, p12


def renew(
    sessions: sessionmaker[Session],
    ctx: CaContext,
    serial: str,
    *,
    csr_pem: str,
    challenge: str,
    signature: str,
    now: datetime,
) -> Issued:
    """The holder of a valid certificate gets a new one for a (new) key in its CSR."""
    with transaction(sessions) as session:  # reads only
        row = load_row(session, serial)
        if row.status != CertificateStatus.ISSUED or row.not_after <= now:
            raise Forbidden("only a valid, unrevoked certificate can be renewed")
        found = session.get(Doctor, row.doctor_id) if row.doctor_id is not None else None
        if found is None:
            raise Forbidden("not a doctor certificate")
        doctor, old_serial, der = _DoctorRef.of(found), row.serial, row.der
    assert der is not None
    csr = parse_csr(csr_pem)
    csr_digest = hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()
    verify_holder(old_serial, der, "renew", challenge, signature, csr_digest)
    _check_subject(csr, doctor)

    def claim(session: Session) -> None:
        consume_challenge(session, challenge, now=now)
        # The row lock orders us with a concurrent revocation: it either sees this renewal (and
        # revokes it with its lineage) or we see it revoked.
        current = session.get(Certificate, old_serial, with_for_update=True, populate_existing=True)
        if current is None or current.status != CertificateStatus.ISSUED:  # revoked while we linted
            raise Forbidden("only a valid, unrevoked certificate can be renewed")

    return _issue_for(
        sessions,
        ctx,
        doctor,
        csr.public_key(),
        now=now,
        action="certificate_renewed",
        claim=claim,
        renewed_from=old_serial,
    )

"""Reading the CA's records: a certificate by serial, a doctor with the lineage of its certificates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ezla.ca import serials
from ezla.ca.models import ActivationCode, Certificate, CertificateStatus, Doctor
from ezla.errors import CertificateUnknown


def load_row(session: Session, serial: str) -> Certificate:
    value = serials.parse_hex(serial)
    row = session.get(Certificate, serials.to_hex(value)) if value is not None else None
    if row is None or row.der is None:
        raise CertificateUnknown()
    return row


def lock_certificate(session: Session, serial_number: int) -> None:
    """Hold the certificate's row until the transaction ends: a revocation on either node waits for
    us or we see it (a login must not mint a token for a certificate revoked meanwhile)."""
    session.get(Certificate, serials.to_hex(serial_number), with_for_update=True, populate_existing=True)


def get_certificate(session: Session, serial: str) -> x509.Certificate:
    row = load_row(session, serial)
    assert row.der is not None
    return x509.load_der_x509_certificate(row.der)


@dataclass(frozen=True)
class CertificateRecord:
    serial: str
    status: str
    not_before: datetime
    not_after: datetime
    created_at: datetime
    renewed_from: str | None
    revoked_at: datetime | None
    revocation_reason: str | None
    invalid_since: datetime | None


@dataclass(frozen=True)
class ActivationCodeRecord:
    expires_at: datetime
    used_at: datetime | None
    failed_attempts: int
    locked: bool


@dataclass(frozen=True)
class DoctorRecord:
    """What the operator sees of a doctor: every certificate with its lineage, and every code."""

    npwz: str
    given_name: str
    family_name: str
    registered_at: datetime
    certificates: tuple[CertificateRecord, ...]
    activation_codes: tuple[ActivationCodeRecord, ...]


def doctor_record(session: Session, npwz: str, *, max_code_failures: int) -> DoctorRecord:
    doctor = session.scalar(select(Doctor).where(Doctor.npwz == npwz))
    if doctor is None:
        raise CertificateUnknown("no doctor with this NPWZ")
    certs = session.scalars(
        select(Certificate)
        .where(Certificate.doctor_id == doctor.id)
        .order_by(Certificate.created_at, Certificate.serial)
    )
    codes = session.scalars(
        select(ActivationCode).where(ActivationCode.doctor_id == doctor.id).order_by(ActivationCode.id)
    )
    return DoctorRecord(
        doctor.npwz,
        doctor.given_name,
        doctor.family_name,
        doctor.created_at,
        tuple(
            CertificateRecord(
                c.serial,
                c.status,
                c.not_before,
                c.not_after,
                c.created_at,
                c.renewed_from,
                c.revoked_at,
                c.revocation_reason,
                c.invalid_since,
            )
            for c in certs
        ),
        tuple(
            ActivationCodeRecord(a.expires_at, a.used_at, a.failed_attempts, a.failed_attempts >= max_code_failures)
            for a in codes
        ),
    )


@dataclass(frozen=True)
class DoctorSummary:
    """One line of the operator's list: who, and the certificate they sign with now."""

    npwz: str
    given_name: str
    family_name: str
    registered_at: datetime
    valid_certificates: int
    valid_until: datetime | None  # the latest expiry among valid certificates


def list_doctors(session: Session, *, now: datetime, limit: int = 1000) -> list[DoctorSummary]:
    valid = (
        select(
            Certificate.doctor_id,
            func.count().label("n"),
            func.max(Certificate.not_after).label("until"),
        )
        .where(Certificate.status == CertificateStatus.ISSUED, Certificate.not_after > now)
        .group_by(Certificate.doctor_id)
        .subquery()
    )
    rows = session.execute(
        select(Doctor, valid.c.n, valid.c.until)
        .outerjoin(valid, valid.c.doctor_id == Doctor.id)
        .order_by(Doctor.family_name, Doctor.given_name, Doctor.npwz)
        .limit(limit)
    ).all()
    return [
        DoctorSummary(d.npwz, d.given_name, d.family_name, d.created_at, int(n or 0), until) for d, n, until in rows
    ]

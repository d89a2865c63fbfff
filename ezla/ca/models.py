"""Tables owned by the CA. Other packages go through ``ezla.ca.service``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, UtcDateTime


class Doctor(Base):
    __tablename__ = "ca_doctors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    npwz: Mapped[str] = mapped_column(String(7), unique=True)
    pesel: Mapped[str] = mapped_column(String(11))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ActivationCode(Base):
    __tablename__ = "ca_activation_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("ca_doctors.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Wrong codes tried against this doctor (enrollment naming the NPWZ); locked at MAX_CODE_FAILURES.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CertificateStatus(StrEnum):
    INTENT = "intent"  # recorded before signing (Boulder's order); a crash leaves it so
    ISSUED = "issued"
    REVOKED = "revoked"


class Certificate(Base):
    """Every certificate the issuing CA signed, from the record of intent on (Boulder's order)."""

    __tablename__ = "ca_certificates"

    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # lower-case hex
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("ca_doctors.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # doctor | ocsp | service | audit | tsa
    status: Mapped[str] = mapped_column(String(16))  # CertificateStatus
    der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    lint_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Lineage: the certificate whose key proved this renewal. A compromise of that key reaches here.
    renewed_from: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    # RFC 5280 invalidityDate: when the key is known or suspected to have been compromised.
    invalid_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Crl(Base):
    __tablename__ = "ca_crls"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    this_update: Mapped[datetime] = mapped_column(UtcDateTime)
    next_update: Mapped[datetime] = mapped_column(UtcDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)

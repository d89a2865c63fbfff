"""Tables owned by issuance. Other packages go through ``ezla.issuance.service``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, BigId, UtcDateTime


class SickLeaveRecord(Base):
    """One accepted e-ZLA: the signed original, what was read from its signed part, its state."""

    __tablename__ = "ezla_sick_leaves"
    __table_args__ = (
        UniqueConstraint("series", "number"),
        Index("ix_ezla_sick_leaves_patient_period", "patient_pesel", "incapacity_from"),
        Index("ix_ezla_sick_leaves_doctor_accepted", "doctor_npwz", "accepted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36), unique=True)
    series: Mapped[str] = mapped_column(String(2))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # issued | cancelled
    doctor_npwz: Mapped[str] = mapped_column(String(7), index=True)
    # The patient's key: the PESEL, or for a patient without one the key derived from the passport.
    patient_pesel: Mapped[str] = mapped_column(String(11), index=True)
    payer_nip: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    payer_pesel: Mapped[str | None] = mapped_column(String(11), nullable=True, index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    incapacity_from: Mapped[date] = mapped_column(Date)  # required since 0012 (written since 0008)
    incapacity_to: Mapped[date] = mapped_column(Date)
    signer_serial: Mapped[str] = mapped_column(String(40))
    document_sha256: Mapped[str] = mapped_column(String(64))
    signed_xml: Mapped[bytes] = mapped_column(LargeBinary)
    data_json: Mapped[str] = mapped_column(Text)  # the SickLeave read from the signed part only
    receipt_xml: Mapped[bytes] = mapped_column(LargeBinary)
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_by_node: Mapped[str] = mapped_column(String(32))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancellation_xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    cancellation_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancellation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class NumberCounter(Base):
    """SQLite's stand-in for the PostgreSQL sequence ``ezla_number_seq``."""

    __tablename__ = "ezla_number_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class NumberReservation(Base):
    """A number taken from the counter for a doctor's offline work (ZUS's alternative mode): written
    on a paper e-ZLA and claimed once by the electronic copy sent later. Never given out again,
    used or not: an expired reservation is a gap in the numbering."""

    __tablename__ = "ezla_number_reservations"
    __table_args__ = (Index("ix_ezla_number_reservations_doctor", "doctor_npwz", "expires_at"),)

    series: Mapped[str] = mapped_column(String(2), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    doctor_npwz: Mapped[str] = mapped_column(String(7))
    reserved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ezla_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class AssistantAuthorisation(Base):
    """A doctor lets a medical assistant prepare drafts for them: signed by the doctor's key over a
    server challenge naming the assistant's account (the evidence is kept), revocable."""

    __tablename__ = "ezla_assistant_authorisations"
    __table_args__ = (
        Index("ix_ezla_assistant_authorisations_doctor", "doctor_npwz"),
        Index("ix_ezla_assistant_authorisations_assistant", "assistant_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    doctor_npwz: Mapped[str] = mapped_column(String(7))
    assistant_id: Mapped[int] = mapped_column(Integer)  # the assistant's account
    certificate_serial: Mapped[str] = mapped_column(String(40))  # the doctor's certificate that signed
    challenge: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)  # base64, over ezla.proof.holder_message
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Draft(Base):
    """An unsigned SickLeave prepared for a doctor (by the doctor or an authorised assistant),
    validated on every save; the doctor signs and submits it from their own software."""

    __tablename__ = "ezla_drafts"
    __table_args__ = (Index("ix_ezla_drafts_doctor", "doctor_npwz", "updated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    doctor_npwz: Mapped[str] = mapped_column(String(7))
    document_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_by: Mapped[int] = mapped_column(Integer)  # account id
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    valid: Mapped[bool] = mapped_column(Boolean)
    findings_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    submitted_ezla_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

"""Registry tables, on their own metadata: the registry never shares a database with the nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ezla.db import NAMING, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class RegistryBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RegistryRecord(RegistryBase):
    __tablename__ = "registry_ezla"

    ezla_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36), unique=True)
    series: Mapped[str] = mapped_column(String(2))
    number: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16))
    patient_pesel: Mapped[str] = mapped_column(String(11), index=True)  # the patient's key: a PESEL, or a passport's
    payer_key: Mapped[str] = mapped_column(String(24), index=True)
    doctor_npwz: Mapped[str] = mapped_column(String(7))
    document_json: Mapped[str] = mapped_column(Text)
    signed_xml: Mapped[bytes] = mapped_column(LargeBinary)
    cancellation_xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The e-ZLA as XAdES-LT (time-stamp, chain, OCSP status at acceptance): verifiable for decades.
    evidence_xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IngestLog(RegistryBase):
    """Every PUT received, duplicates included: how the tests prove 'exactly once in effect'."""

    __tablename__ = "registry_ingest_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), index=True)
    ezla_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(16))
    duplicate: Mapped[bool] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)

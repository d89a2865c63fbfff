"""Tables owned by distribution."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, BigId, UtcDateTime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at; claimed when lease_until is in the future
    DELIVERED = "delivered"
    DEAD = "dead"  # dead-lettered after EZLA_DEAD_LETTER_AFTER_SECONDS; an operator may requeue


class Delivery(Base):
    """One (e-ZLA event, recipient) pair. ``fence`` grows on every claim: a worker may only finish
    a delivery while the row still carries the fence it claimed with (fencing token)."""

    __tablename__ = "dist_deliveries"
    __table_args__ = (Index("ix_dist_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ezla_id: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(16))  # issued | cancelled
    recipient: Mapped[str] = mapped_column(String(24))  # registry | employer | employer_webhook | patient
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    fence: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The recipient's address (payer key or PESEL) and JSON body as of the event (outbox.Announcement).
    address: Mapped[str | None] = mapped_column(String(24), nullable=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class EmployerInboxItem(Base):
    """What a payer may see of one event (no diagnosis); ``id`` is the paging cursor."""

    __tablename__ = "dist_employer_inbox"
    __table_args__ = (Index("ix_dist_employer_inbox_payer_page", "payer_key", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payer_key: Mapped[str] = mapped_column(String(24), index=True)  # "nip:<NIP>" or "pesel:<PESEL>"
    ezla_id: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PatientInboxItem(Base):
    __tablename__ = "dist_patient_inbox"
    __table_args__ = (Index("ix_dist_patient_inbox_pesel_page", "pesel", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pesel: Mapped[str] = mapped_column(String(11), index=True)  # the patient's key (a PESEL, or a passport's)
    ezla_id: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Webhook(Base):
    __tablename__ = "dist_webhooks"

    payer_key: Mapped[str] = mapped_column(String(24), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))  # needed in clear to compute the HMAC
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

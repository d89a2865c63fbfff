from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, UtcDateTime


class Account(Base):
    """A bearer token's owner. Only the SHA-256 of the token is kept (tokens are 256-bit random)."""

    __tablename__ = "auth_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # operator | employer | patient | doctor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nip: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    # A patient's key: the PESEL, or for a patient without one the key derived from the passport.
    pesel: Mapped[str | None] = mapped_column(String(11), nullable=True, index=True)
    npwz: Mapped[str | None] = mapped_column(String(7), nullable=True)
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)  # None only before 0007
    # A doctor token stands for one certificate: it dies with its revocation or expiry.
    certificate_serial: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SpentChallenge(Base):
    """A challenge is stateless until used (HMAC-signed, expiring); using it stores its hash here,
    so it works once on either node. Rows go once the challenge would have expired anyway."""

    __tablename__ = "auth_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Secret(Base):
    """Keys both nodes must share and no operator has to configure (the challenge MAC key)."""

    __tablename__ = "auth_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class Throttle(Base):
    """Failure counters both nodes see (wrong activation codes per client address), by window."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer)

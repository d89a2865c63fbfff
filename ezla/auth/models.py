from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, UtcDateTime


class Account(Base):
    """A bearer token's owner. Only the SHA-256 of the token is kept (tokens are 256-bit random)."""

    __tablename__ = "auth_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # operator | employer | patient | doctor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nip: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    pesel: Mapped[str | None] = mapped_column(String(11), nullable=True, index=True)
    npwz: Mapped[str | None] = mapped_column(String(7), nullable=True)
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Challenge(Base):
    __tablename__ = "auth_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

"""Tables owned by insurance. Other packages go through ``ezla.insurance.service``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, BigId, UtcDateTime


class Employment(Base):
    """A payer insures a person from ``valid_from`` to ``valid_to`` (open-ended when null)."""

    __tablename__ = "ins_employments"
    __table_args__ = (UniqueConstraint("payer_key", "pesel"), Index("ix_ins_employments_pesel", "pesel"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payer_key: Mapped[str] = mapped_column(String(24))  # nip:NNNNNNNNNN
    payer_name: Mapped[str] = mapped_column(String(250))
    pesel: Mapped[str] = mapped_column(String(11))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FamilyMember(Base):
    """A family member the insured person reported through this payer (ZCNA)."""

    __tablename__ = "ins_family_members"
    __table_args__ = (Index("ix_ins_family_members_insured", "insured_pesel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payer_key: Mapped[str] = mapped_column(String(24))
    insured_pesel: Mapped[str] = mapped_column(String(11))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    pesel: Mapped[str | None] = mapped_column(String(11), nullable=True)
    relationship: Mapped[int] = mapped_column(Integer)  # the relationships dictionary: 1-4
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

"""The insurance domain's JSON answers, as types (reference and conversion, as in issuance)."""

from __future__ import annotations

from datetime import date

import msgspec


class EmploymentOut(msgspec.Struct, frozen=True, kw_only=True):
    pesel: str
    start: date = msgspec.field(name="from")
    end: date | None = msgspec.field(name="to")
    created: bool  # False when an existing relation was updated


class FamilyReported(msgspec.Struct, frozen=True, kw_only=True):
    pesel: str
    members: int


class PayerOut(msgspec.Struct, frozen=True, kw_only=True):
    nip: str | None
    name: str
    start: date = msgspec.field(name="from")
    end: date | None = msgspec.field(name="to")


class Payers(msgspec.Struct, frozen=True, kw_only=True):
    payers: list[PayerOut]


class MemberOut(msgspec.Struct, frozen=True, kw_only=True):
    given_name: str
    family_name: str
    birth_date: date
    relationship: int  # 1 child, 2 spouse, 3 parent, 4 other household member


class Family(msgspec.Struct, frozen=True, kw_only=True):
    members: list[MemberOut]

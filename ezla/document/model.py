"""The e-ZLA in memory: one immutable shape of a sick note and of its cancellation.

msgspec Structs, so their JSON form (storage, API, deliveries) is msgspec's, not hand-written:
``as_builtins`` and ``sick_leave_from_builtins`` / ``cancellation_from_builtins`` are inverses.
The XML form is ``codec.py``'s; who may see which fields, ``views.py``'s.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from typing import Any, Literal

import msgspec

from ezla.events import DocumentId
from ezla.identifiers import Nip, Npwz, Pesel, Regon


class Address(msgspec.Struct, frozen=True, kw_only=True):
    street: str
    building: str
    postal_code: str  # NN-NNN
    city: str
    flat: str | None = None


class Doctor(msgspec.Struct, frozen=True, kw_only=True):
    npwz: Npwz
    given_name: str
    family_name: str


class Clinic(msgspec.Struct, frozen=True, kw_only=True):
    regon: Regon  # 9 or 14 digits
    name: str
    address: Address


class Passport(msgspec.Struct, frozen=True, kw_only=True):
    """A patient without a PESEL: the passport, and what the PESEL would have told (birth, sex)."""

    number: str
    country: str  # ISO 3166-1 alpha-2
    birth_date: date
    sex: Literal["F", "M"]


class Patient(msgspec.Struct, frozen=True, kw_only=True):
    """Identified by PESEL, or by passport when they have no PESEL; exactly one of the two."""

    given_name: str
    family_name: str
    address: Address  # residence
    pesel: Pesel | None = None
    passport: Passport | None = None
    stay_address: Address | None = None  # where they stay during the leave, if different

    def __post_init__(self) -> None:
        if (self.pesel is None) == (self.passport is None):
            raise ValueError("Patient needs exactly one of pesel and passport")

    @property
    def key(self) -> str:
        """How ezla files the patient (records, inbox, accounts, the registry): the PESEL, or the
        key derived from the passport (``passport_key``)."""
        if self.pesel is not None:
            return self.pesel
        assert self.passport is not None
        return passport_key(self.passport.country, self.passport.number)

    @property
    def effective_stay_address(self) -> Address:
        """Where the patient can be found during the leave (ZUS and the payer control there)."""
        return self.stay_address or self.address


class Payer(msgspec.Struct, frozen=True, kw_only=True):
    """A payer is identified by NIP, or by PESEL when it is a person; exactly one of the two."""

    name: str
    nip: Nip | None = None
    pesel: Pesel | None = None

    def __post_init__(self) -> None:
        if (self.nip is None) == (self.pesel is None):
            raise ValueError("Payer needs exactly one of nip and pesel")


class Hospital(msgspec.Struct, frozen=True, kw_only=True):
    """The part of the incapacity spent in hospital, both days included."""

    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")


class Incapacity(msgspec.Struct, frozen=True, kw_only=True):
    """The period of incapacity, ``start`` and ``end`` both included (XML ``From``/``To``)."""

    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    hospital: Hospital | None = None
    psychiatric: bool = False  # certified by a psychiatrist: may start more than 3 days back
    backdating_justification: str | None = None  # required when it does

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class FamilyMemberCare(msgspec.Struct, frozen=True, kw_only=True):
    """Leave to care for a family member: identified by PESEL, or by birth date without one."""

    relationship: int  # 1 child, 2 spouse, 3 parent, 4 other household member
    shares_household: bool
    pesel: Pesel | None = None
    birth_date: date | None = None

    def __post_init__(self) -> None:
        if (self.pesel is None) == (self.birth_date is None):
            raise ValueError("FamilyMemberCare needs exactly one of pesel and birth_date")


class ReservedNumber(msgspec.Struct, frozen=True, kw_only=True):
    """An e-ZLA number as written: one the doctor reserved for offline work (on the paper copy), or
    the one a correction replaces."""

    series: str
    number: str  # seven digits, as written


class SickLeave(msgspec.Struct, frozen=True, kw_only=True):
    document_id: DocumentId  # the clinic's UUID, lower case; the idempotency key
    issue_date: date
    doctor: Doctor
    clinic: Clinic
    patient: Patient
    payer: Payer
    incapacity: Incapacity
    indication: int  # 1 must lie in bed, 2 may walk
    codes: tuple[str, ...] = ()
    icd10: str
    family_member_care: FamilyMemberCare | None = None
    reserved_number: ReservedNumber | None = None
    replaces: ReservedNumber | None = None  # a correction: the e-ZLA it replaces


class Cancellation(msgspec.Struct, frozen=True, kw_only=True):
    document_id: DocumentId  # DocumentId of the e-ZLA being cancelled
    series: str
    number: str
    reason: str
    npwz: Npwz  # the cancelling doctor


def as_builtins(doc: msgspec.Struct) -> dict[str, Any]:
    """Exactly the JSON form, as Python data (dates ISO 8601, sequences as lists)."""
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(doc))
    return data


def sick_leave_from_builtins(data: dict[str, Any]) -> SickLeave:
    return msgspec.convert(data, SickLeave)


def cancellation_from_builtins(data: dict[str, Any]) -> Cancellation:
    return msgspec.convert(data, Cancellation)


def passport_key(country: str, number: str) -> str:
    """An 11-character key for a patient without a PESEL: "P" and 60 bits of SHA-256 over the
    passport's country and number (base64url). It fits every column that files patients by PESEL,
    so passports needed no column type change (which would have invalidated every running node's
    prepared statements mid-upgrade), and is never a PESEL (those are all digits). Anyone holding
    the passport computes it (an account, a registry query); a collision needs ~10^9 passports."""
    digest = hashlib.sha256(f"{country}:{number}".encode()).digest()
    return "P" + base64.urlsafe_b64encode(digest).decode()[:10]

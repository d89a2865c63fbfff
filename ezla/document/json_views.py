"""The JSON an e-ZLA is shown as, one type per audience (domain.md "Who sees what"), for the API
reference and for the answers themselves: handlers convert what they send to these types, so a
document that does not match fails loudly here instead of surprising a generated client.

``EzlaJson`` is the whole e-ZLA (patient, issuing doctor, operator, registry); ``EzlaForPayer`` is
the payer's cut made by ``issuance.views.employer_view``."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from ezla.document.model import Address, Clinic, Doctor, Hospital, Passport, Payer, ReservedNumber, SickLeave


class EzlaJson(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    series: str
    number: str  # seven digits, as printed
    status: str  # issued | cancelled
    accepted_at: datetime
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None
    document: SickLeave


class PayerPatient(msgspec.Struct, frozen=True, kw_only=True):
    # Defaults where older releases' stored payloads lack the field (passports came later).
    pesel: str | None = None
    passport: Passport | None = None
    given_name: str
    family_name: str
    stay_address: Address  # where they stay during the leave (the residence when no other is given)


class PayerIncapacity(msgspec.Struct, frozen=True, kw_only=True):
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    hospital: Hospital | None = None


class PayerCare(msgspec.Struct, frozen=True, kw_only=True):
    birth_date: date | None = None  # the cared-for person's; their PESEL is not shown
    relationship: int
    shares_household: bool


class PayerDocument(msgspec.Struct, frozen=True, kw_only=True):
    document_id: str
    issue_date: date
    doctor: Doctor
    clinic: Clinic
    patient: PayerPatient
    payer: Payer
    incapacity: PayerIncapacity
    indication: int
    codes: tuple[str, ...] = ()
    family_member_care: PayerCare | None = None
    reserved_number: ReservedNumber | None = None
    replaces: ReservedNumber | None = None


class EzlaForPayer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    series: str
    number: str
    status: str
    accepted_at: datetime
    cancelled_at: datetime | None = None
    document: PayerDocument

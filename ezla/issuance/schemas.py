"""Issuance's JSON answers, as types: the API reference is generated from them, and each answer is
converted to them before it is sent (``msgspec.convert``), so the two cannot drift apart."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec


class Period(msgspec.Struct, frozen=True, kw_only=True):
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")


class PatientName(msgspec.Struct, frozen=True, kw_only=True):
    pesel: str | None = None  # None for a patient identified by passport
    given_name: str
    family_name: str


class EzlaSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the doctor's list."""

    id: str
    series: str
    number: str
    status: str
    document_id: str
    issue_date: date
    incapacity: Period
    patient: PatientName
    codes: list[str]
    icd10: str
    accepted_at: datetime
    cancelled_at: datetime | None


class DoctorPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[EzlaSummary]
    next_cursor: str | None


class Related(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    series: str
    number: str
    status: str
    incapacity: Period
    codes: list[str]
    same_diagnosis: bool  # same ICD-10 category; another doctor's diagnosis itself is not shown
    relation: str  # overlapping | continuous | within-60-days
    days_between: int


class RelatedList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Related]


class FindingOut(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    severity: str  # error | warning
    path: str  # XPath of the element, the e-ZLA namespace as default
    message: str


class ValidationOut(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    kind: str  # SickLeave | Cancellation | unknown
    signed: bool
    findings: list[FindingOut]
    report: dict[str, Any] | None  # the signature verifier's validation report, for a signed document


class ReservationOut(msgspec.Struct, frozen=True, kw_only=True):
    series: str
    number: str
    reserved_at: datetime
    expires_at: datetime


class Reservations(msgspec.Struct, frozen=True, kw_only=True):
    reservations: list[ReservationOut]


class AuthorisationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    doctor_npwz: str
    assistant_id: int
    granted_at: datetime
    revoked_at: datetime | None


class Authorisations(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuthorisationOut]


class DraftOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    doctor_npwz: str
    document_id: str | None
    created_by: int  # the account that saved it
    valid: bool
    findings: list[FindingOut]
    created_at: datetime
    updated_at: datetime
    submitted_ezla_id: str | None


class DraftWithXml(DraftOut, frozen=True, kw_only=True):
    xml: str


class Drafts(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DraftOut]

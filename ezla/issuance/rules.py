"""Business rules of an e-ZLA (domain.md "Rules ezla enforces"), as pure functions.

Each rule has its own error class with a stable ``code`` (public contract: clients switch on it).
Error details name the field, never its value: they end up in responses and logs.
Signature, signer and idempotency rules need the certificate and the database and live elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

from ezla.business_time import WARSAW
from ezla.document import dictionaries
from ezla.errors import (
    BackdatingJustificationMissing,
    CancellationReasonMissing,
    CodeInvalid,
    DiagnosisUnknown,
    FamilyCareHouseholdMissing,
    FamilyMemberBirthDateInvalid,
    FamilyMemberPeselInvalid,
    HospitalOutsidePeriod,
    HospitalPeriodReversed,
    IncapacityBackdated,
    IncapacityPeriodReversed,
    IncapacityTooLong,
    IssueDateInFuture,
    NipInvalid,
    NpwzInvalid,
    PatientBirthDateInvalid,
    PayerPeselInvalid,
    PeselInvalid,
    PregnancyCodeNotFemale,
    RegonInvalid,
    RuleViolation,
    SubmissionTooLate,
)
from ezla.identifiers import nip_valid, npwz_valid, pesel_birth_date, pesel_is_female, pesel_valid, regon_valid
from ezla.issuance.findings import finding_of
from ezla.xades import SigningTimePolicy

if TYPE_CHECKING:
    from ezla.document.model import Cancellation, Patient, SickLeave

# --------------------------------------------------------------------------------------------
# Document rules
# --------------------------------------------------------------------------------------------

BACKDATING_DAYS: Final = 3
SUBMISSION_DELAY_DAYS: Final = 3
# SigningTime may be at most 5 minutes ahead of receipt and no older than the submission delay.
SUBMISSION_POLICY: Final = SigningTimePolicy(max_delay_days=SUBMISSION_DELAY_DAYS, zone=WARSAW)


MAX_DAYS: Final = 182
MAX_DAYS_LONG: Final = 270  # with code B (pregnancy) or D (tuberculosis)
CODES: Final = frozenset("ABCDE")


def path_of(field: str) -> str:
    """The XPath of a field named as in error details (``Patient/Pesel``), in the e-ZLA's namespace
    taken as the default (clinic software highlights that element)."""
    return "/SickLeave/" + field


def _identifiers(s: SickLeave) -> Iterator[RuleViolation]:
    if not npwz_valid(s.doctor.npwz):
        yield NpwzInvalid(field="Doctor/Npwz")
    if not regon_valid(s.clinic.regon):
        yield RegonInvalid(field="Clinic/Regon")
    if s.patient.pesel is not None and not pesel_valid(s.patient.pesel):
        yield PeselInvalid(field="Patient/Pesel")
    if s.payer.nip is not None and not nip_valid(s.payer.nip):
        yield NipInvalid(field="Payer/Nip")
    if s.payer.pesel is not None and not pesel_valid(s.payer.pesel):
        yield PayerPeselInvalid(field="Payer/Pesel")
    f = s.family_member_care
    if f is not None and f.pesel is not None and not pesel_valid(f.pesel):
        yield FamilyMemberPeselInvalid(field="FamilyMemberCare/Pesel")


def _dates(s: SickLeave, received: date) -> Iterator[RuleViolation]:
    if s.issue_date > received:
        yield IssueDateInFuture(field="IssueDate")
    if received - s.issue_date > timedelta(days=SUBMISSION_DELAY_DAYS):
        yield SubmissionTooLate(field="IssueDate")


def _codes(s: SickLeave) -> Iterator[RuleViolation]:
    if len(set(s.codes)) != len(s.codes) or not set(s.codes) <= CODES:
        yield CodeInvalid(field="Codes")
    if "B" in s.codes and patient_is_female(s.patient) is False:
        yield PregnancyCodeNotFemale(field="Codes")


def patient_is_female(p: Patient) -> bool | None:
    """From the PESEL, or the sex written beside a passport; None when an invalid PESEL (reported
    by itself) says nothing."""
    if p.passport is not None:
        return p.passport.sex == "F"
    if p.pesel is None or not pesel_valid(p.pesel):
        return None
    return pesel_is_female(p.pesel)


def _patient(s: SickLeave) -> Iterator[RuleViolation]:
    if s.patient.passport is not None and s.patient.passport.birth_date > s.issue_date:
        yield PatientBirthDateInvalid(field="Patient/Passport/BirthDate")


def _diagnosis(s: SickLeave) -> Iterator[RuleViolation]:
    if not dictionaries.icd10_known(s.icd10):
        yield DiagnosisUnknown(field="Diagnosis/Icd10")


def _period(s: SickLeave) -> Iterator[RuleViolation]:
    inc = s.incapacity
    if inc.end < inc.start:
        yield IncapacityPeriodReversed(field="Incapacity")
    limit = MAX_DAYS_LONG if {"B", "D"} & set(s.codes) else MAX_DAYS
    if inc.days > limit:
        yield IncapacityTooLong(f"One e-ZLA covers at most {limit} days", field="Incapacity", limit=limit)
    if inc.start < s.issue_date - timedelta(days=BACKDATING_DAYS):
        if not inc.psychiatric:
            yield IncapacityBackdated(field="Incapacity/From")
        elif not inc.backdating_justification:
            yield BackdatingJustificationMissing(field="Incapacity/BackdatingJustification")
    h = inc.hospital
    if h is not None:
        if h.end < h.start:
            yield HospitalPeriodReversed(field="Incapacity/Hospital")
        elif h.start < inc.start or h.end > inc.end:
            yield HospitalOutsidePeriod(field="Incapacity/Hospital")


def _family_care(s: SickLeave) -> Iterator[RuleViolation]:
    f = s.family_member_care
    if f is None:
        return
    # Born after the examination cannot be cared for on this e-ZLA (a PESEL of the 2100s, say).
    if f.birth_date is not None or pesel_valid(f.pesel or ""):
        birth = f.birth_date if f.birth_date is not None else pesel_birth_date(f.pesel or "")
        if birth > s.issue_date:
            field = "FamilyMemberCare/BirthDate" if f.birth_date is not None else "FamilyMemberCare/Pesel"
            yield FamilyMemberBirthDateInvalid(field=field)
    if f.relationship in (2, 3, 4) and not f.shares_household:
        yield FamilyCareHouseholdMissing(field="FamilyMemberCare/SharesHousehold")


def sick_leave_violations(s: SickLeave, *, received: date) -> list[RuleViolation]:
    """Every broken rule, in document order of the rule families: identifiers, dates, codes,
    diagnosis, period, family-member care."""
    return [
        *_identifiers(s),
        *_patient(s),
        *_dates(s, received),
        *_codes(s),
        *_diagnosis(s),
        *_period(s),
        *_family_care(s),
    ]


def check_sick_leave(s: SickLeave, *, today: date, received_at: date | None = None) -> None:
    """Raise the first broken rule's error, carrying every finding (``findings``) so that a clinic
    fixes the document in one round.

    ``today`` is the service's current date in Poland; ``received_at`` the date ezla received the
    document, when that is not today (re-checking a stored e-ZLA). Both time checks, "issue date not
    in the future" and "sent at most 3 days after issue", are measured against the receipt date.
    """
    violations = sick_leave_violations(s, received=received_at if received_at is not None else today)
    if violations:
        first = violations[0]
        first.extra["findings"] = [finding_of(v).as_json() for v in violations]
        raise first


def check_cancellation(c: Cancellation) -> None:
    """The rules a cancellation can break on its own; who may cancel, and whether the e-ZLA is
    still active, need the stored e-ZLA and are checked by the service."""
    if not npwz_valid(c.npwz):
        raise NpwzInvalid(field="Doctor/Npwz")
    if not c.reason.strip():
        raise CancellationReasonMissing(field="Reason")

"""Business rules of an e-ZLA (domain.md "Rules ezla enforces"), as pure functions.

Each rule has its own error class with a stable ``code`` (public contract: clients switch on it).
Error details name the field, never its value: they end up in responses and logs.
Signature, signer and idempotency rules need the certificate and the database and live elsewhere.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from ezla.errors import (
    CancellationReasonMissing,
    CodeInvalid,
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
    PayerPeselInvalid,
    PeselInvalid,
    RegonInvalid,
    SubmissionTooLate,
)
from ezla.identifiers import nip_valid, npwz_valid, pesel_birth_date, pesel_valid, regon_valid
from ezla.xades import SigningTimePolicy

if TYPE_CHECKING:
    from ezla.document.model import Cancellation, SickLeave

# --------------------------------------------------------------------------------------------
# Document rules
# --------------------------------------------------------------------------------------------

BACKDATING_DAYS: Final = 3
SUBMISSION_DELAY_DAYS: Final = 3
WARSAW: Final = ZoneInfo("Europe/Warsaw")
# SigningTime may be at most 5 minutes ahead of receipt and no older than the submission delay.
SUBMISSION_POLICY: Final = SigningTimePolicy(max_delay_days=SUBMISSION_DELAY_DAYS, zone=WARSAW)


def local_date(now: datetime) -> date:
    """Business dates are Polish calendar dates."""
    return now.astimezone(WARSAW).date()


MAX_DAYS: Final = 182
MAX_DAYS_LONG: Final = 270  # with code B (pregnancy) or D (tuberculosis)
CODES: Final = frozenset("ABCDE")


def _check_identifiers(s: SickLeave) -> None:
    if not npwz_valid(s.doctor.npwz):
        raise NpwzInvalid(field="Doctor/Npwz")
    if not regon_valid(s.clinic.regon):
        raise RegonInvalid(field="Clinic/Regon")
    if not pesel_valid(s.patient.pesel):
        raise PeselInvalid(field="Patient/Pesel")
    if s.payer.nip is not None and not nip_valid(s.payer.nip):
        raise NipInvalid(field="Payer/Nip")
    if s.payer.pesel is not None and not pesel_valid(s.payer.pesel):
        raise PayerPeselInvalid(field="Payer/Pesel")
    f = s.family_member_care
    if f is not None and f.pesel is not None and not pesel_valid(f.pesel):
        raise FamilyMemberPeselInvalid(field="FamilyMemberCare/Pesel")


def _check_dates(s: SickLeave, received: date) -> None:
    if s.issue_date > received:
        raise IssueDateInFuture(field="IssueDate")
    if received - s.issue_date > timedelta(days=SUBMISSION_DELAY_DAYS):
        raise SubmissionTooLate(field="IssueDate")


def _check_period(s: SickLeave) -> None:
    inc = s.incapacity
    if inc.end < inc.start:
        raise IncapacityPeriodReversed(field="Incapacity")
    limit = MAX_DAYS_LONG if {"B", "D"} & set(s.codes) else MAX_DAYS
    if inc.days > limit:
        raise IncapacityTooLong(f"One e-ZLA covers at most {limit} days", field="Incapacity", limit=limit)
    if not inc.psychiatric and inc.start < s.issue_date - timedelta(days=BACKDATING_DAYS):
        raise IncapacityBackdated(field="Incapacity/From")
    h = inc.hospital
    if h is not None:
        if h.end < h.start:
            raise HospitalPeriodReversed(field="Incapacity/Hospital")
        if h.start < inc.start or h.end > inc.end:
            raise HospitalOutsidePeriod(field="Incapacity/Hospital")


def _check_family_care(s: SickLeave) -> None:
    f = s.family_member_care
    if f is None:
        return
    # Born after the examination cannot be cared for on this e-ZLA (a PESEL of the 2100s, say).
    birth = f.birth_date if f.birth_date is not None else pesel_birth_date(f.pesel or "")
    if birth > s.issue_date:
        field = "FamilyMemberCare/BirthDate" if f.birth_date is not None else "FamilyMemberCare/Pesel"
        raise FamilyMemberBirthDateInvalid(field=field)
    if f.relationship in (2, 3, 4) and not f.shares_household:
        raise FamilyCareHouseholdMissing(field="FamilyMemberCare/SharesHousehold")


def check_sick_leave(s: SickLeave, *, today: date, received_at: date | None = None) -> None:
    """Raise the error of the first broken rule, in this order: identifiers (document order), issue
    and submission dates, letter codes, period, family-member care.

    ``today`` is the service's current date in Poland; ``received_at`` the date ezla received the
    document, when that is not today (re-checking a stored e-ZLA). Both time checks, "issue date not
    in the future" and "sent at most 3 days after issue", are measured against the receipt date.
    """
    received = received_at if received_at is not None else today
    _check_identifiers(s)
    _check_dates(s, received)
    if len(set(s.codes)) != len(s.codes) or not set(s.codes) <= CODES:
        raise CodeInvalid(field="Codes")
    _check_period(s)
    _check_family_care(s)


def check_cancellation(c: Cancellation) -> None:
    """The rules a cancellation can break on its own; who may cancel, and whether the e-ZLA is
    still active, need the stored e-ZLA and are checked by the service."""
    if not npwz_valid(c.npwz):
        raise NpwzInvalid(field="Doctor/Npwz")
    if not c.reason.strip():
        raise CancellationReasonMissing(field="Reason")

"""Business rules of an e-ZLA (domain.md "Rules ezla enforces"), as pure functions.

Each rule has its own error class with a stable ``code`` (public contract: clients switch on it).
Error details name the field, never its value: they end up in responses and logs.
Signature, signer and idempotency rules need the certificate and the database and live elsewhere.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

from ezla.errors import Unprocessable

if TYPE_CHECKING:
    from ezla.issuance.document import Cancellation, SickLeave

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RuleViolation(Unprocessable):
    """Base of every business-rule error (422), so callers can catch them together."""

    code, title = "rule-violation", "The document breaks a business rule"


class NpwzInvalid(RuleViolation):
    code, title = "npwz-invalid", "The doctor's NPWZ has a wrong check digit"


class RegonInvalid(RuleViolation):
    code, title = "regon-invalid", "The clinic's REGON has a wrong check digit"


class PeselInvalid(RuleViolation):
    code, title = "pesel-invalid", "The patient's PESEL has a wrong check digit or date of birth"


class NipInvalid(RuleViolation):
    code, title = "nip-invalid", "The payer's NIP has a wrong check digit"


class PayerPeselInvalid(RuleViolation):
    code, title = "payer-pesel-invalid", "The payer's PESEL has a wrong check digit or date of birth"


class FamilyMemberPeselInvalid(RuleViolation):
    code, title = (
        "family-member-pesel-invalid",
        "The family member's PESEL has a wrong check digit or date of birth",
    )


class FamilyMemberBirthDateInvalid(RuleViolation):
    code, title = (
        "family-member-birth-date-invalid",
        "The family member's date of birth is after the date of issue",
    )


class IssueDateInFuture(RuleViolation):
    code, title = "issue-date-in-future", "The date of issue is in the future"


class SubmissionTooLate(RuleViolation):
    code, title = "submission-too-late", "The e-ZLA must reach ezla at most 3 days after its date of issue"


class CodeInvalid(RuleViolation):
    code, title = "code-invalid", "Letter codes must be distinct letters A to E"


class IncapacityPeriodReversed(RuleViolation):
    code, title = "incapacity-period-reversed", "The incapacity ends before it starts"


class IncapacityTooLong(RuleViolation):
    code, title = "incapacity-too-long", "One e-ZLA covers at most 182 days (270 with code B or D)"


class IncapacityBackdated(RuleViolation):
    code, title = (
        "incapacity-backdated",
        "The incapacity may start at most 3 days before the date of issue (unless psychiatric)",
    )


class HospitalPeriodReversed(RuleViolation):
    code, title = "hospital-period-reversed", "The hospital stay ends before it starts"


class HospitalOutsidePeriod(RuleViolation):
    code, title = "hospital-outside-period", "The hospital stay must lie inside the period of incapacity"


class FamilyCareHouseholdMissing(RuleViolation):
    code, title = (
        "family-care-household-missing",
        "Care of a spouse, parent or other household member requires a shared household",
    )


class CancellationReasonMissing(RuleViolation):
    code, title = "cancellation-reason-missing", "A cancellation must give a reason"


# --------------------------------------------------------------------------------------------
# Identifier check digits
# --------------------------------------------------------------------------------------------

# [0-9], not \d: \d also matches non-ASCII digits, which int() would happily read.
_DIGITS = {n: re.compile(f"[0-9]{{{n}}}") for n in (7, 9, 10, 11, 14)}

_PESEL_W: Final = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_NIP_W: Final = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_REGON9_W: Final = (8, 9, 2, 3, 4, 5, 6, 7)
_REGON14_W: Final = (2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8)
# PESEL month offset -> century
_CENTURY: Final = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}


def _digits(s: object, n: int) -> list[int] | None:
    if not isinstance(s, str) or not _DIGITS[n].fullmatch(s):
        return None
    return [int(c) for c in s]


def _weighted(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights, strict=False))


def _pesel_check(d: list[int]) -> int:
    return (10 - _weighted(d, _PESEL_W) % 10) % 10


def pesel_birth_date(s: str) -> date:
    """The date of birth a PESEL encodes (the month carries the century).

    Raises ValueError if ``s`` is not 11 digits or the date does not exist; does not look at the
    check digit (``pesel_valid`` does both).
    """
    d = _digits(s, 11)
    if d is None:
        raise ValueError("not a PESEL")
    yy, mm, dd = d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5]
    offset = (mm // 20) * 20
    century = _CENTURY.get(offset)
    if century is None:  # unreachable with two digits, kept for clarity
        raise ValueError("not a PESEL")
    return date(century + yy, mm - offset, dd)  # ValueError for a month 13 or a 30th February


def pesel_valid(s: str) -> bool:
    """11 ASCII digits, a correct check digit and an existing date of birth."""
    d = _digits(s, 11)
    if d is None or _pesel_check(d) != d[10]:
        return False
    try:
        pesel_birth_date(s)
    except ValueError:
        return False
    return True


def pesel_is_female(s: str) -> bool:
    """The sex digit (10th) is even for women."""
    return int(s[9]) % 2 == 0


def nip_valid(s: str) -> bool:
    """10 digits; weights 6,5,7,2,3,4,5,6,7, sum mod 11 is the check; 10 means no valid NIP."""
    d = _digits(s, 10)
    if d is None:
        return False
    check = _weighted(d, _NIP_W) % 11
    return check != 10 and check == d[9]


def _regon_check(d: list[int], weights: tuple[int, ...]) -> int:
    return _weighted(d, weights) % 11 % 10  # 10 -> 0


def regon_valid(s: str) -> bool:
    """REGON of 9 or 14 digits with a correct check digit.

    As domain.md says, a 14-digit REGON is checked on its own; its first 9 digits (the parent
    unit's REGON) are not checked separately.
    """
    if (d := _digits(s, 9)) is not None:
        return _regon_check(d, _REGON9_W) == d[8]
    if (d := _digits(s, 14)) is not None:
        return _regon_check(d, _REGON14_W) == d[13]
    return False


def _npwz_check(tail: list[int]) -> int:
    return sum(d * w for d, w in zip(tail, range(1, 7), strict=True)) % 11


def npwz_valid(s: str) -> bool:
    """7 digits; the first is the check = (digits 2-7 weighted 1..6) mod 11 and is never 0."""
    d = _digits(s, 7)
    if d is None or d[0] == 0:
        return False
    return _npwz_check(d[1:]) == d[0]


# --- generators (tests, demo, SDK examples) ------------------------------------------------


def make_pesel(birth: date, serial: int, female: bool) -> str:
    """A valid PESEL for ``birth`` (years 1800-2299); ``serial`` 0..4999 picks one of the 5000
    numbers available per date and sex."""
    if not 0 <= serial < 5000:
        raise ValueError("serial must be in 0..4999")
    offset = next((o for o, c in _CENTURY.items() if c <= birth.year < c + 100), None)
    if offset is None:
        raise ValueError("PESEL covers the years 1800-2299")
    ordinal = serial * 2 + (0 if female else 1)  # 4 digits, the last one the sex
    body = f"{birth.year % 100:02d}{birth.month + offset:02d}{birth.day:02d}{ordinal:04d}"
    return body + str(_pesel_check([int(c) for c in body]))


def make_nip(prefix9: str) -> str | None:
    """The valid NIP starting with these 9 digits, or None if no check digit fits (sum mod 11 = 10)."""
    d = _digits(prefix9, 9)
    if d is None:
        raise ValueError("prefix9 must be 9 digits")
    check = _weighted(d, _NIP_W) % 11
    return None if check == 10 else prefix9 + str(check)


def make_regon9(prefix8: str) -> str:
    """The valid 9-digit REGON starting with these 8 digits."""
    if not isinstance(prefix8, str) or not re.fullmatch(r"[0-9]{8}", prefix8):
        raise ValueError("prefix8 must be 8 digits")
    return prefix8 + str(_regon_check([int(c) for c in prefix8], _REGON9_W))


def make_regon14(prefix13: str) -> str:
    """The valid 14-digit REGON starting with these 13 digits."""
    if not isinstance(prefix13, str) or not re.fullmatch(r"[0-9]{13}", prefix13):
        raise ValueError("prefix13 must be 13 digits")
    return prefix13 + str(_regon_check([int(c) for c in prefix13], _REGON14_W))


def make_npwz(tail6: str) -> str | None:
    """The valid NPWZ ending with these 6 digits, or None when the check would be 0 or 10."""
    if not isinstance(tail6, str) or not re.fullmatch(r"[0-9]{6}", tail6):
        raise ValueError("tail6 must be 6 digits")
    check = _npwz_check([int(c) for c in tail6])
    return None if check in (0, 10) else str(check) + tail6


# --------------------------------------------------------------------------------------------
# Document rules
# --------------------------------------------------------------------------------------------

BACKDATING_DAYS: Final = 3
SUBMISSION_DELAY_DAYS: Final = 3
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

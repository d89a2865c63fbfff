"""Warnings for a doctor: what is allowed but probably wrong. Pure functions; the patient's earlier
e-ZLA are read by the caller and passed in (``EarlierLeave``).

The "usual length" table is ours, a coarse guide per ICD-10 block drawn from common practice, not
a ZUS norm; a longer period is only ever a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from ezla.document import dictionaries
from ezla.document.model import SickLeave
from ezla.identifiers import pesel_birth_date, pesel_valid
from ezla.issuance.findings import Finding, warning
from ezla.issuance.rules import SUBMISSION_DELAY_DAYS

CODE_A_BREAK_DAYS: Final = 60
CHILD_CARE_AGE: Final = 14

# Days beyond which a period is unusual, by ICD-10 block.
USUAL_DAYS: Final = {
    "A00-A09": 10,  # intestinal infections
    "B00-B09": 21,  # viral skin and mucous infections
    "B25-B34": 14,  # other viral diseases
    "H65-H75": 14,  # middle ear
    "J00-J06": 10,  # acute upper respiratory infections
    "J09-J18": 21,  # influenza and pneumonia
    "J20-J22": 14,  # other acute lower respiratory infections
    "M40-M54": 30,  # dorsopathies
    "N30-N39": 10,  # urinary system
    "R50-R69": 14,  # general symptoms
    "U00-U49": 21,  # provisional codes (COVID-19)
}


@dataclass(frozen=True)
class EarlierLeave:
    """Another e-ZLA of the same patient that is not cancelled, as the rules need it."""

    series: str
    number: int
    start: date
    end: date
    icd10: str
    codes: tuple[str, ...]


def _category(icd10: str) -> str:
    return icd10.split(".", 1)[0]


def document_warnings(s: SickLeave, *, today: date) -> Iterator[Finding]:
    block = next((b for b in dictionaries.icd10_blocks(s.icd10) if b in USUAL_DAYS), None)
    usual = USUAL_DAYS[block] if block is not None else None
    if usual is not None and s.incapacity.days > usual:
        yield warning(
            "period-longer-than-usual",
            "/SickLeave/Incapacity",
            f"{s.incapacity.days} days; usual for ICD-10 block {block} is at most {usual}",
        )
    f = s.family_member_care
    if f is not None and f.relationship == 1 and not f.shares_household:
        birth = f.birth_date or (pesel_birth_date(f.pesel) if f.pesel and pesel_valid(f.pesel) else None)
        if birth is not None and _age(birth, s.incapacity.start) >= CHILD_CARE_AGE:
            yield warning("family-care-child-over-14", "/SickLeave/FamilyMemberCare/SharesHousehold")
    if s.issue_date + timedelta(days=SUBMISSION_DELAY_DAYS) == today:
        yield warning("submission-last-day", "/SickLeave/IssueDate")


def history_warnings(s: SickLeave, earlier: Sequence[EarlierLeave]) -> Iterator[Finding]:
    """Code A against the patient's earlier e-ZLA, and overlaps with them."""
    same_illness = [
        e
        for e in earlier
        if _category(e.icd10) == _category(s.icd10) and 1 <= (s.incapacity.start - e.end).days - 1 <= CODE_A_BREAK_DAYS
    ]
    if "A" in s.codes and not same_illness:
        yield warning("code-a-without-earlier-leave", "/SickLeave/Codes")
    if "A" not in s.codes and same_illness:
        last = max(same_illness, key=lambda e: e.end)
        yield warning(
            "code-a-missing",
            "/SickLeave/Codes",
            f"e-ZLA {last.series} {last.number:07d} with the same diagnosis ended {last.end.isoformat()}",
        )
    for e in earlier:
        if e.start <= s.incapacity.end and s.incapacity.start <= e.end:
            yield warning(
                "overlaps-active-leave",
                "/SickLeave/Incapacity",
                f"overlaps e-ZLA {e.series} {e.number:07d} ({e.start.isoformat()} to {e.end.isoformat()})",
            )


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))

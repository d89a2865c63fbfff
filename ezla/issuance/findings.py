"""What a check found in a document: errors (it would be refused) and warnings (a doctor should
look again), each with a stable code, the XPath of the element and a message.

Errors are the rule classes of ``ezla.errors`` (their code is the refusal's code); warnings have
no exception class, only a code in ``WARNINGS`` with its Polish and English descriptions (the
rules catalogue, ``GET /v1/rules``, lists both kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import msgspec

from ezla.errors import EzlaError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    severity: Severity
    path: str  # XPath of the element, the e-ZLA namespace as the default: /SickLeave/Patient/Pesel
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity.value, "path": self.path, "message": self.message}


def finding_of(exc: EzlaError, *, root: str = "SickLeave", path: str | None = None) -> Finding:
    """An error as a finding; ``field`` (``Patient/Pesel``) in the error names the element."""
    field = exc.extra.get("field")
    where = path or (f"/{root}/{field}" if field else f"/{root}")
    return Finding(code=exc.code, severity=Severity.ERROR, path=where, message=exc.detail)


@dataclass(frozen=True)
class WarningKind:
    code: str
    title_en: str
    title_pl: str


WARNINGS: Final = {
    w.code: w
    for w in (
        WarningKind(
            "code-a-without-earlier-leave",
            "Code A is claimed but ezla holds no leave with the same diagnosis that ended 1 to 60 days before",
            "Podano kod A, a w ezla nie ma zwolnienia z tym samym rozpoznaniem zakończonego od 1 do 60 dni wcześniej",
        ),
        WarningKind(
            "code-a-missing",
            "An earlier leave with the same diagnosis ended at most 60 days before: code A is probably due",
            "Wcześniejsze zwolnienie z tym samym rozpoznaniem zakończyło się najwyżej 60 dni wcześniej: "
            "prawdopodobnie należy podać kod A",
        ),
        WarningKind(
            "overlaps-active-leave",
            "The period overlaps another e-ZLA of this patient that is not cancelled",
            "Okres pokrywa się z innym, nieanulowanym e-ZLA tego pacjenta",
        ),
        WarningKind(
            "period-longer-than-usual",
            "The period is longer than usual for this group of diagnoses",
            "Okres jest dłuższy niż zwykle przy tej grupie rozpoznań",
        ),
        WarningKind(
            "family-care-child-over-14",
            "Care allowance for a child of 14 or more needs a shared household",
            "Zasiłek opiekuńczy na dziecko w wieku 14 lat i więcej wymaga wspólnego gospodarstwa domowego",
        ),
        WarningKind(
            "submission-last-day",
            "Today is the last day this e-ZLA can be sent",
            "Dziś jest ostatni dzień na przesłanie tego e-ZLA",
        ),
        WarningKind(
            "payer-not-registered",
            "The patient's payers are registered, and this one does not insure them on the first day",
            "Płatnicy pacjenta są zgłoszeni, a ten nie ubezpiecza go w pierwszym dniu niezdolności",
        ),
        WarningKind(
            "document-id-used",
            "This DocumentId was already submitted: sending it answers with the earlier e-ZLA or a conflict",
            "Ten DocumentId został już przesłany: wysłanie zwróci wcześniejsze e-ZLA albo konflikt",
        ),
    )
}


def warning(code: str, path: str, message: str | None = None) -> Finding:
    kind = WARNINGS[code]
    return Finding(code=code, severity=Severity.WARNING, path=path, message=message or kind.title_en)

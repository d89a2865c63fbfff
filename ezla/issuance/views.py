"""Who sees what of an e-ZLA (domain.md "Who sees what"), as JSON-ready data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ezla.document.model import SickLeave, as_builtins
from ezla.identifiers import pesel_birth_date


def full_view(s: SickLeave) -> dict[str, Any]:
    """What the patient, the issuing doctor and the registry see: the whole e-ZLA, diagnosis included.

    Same shape as the storage form; series, number and status are added by the caller, which owns
    them (they are assigned on acceptance, not written by the clinic).
    """
    return as_builtins(s)


def employer_view(s: SickLeave) -> dict[str, Any]:
    """What the payer sees (domain.md "Who sees what"): never anything that reveals the diagnosis.

    Left out: the ICD-10 code; the ``psychiatric`` flag and the backdating justification (they say
    what kind of illness this is);
    the patient's residence address as such (the table gives the payer the *stay* address, which is
    the residence when no other is given); the cared-for family member's PESEL (its birth date
    stays, since the age of a child decides the care allowance).
    """
    full = as_builtins(s)
    del full["icd10"]
    del full["incapacity"]["psychiatric"]
    del full["incapacity"]["backdating_justification"]  # a psychiatrist's reasons
    full["patient"] = {
        "pesel": s.patient.pesel,
        "passport": as_builtins(s.patient.passport) if s.patient.passport is not None else None,
        "given_name": s.patient.given_name,
        "family_name": s.patient.family_name,
        "stay_address": as_builtins(s.patient.effective_stay_address),
    }
    f = s.family_member_care
    if f is not None:
        birth = f.birth_date
        if birth is None and f.pesel is not None:
            try:
                birth = pesel_birth_date(f.pesel)
            except ValueError:
                birth = None
        full["family_member_care"] = {
            "birth_date": birth.isoformat() if birth is not None else None,
            "relationship": f.relationship,
            "shares_household": f.shares_household,
        }
    return full


@dataclass(frozen=True)
class EzlaView:
    id: str
    series: str
    number: int
    status: str
    doctor_npwz: str
    patient_pesel: str  # the patient's key: a PESEL, or a passport's (document.model.passport_key)
    payer_key: str
    accepted_at: datetime
    cancelled_at: datetime | None
    cancellation_reason: str | None
    sick_leave: SickLeave
    signed_xml: bytes
    receipt_xml: bytes
    cancellation_xml: bytes | None

    def header(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "series": self.series,
            "number": f"{self.number:07d}",
            "status": self.status,
            "accepted_at": self.accepted_at.isoformat(),
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "cancellation_reason": self.cancellation_reason,
        }

    def full(self) -> dict[str, Any]:
        """Patient, issuing doctor, operator and registry: everything, diagnosis included."""
        return {**self.header(), "document": full_view(self.sick_leave)}

    def for_employer(self) -> dict[str, Any]:
        """domain.md "Who sees what": never the ICD-10 code (nor the reason, which may reveal it)."""
        head = self.header()
        head.pop("cancellation_reason")
        return {**head, "document": employer_view(self.sick_leave)}

"""Corrections (domain.md: "a corrected e-ZLA is a new one, the old one is cancelled"): a SickLeave
naming the e-ZLA it replaces (``Replaces``) is accepted as a new e-ZLA, and the replaced one is
cancelled with reason "correction" in the same transaction, so no reader ever sees both valid or
neither. Only the issuing doctor may correct, only for the same patient, only an e-ZLA still valid.

The doctor's signature over the new document (which names the old one) is the evidence of the
cancellation: recipients, the registry among them, get it in place of a signed Cancellation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezla.document.model import SickLeave
from ezla.errors import AlreadyCancelled, CorrectionPatientMismatch, ReplacedEzlaNotFound, SignerNotDoctor
from ezla.events import EzlaStatus
from ezla.issuance.models import SickLeaveRecord

REASON: Final = "correction"


def check(session: Session, s: SickLeave) -> str:
    """The id of the e-ZLA ``s`` replaces, if ``s`` may replace it (read; nothing locked)."""
    assert s.replaces is not None
    replaced = session.scalar(
        select(SickLeaveRecord).where(
            SickLeaveRecord.series == s.replaces.series, SickLeaveRecord.number == int(s.replaces.number)
        )
    )
    if replaced is None:
        raise ReplacedEzlaNotFound(field="Replaces")
    if replaced.doctor_npwz != s.doctor.npwz:
        raise SignerNotDoctor("only the doctor who issued an e-ZLA may correct it", field="Replaces")
    if replaced.patient_pesel != s.patient.key:
        raise CorrectionPatientMismatch(field="Replaces")
    if replaced.status == EzlaStatus.CANCELLED:
        raise AlreadyCancelled("the e-ZLA named in Replaces is already cancelled", field="Replaces")
    return replaced.id


def cancel_replaced(session: Session, replaced_id: str, *, now: datetime) -> SickLeaveRecord:
    """Cancel the replaced e-ZLA, under its row lock: a cancellation (or another correction) that
    got there first since ``check`` wins, and this correction is refused."""
    replaced = session.get(SickLeaveRecord, replaced_id, with_for_update=True)
    assert replaced is not None  # records are never deleted
    if replaced.status == EzlaStatus.CANCELLED:
        raise AlreadyCancelled("the e-ZLA named in Replaces is already cancelled", field="Replaces")
    replaced.status = EzlaStatus.CANCELLED
    replaced.cancelled_at = now.replace(microsecond=0)
    replaced.cancellation_reason = REASON
    return replaced

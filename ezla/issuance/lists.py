"""Lists clinic software shows a doctor (ZUS's ``PobierzListeBiezacychZlaLekarza`` and
``PobierzListePowiazanychZla``): the doctor's own e-ZLA, and the e-ZLA related to one of them.

A doctor's list is keyset-paged, newest first, by (accepted_at, id): the cursor is the last item's
pair, so pages stay stable while new e-ZLA arrive. Related e-ZLA are bounded (``MAX_RELATED``) and
say whether the diagnosis is the same without naming another doctor's diagnosis.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ezla.errors import BadRequest
from ezla.events import EzlaId, EzlaStatus
from ezla.issuance.advice import CODE_A_BREAK_DAYS
from ezla.issuance.models import SickLeaveRecord

MAX_PAGE: Final = 200
MAX_RELATED: Final = 50


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None  # None: this was the last page


def _summary(r: SickLeaveRecord) -> dict[str, Any]:
    data = json.loads(r.data_json)
    return {
        "id": r.id,
        "series": r.series,
        "number": f"{r.number:07d}",
        "status": r.status,
        "document_id": r.document_id,
        "issue_date": r.issue_date.isoformat(),
        "incapacity": {"from": r.incapacity_from.isoformat(), "to": r.incapacity_to.isoformat()},
        "patient": {k: data["patient"][k] for k in ("pesel", "given_name", "family_name")},
        "codes": data.get("codes", []),
        "icd10": data["icd10"],
        "accepted_at": r.accepted_at.isoformat(),
        "cancelled_at": r.cancelled_at.isoformat() if r.cancelled_at else None,
    }


def _encode_cursor(r: SickLeaveRecord) -> str:
    return base64.urlsafe_b64encode(f"{r.accepted_at.isoformat()}|{r.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, ezla_id = raw.split("|", 1)
        return datetime.fromisoformat(at), ezla_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("after: not a cursor this service gave out") from None


def doctor_ezla(
    session: Session,
    npwz: str,
    *,
    status: EzlaStatus | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    number: tuple[str, int] | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """The doctor's e-ZLA, newest first; ``issued_from``/``issued_to`` bound the date of issue
    (both days included)."""
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE}")
    query = select(SickLeaveRecord).where(SickLeaveRecord.doctor_npwz == npwz)
    if status is not None:
        query = query.where(SickLeaveRecord.status == status)
    if issued_from is not None:
        query = query.where(SickLeaveRecord.issue_date >= issued_from)
    if issued_to is not None:
        query = query.where(SickLeaveRecord.issue_date <= issued_to)
    if number is not None:  # the number printed on the paper: find its id to cancel or correct it
        query = query.where(SickLeaveRecord.series == number[0], SickLeaveRecord.number == number[1])
    if after is not None:
        at, ezla_id = _decode_cursor(after)
        query = query.where(
            or_(
                SickLeaveRecord.accepted_at < at,
                and_(SickLeaveRecord.accepted_at == at, SickLeaveRecord.id < ezla_id),
            )
        )
    rows = session.scalars(
        query.order_by(SickLeaveRecord.accepted_at.desc(), SickLeaveRecord.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    return Page([_summary(r) for r in page], _encode_cursor(page[-1]) if len(rows) > limit else None)


def related(session: Session, record_id: EzlaId) -> list[dict[str, Any]]:
    """The same patient's other e-ZLA that continue this one or lie within 60 days of it, either
    side, oldest first: what code A and the benefit period are judged on."""
    r = session.get(SickLeaveRecord, record_id)
    assert r is not None  # the caller read it already (and checked who may see it)
    category = json.loads(r.data_json)["icd10"].split(".", 1)[0]
    margin = timedelta(days=CODE_A_BREAK_DAYS + 1)
    rows = session.scalars(
        select(SickLeaveRecord)
        .where(
            SickLeaveRecord.patient_pesel == r.patient_pesel,
            SickLeaveRecord.id != r.id,
            SickLeaveRecord.incapacity_to >= r.incapacity_from - margin,
            SickLeaveRecord.incapacity_from <= r.incapacity_to + margin,
        )
        .order_by(SickLeaveRecord.incapacity_from, SickLeaveRecord.id)
        .limit(MAX_RELATED)
    ).all()
    items = []
    for o in rows:
        data = json.loads(o.data_json)
        if o.incapacity_to < r.incapacity_from:
            gap = (r.incapacity_from - o.incapacity_to).days - 1
        elif o.incapacity_from > r.incapacity_to:
            gap = (o.incapacity_from - r.incapacity_to).days - 1
        else:
            gap = -1  # overlapping
        items.append(
            {
                "id": o.id,
                "series": o.series,
                "number": f"{o.number:07d}",
                "status": o.status,
                "incapacity": {"from": o.incapacity_from.isoformat(), "to": o.incapacity_to.isoformat()},
                "codes": data.get("codes", []),
                # Another doctor's diagnosis is not ours to show; whether it is the same illness is.
                "same_diagnosis": data["icd10"].split(".", 1)[0] == category,
                "relation": "overlapping" if gap < 0 else "continuous" if gap == 0 else "within-60-days",
                "days_between": max(gap, 0),
            }
        )
    return items

"""The inboxes as people read them (the web pages): one line per e-ZLA in its latest state,
filtered and paged on the server. The API's ``service.employer_inbox`` stays an event log that
integrators poll with a cursor; a payroll clerk wants the e-ZLA themselves, newest first."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import JSON, ColumnElement, Select, String, and_, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ezla.distribution.models import EmployerInboxItem, PatientInboxItem
from ezla.errors import BadRequest

PAGE = 25
EXPORT_CAP = 50_000  # one CSV export; a payer with more narrows the period
STATUSES = ("issued", "cancelled")


@dataclass(frozen=True)
class InboxFilter:
    """What the employer page can narrow to. Dates compare as ISO strings, as stored."""

    status: str | None = None
    pesel: str | None = None
    period_from: date | None = None
    period_to: date | None = None
    unacknowledged: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise BadRequest("status must be issued or cancelled", field="status")
        if self.pesel is not None and not re.fullmatch(r"[0-9]{11}", self.pesel):
            raise BadRequest("pesel must be 11 digits", field="pesel")
        if self.period_from and self.period_to and self.period_from > self.period_to:
            raise BadRequest("the period ends before it starts", field="period_to")


@dataclass(frozen=True)
class InboxLine:
    ezla_id: str
    event: str
    acknowledged: bool
    delivered_at: Any
    ezla: dict[str, Any]


@dataclass(frozen=True)
class InboxPage:
    lines: list[InboxLine]
    next_before: int | None  # keyset: the next page has latest events older than this id
    unacknowledged: int = field(default=0)


def _json_text(session: Session, column: Any, *path: str) -> ColumnElement[str]:
    """A JSON text value stored in a Text column, in both engines (PostgreSQL needs a cast to jsonb,
    SQLite reads JSON text as is)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(column, JSONB)[path].astext  # type: ignore[no-any-return]
    return type_coerce(column, JSON)[path].as_string()  # type: ignore[no-any-return]


def _latest(session: Session, payer_key: str, flt: InboxFilter) -> Select[Any]:
    last = (
        select(func.max(EmployerInboxItem.id).label("id"))
        .where(EmployerInboxItem.payer_key == payer_key)
        .group_by(EmployerInboxItem.ezla_id)
        .subquery()
    )
    stmt = select(EmployerInboxItem).join(last, EmployerInboxItem.id == last.c.id)
    conditions: list[ColumnElement[bool]] = []
    if flt.status is not None:
        conditions.append(EmployerInboxItem.event == flt.status)
    if flt.unacknowledged:
        conditions.append(EmployerInboxItem.acked_at.is_(None))
    payload = EmployerInboxItem.payload
    if flt.pesel is not None:
        conditions.append(_json_text(session, payload, "document", "patient", "pesel") == flt.pesel)
    if flt.period_from is not None:  # the leave ends on or after the period's first day
        end = _json_text(session, payload, "document", "incapacity", "to")
        conditions.append(cast(end, String) >= flt.period_from.isoformat())
    if flt.period_to is not None:
        start = _json_text(session, payload, "document", "incapacity", "from")
        conditions.append(cast(start, String) <= flt.period_to.isoformat())
    return stmt.where(and_(*conditions)) if conditions else stmt


def _line(row: EmployerInboxItem) -> InboxLine:
    return InboxLine(row.ezla_id, row.event, row.acked_at is not None, row.created_at, json.loads(row.payload))


def employer_page(
    session: Session, payer_key: str, flt: InboxFilter, *, before: int | None = None, size: int = PAGE
) -> InboxPage:
    """Newest first by the e-ZLA's latest event; ``before`` continues from the previous page."""
    stmt = _latest(session, payer_key, flt).order_by(EmployerInboxItem.id.desc()).limit(size + 1)
    if before is not None:
        stmt = stmt.where(EmployerInboxItem.id < before)
    rows = session.scalars(stmt).all()
    more = len(rows) > size
    rows = rows[:size]
    unacked = session.scalar(
        select(func.count(func.distinct(EmployerInboxItem.ezla_id))).where(
            EmployerInboxItem.payer_key == payer_key, EmployerInboxItem.acked_at.is_(None)
        )
    )
    return InboxPage([_line(r) for r in rows], rows[-1].id if more else None, int(unacked or 0))


def employer_export(session: Session, payer_key: str, flt: InboxFilter) -> list[InboxLine]:
    """Everything the filter matches, oldest first (payroll reads in order), at most EXPORT_CAP."""
    stmt = _latest(session, payer_key, flt).order_by(EmployerInboxItem.id).limit(EXPORT_CAP + 1)
    rows = session.scalars(stmt).all()
    if len(rows) > EXPORT_CAP:
        raise BadRequest(f"more than {EXPORT_CAP} e-ZLA match: narrow the period", field="period_from")
    return [_line(r) for r in rows]


def employer_line(session: Session, payer_key: str, ezla_id: str) -> InboxLine | None:
    row = session.scalars(
        select(EmployerInboxItem)
        .where(EmployerInboxItem.payer_key == payer_key, EmployerInboxItem.ezla_id == ezla_id)
        .order_by(EmployerInboxItem.id.desc())
        .limit(1)
    ).first()
    return _line(row) if row is not None else None


def patient_lines(session: Session, patient_key: str) -> list[InboxLine]:
    """The patient's e-ZLA in their latest state, the current and latest leave first."""
    latest: dict[str, PatientInboxItem] = {}
    for r in session.scalars(
        select(PatientInboxItem).where(PatientInboxItem.pesel == patient_key).order_by(PatientInboxItem.id)
    ):
        latest[r.ezla_id] = r
    lines = [InboxLine(r.ezla_id, r.event, False, r.created_at, json.loads(r.payload)) for r in latest.values()]

    def order(line: InboxLine) -> tuple[str, str]:
        period = line.ezla.get("document", {}).get("incapacity", {})
        return (str(period.get("from", "")), str(line.ezla.get("accepted_at", "")))

    return sorted(lines, key=order, reverse=True)

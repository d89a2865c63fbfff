"""Number pools for offline work (ZUS's ``RezerwujSeriaNumerZla`` and its alternative mode): a
doctor reserves numbers while online, writes one on each paper e-ZLA issued while the clinic is
offline, and sends the electronic copy within the submission delay; it is accepted under the
reserved number.

Reserved numbers come from the one counter every e-ZLA number comes from, so they are unique
across nodes and never reused; one that expires unused is a gap. A reservation is claimed by a
conditional UPDATE in the transaction that stores the e-ZLA, so two documents carrying the same
number cannot both be accepted, on either node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ezla.business_time import local_date
from ezla.document.model import ReservedNumber
from ezla.errors import BadRequest, ReservedNumberExpired, ReservedNumberUnknown, ReservedNumberUsed
from ezla.issuance import numbering
from ezla.issuance.models import NumberReservation

MAX_COUNT: Final = 100
MAX_OUTSTANDING: Final = 500  # per doctor: a pool, not a way to burn through the series


@dataclass(frozen=True)
class Reservation:
    series: str
    number: int
    reserved_at: datetime
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "number": f"{self.number:07d}",
            "reserved_at": self.reserved_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _of(r: NumberReservation) -> Reservation:
    return Reservation(r.series, r.number, r.reserved_at, r.expires_at)


def _unused(npwz: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        NumberReservation.doctor_npwz == npwz,
        NumberReservation.used_at.is_(None),
        NumberReservation.expires_at > now,
    )


def outstanding(session: Session, npwz: str, *, now: datetime) -> list[Reservation]:
    """The doctor's reserved numbers not yet used and not expired, oldest first."""
    rows = session.scalars(
        select(NumberReservation)
        .where(*_unused(npwz, now))
        .order_by(NumberReservation.reserved_at, NumberReservation.series, NumberReservation.number)
        .limit(MAX_OUTSTANDING)
    ).all()
    return [_of(r) for r in rows]


def reserve(session: Session, npwz: str, count: int, *, now: datetime, ttl: timedelta) -> list[Reservation]:
    if not 1 <= count <= MAX_COUNT:
        raise BadRequest(f"count must be 1 to {MAX_COUNT}")
    unused = session.scalar(select(func.count()).select_from(NumberReservation).where(*_unused(npwz, now)))
    if (unused or 0) + count > MAX_OUTSTANDING:
        raise BadRequest(f"at most {MAX_OUTSTANDING} unused reserved numbers per doctor; use or let some expire")
    at = now.replace(microsecond=0)
    made = []
    for _ in range(count):
        series, number = numbering.next_number(session)
        row = NumberReservation(series=series, number=number, doctor_npwz=npwz, reserved_at=at, expires_at=at + ttl)
        session.add(row)
        made.append(_of(row))
    session.flush()
    return made


def check(session: Session, reserved: ReservedNumber, *, npwz: str, issue_date: date) -> tuple[str, int]:
    """The reserved number a document carries, if the doctor may use it for this date of issue.

    The paper copy was written on the date of issue: the reservation must have existed and not yet
    expired then (the submission delay, a business rule, bounds how late it may arrive)."""
    number = int(reserved.number)
    row = session.get(NumberReservation, (reserved.series, number))
    if row is None or row.doctor_npwz != npwz:
        raise ReservedNumberUnknown(field="Series")
    if row.used_at is not None:
        raise ReservedNumberUsed(field="Number")
    if not local_date(row.reserved_at) <= issue_date <= local_date(row.expires_at):
        raise ReservedNumberExpired(field="Number")
    return row.series, row.number


def claim(session: Session, series: str, number: int, ezla_id: str, *, now: datetime) -> None:
    """Mark the reservation used, exactly once across nodes (the loser gets ReservedNumberUsed)."""
    result = session.execute(
        update(NumberReservation)
        .where(
            NumberReservation.series == series,
            NumberReservation.number == number,
            NumberReservation.used_at.is_(None),
        )
        .values(used_at=now, ezla_id=ezla_id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ReservedNumberUsed(field="Number")

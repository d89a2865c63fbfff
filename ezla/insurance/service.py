"""Payers report whom they insure and the family members their insured report; doctors look up
what issuing an e-ZLA needs, and nothing more: a payer's NIP and name; a family member's names,
date of birth and relationship. Every look-up is audited (the doctor, the purpose, a pseudonym of
the PESEL: the audit trail carries no personal data).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

import msgspec
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from ezla.audit import service as audit
from ezla.errors import BadRequest, NotFound
from ezla.identifiers import pesel_birth_date, pesel_valid
from ezla.insurance.models import Employment, FamilyMember

MAX_FAMILY: Final = 20


class Purpose(StrEnum):
    """Why a doctor looks someone up: recorded with every look-up."""

    ISSUING = "issuing"  # filling in an e-ZLA
    CORRECTION = "correction"  # correcting one
    FAMILY_CARE = "family-care"  # checking the person cared for


class EmploymentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    payer_name: str
    valid_from: date = msgspec.field(name="from")
    valid_to: date | None = msgspec.field(name="to", default=None)


class FamilyMemberIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    given_name: str
    family_name: str
    relationship: int
    birth_date: date | None = None
    pesel: str | None = None


class FamilyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    members: list[FamilyMemberIn]


def _check_pesel(pesel: str, what: str) -> None:
    if not pesel_valid(pesel):
        raise BadRequest(f"{what}: not a valid PESEL", field=what)


def _name(value: str, what: str, limit: int) -> str:
    value = " ".join(value.split())
    if not 1 <= len(value) <= limit:
        raise BadRequest(f"{what}: 1 to {limit} characters", field=what)
    return value


def set_employment(
    session: Session, payer_key: str, pesel: str, data: EmploymentIn, *, now: datetime
) -> dict[str, Any]:
    _check_pesel(pesel, "pesel")
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise BadRequest("to is before from", field="to")
    name = _name(data.payer_name, "payer_name", 250)
    row = session.scalar(select(Employment).where(Employment.payer_key == payer_key, Employment.pesel == pesel))
    created = row is None
    if row is None:
        row = Employment(payer_key=payer_key, pesel=pesel, payer_name=name, valid_from=data.valid_from, updated_at=now)
        session.add(row)
    row.payer_name, row.valid_from, row.valid_to, row.updated_at = name, data.valid_from, data.valid_to, now
    session.flush()
    audit.record(session, "employment_reported", payer_key, {"created": created}, now=now)
    return {
        "pesel": pesel,
        "from": row.valid_from.isoformat(),
        "to": row.valid_to.isoformat() if row.valid_to else None,
        "created": created,
    }


def end_employment(session: Session, payer_key: str, pesel: str, *, now: datetime) -> None:
    """The relation is gone (deregistration); with it the family this payer reported."""
    _check_pesel(pesel, "pesel")
    gone = session.execute(delete(Employment).where(Employment.payer_key == payer_key, Employment.pesel == pesel))
    if gone.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("this payer reported no such employee")
    session.execute(
        delete(FamilyMember).where(FamilyMember.payer_key == payer_key, FamilyMember.insured_pesel == pesel)
    )
    audit.record(session, "employment_removed", payer_key, {}, now=now)


def set_family(session: Session, payer_key: str, pesel: str, data: FamilyIn, *, now: datetime) -> int:
    """Replace the family members reported for ``pesel`` through this payer (idempotent)."""
    _check_pesel(pesel, "pesel")
    if (
        session.scalar(select(Employment.id).where(Employment.payer_key == payer_key, Employment.pesel == pesel))
        is None
    ):
        raise NotFound("report the employee first (PUT /v1/employer/employees/{pesel})")
    if len(data.members) > MAX_FAMILY:
        raise BadRequest(f"at most {MAX_FAMILY} family members", field="members")
    rows = []
    for i, m in enumerate(data.members):
        where = f"members[{i}]"
        if m.relationship not in (1, 2, 3, 4):
            raise BadRequest(f"{where}.relationship: 1 child, 2 spouse, 3 parent, 4 other household member")
        if m.pesel is not None:
            _check_pesel(m.pesel, f"{where}.pesel")
        birth = m.birth_date or (pesel_birth_date(m.pesel) if m.pesel else None)
        if birth is None:
            raise BadRequest(f"{where}: give a PESEL or a date of birth")
        rows.append(
            FamilyMember(
                payer_key=payer_key,
                insured_pesel=pesel,
                given_name=_name(m.given_name, f"{where}.given_name", 100),
                family_name=_name(m.family_name, f"{where}.family_name", 100),
                birth_date=birth,
                pesel=m.pesel,
                relationship=m.relationship,
                updated_at=now,
            )
        )
    session.execute(
        delete(FamilyMember).where(FamilyMember.payer_key == payer_key, FamilyMember.insured_pesel == pesel)
    )
    session.add_all(rows)
    session.flush()
    audit.record(session, "family_reported", payer_key, {"members": len(rows)}, now=now)
    return len(rows)


@dataclass(frozen=True)
class Payer:
    nip: str
    name: str
    valid_from: date
    valid_to: date | None

    def as_json(self) -> dict[str, Any]:
        return {
            "nip": self.nip,
            "name": self.name,
            "from": self.valid_from.isoformat(),
            "to": self.valid_to.isoformat() if self.valid_to else None,
        }


def pseudonym(pesel: str) -> str:
    """What the audit trail records instead of a PESEL: an auditor asked about a person computes
    the same digest and finds every look-up of them."""
    return "pesel-sha256:" + hashlib.sha256(pesel.encode()).hexdigest()[:32]


def _audit_lookup(
    session: Session, kind: str, pesel: str, npwz: str, purpose: Purpose, found: int, now: datetime
) -> None:
    audit.record(
        session, f"lookup_{kind}", pseudonym(pesel), {"npwz": npwz, "purpose": purpose.value, "found": found}, now=now
    )


def payers_of(session: Session, pesel: str, *, on: date, npwz: str, purpose: Purpose, now: datetime) -> list[Payer]:
    """The payers insuring ``pesel`` on ``on`` (the first day of incapacity, usually)."""
    _check_pesel(pesel, "pesel")
    rows = session.scalars(
        select(Employment)
        .where(
            Employment.pesel == pesel,
            Employment.valid_from <= on,
            or_(Employment.valid_to.is_(None), Employment.valid_to >= on),
        )
        .order_by(Employment.valid_from)
    ).all()
    payers = [Payer(r.payer_key.removeprefix("nip:"), r.payer_name, r.valid_from, r.valid_to) for r in rows]
    _audit_lookup(session, "payers", pesel, npwz, purpose, len(payers), now)
    return payers


def family_of(session: Session, pesel: str, *, npwz: str, purpose: Purpose, now: datetime) -> list[dict[str, Any]]:
    """The insured person's reported family: names, date of birth, relationship; never a PESEL."""
    _check_pesel(pesel, "pesel")
    rows = session.scalars(
        select(FamilyMember).where(FamilyMember.insured_pesel == pesel).order_by(FamilyMember.birth_date)
    ).all()
    seen: set[tuple[str, str, date]] = set()
    members = []
    for r in rows:  # reported through two payers: once
        key = (r.given_name, r.family_name, r.birth_date)
        if key in seen:
            continue
        seen.add(key)
        members.append(
            {
                "given_name": r.given_name,
                "family_name": r.family_name,
                "birth_date": r.birth_date.isoformat(),
                "relationship": r.relationship,
            }
        )
    _audit_lookup(session, "family", pesel, npwz, purpose, len(members), now)
    return members


def is_payer_of(session: Session, payer_key: str, pesel: str, *, on: date) -> bool | None:
    """Whether ``payer_key`` insures ``pesel`` on ``on``; None when nobody reported anything of
    ``pesel`` (no relation registry to judge by, e.g. before payers report)."""
    rows = session.execute(
        select(Employment.payer_key, Employment.valid_from, Employment.valid_to).where(Employment.pesel == pesel)
    ).all()
    if not rows:
        return None
    return any(k == payer_key and f <= on and (t is None or t >= on) for k, f, t in rows)

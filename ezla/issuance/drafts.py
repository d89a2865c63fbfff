"""Drafts: an unsigned SickLeave prepared for a doctor by the doctor or an authorised assistant,
validated on every save (the dry run's findings are kept with it). The doctor fetches it, signs it
in their own software and submits it as usual; the accepted e-ZLA marks the draft submitted.

Who sees a draft: the doctor it is for; the assistant who wrote it, while that doctor still
authorises them. Nobody else, and never another doctor's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ezla.auth.service import Principal, Role
from ezla.ca.keystore import OnlineKeys
from ezla.db import reading, transaction
from ezla.errors import BadRequest, Forbidden, NotFound
from ezla.issuance import assistants, validation
from ezla.issuance.models import Draft

Sessions = sessionmaker[Session]
MAX_LIST: Final = 200


@dataclass(frozen=True)
class DraftView:
    id: str
    doctor_npwz: str
    document_id: str | None
    created_by: int
    valid: bool
    findings: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    submitted_ezla_id: str | None
    xml: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doctor_npwz": self.doctor_npwz,
            "document_id": self.document_id,
            "created_by": self.created_by,
            "valid": self.valid,
            "findings": self.findings,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "submitted_ezla_id": self.submitted_ezla_id,
        }


def _of(d: Draft) -> DraftView:
    return DraftView(
        d.id,
        d.doctor_npwz,
        d.document_id,
        d.created_by,
        d.valid,
        json.loads(d.findings_json),
        d.created_at,
        d.updated_at,
        d.submitted_ezla_id,
        d.xml,
    )


def _for_whom(session: Session, who: Principal, doctor: str | None) -> str:
    """The doctor a draft is written for: the caller, or for an assistant the doctor named."""
    if who.role is Role.DOCTOR:
        if doctor not in (None, who.npwz):
            raise Forbidden("a doctor writes drafts for themselves")
        return who.npwz or ""
    if not doctor:
        raise BadRequest("an assistant names the doctor the draft is for (?doctor=NPWZ)")
    if doctor not in assistants.doctors_of(session, who.account_id):
        raise Forbidden("this doctor has not authorised you")
    return doctor


def _judge(sessions: Sessions, keys: OnlineKeys, xml: bytes, doctor: str, *, now: datetime) -> validation.Validation:
    result = validation.validate(sessions, keys, xml, now=now, npwz=doctor)
    if result.kind != "SickLeave":
        raise BadRequest(
            "a draft is a SickLeave (well-formed XML in the e-ZLA namespace)", findings=result.as_json()["findings"]
        )
    if result.signed:
        raise BadRequest("a draft is unsigned: the doctor signs it when submitting")
    return result


def save(
    sessions: Sessions, keys: OnlineKeys, who: Principal, xml: bytes, *, doctor: str | None, now: datetime
) -> DraftView:
    with reading(sessions) as session:
        npwz = _for_whom(session, who, doctor)
    result = _judge(sessions, keys, xml, npwz, now=now)  # CPU and reads: no transaction held
    row = Draft(
        id=str(uuid.uuid4()),
        doctor_npwz=npwz,
        document_id=result.document_id,
        created_by=who.account_id,
        xml=xml,
        valid=result.valid,
        findings_json=json.dumps(result.as_json()["findings"], ensure_ascii=False),
        created_at=now,
        updated_at=now,
    )
    with transaction(sessions) as session:
        _for_whom(session, who, doctor)  # an authorisation revoked meanwhile counts
        session.add(row)
        session.flush()
        return _of(row)


def _visible(session: Session, who: Principal, draft_id: str, *, lock: bool = False) -> Draft:
    row = session.get(Draft, draft_id, with_for_update=lock) if _is_uuid(draft_id) else None
    if row is None:
        raise NotFound("no such draft")
    if who.role is Role.DOCTOR and row.doctor_npwz == who.npwz:
        return row
    if (
        who.role is Role.ASSISTANT
        and row.created_by == who.account_id
        and row.doctor_npwz in assistants.doctors_of(session, who.account_id)
    ):
        return row
    raise Forbidden("not your draft")


def get(sessions: Sessions, who: Principal, draft_id: str) -> DraftView:
    with reading(sessions) as session:
        return _of(_visible(session, who, draft_id))


def update(
    sessions: Sessions, keys: OnlineKeys, who: Principal, draft_id: str, xml: bytes, *, now: datetime
) -> DraftView:
    current = get(sessions, who, draft_id)
    if current.submitted_ezla_id is not None:
        raise BadRequest("this draft was submitted; start a new one (or a correction)")
    result = _judge(sessions, keys, xml, current.doctor_npwz, now=now)
    with transaction(sessions) as session:
        row = _visible(session, who, draft_id, lock=True)
        row.xml, row.valid, row.updated_at = xml, result.valid, now
        row.findings_json = json.dumps(result.as_json()["findings"], ensure_ascii=False)
        row.document_id = result.document_id
        return _of(row)


def delete(sessions: Sessions, who: Principal, draft_id: str) -> None:
    with transaction(sessions) as session:
        session.delete(_visible(session, who, draft_id, lock=True))


def listing(sessions: Sessions, who: Principal) -> list[DraftView]:
    with reading(sessions) as session:
        query = select(Draft).order_by(Draft.updated_at.desc()).limit(MAX_LIST)
        if who.role is Role.DOCTOR:
            query = query.where(Draft.doctor_npwz == who.npwz)
        else:
            doctors = assistants.doctors_of(session, who.account_id)
            query = query.where(Draft.created_by == who.account_id, Draft.doctor_npwz.in_(doctors or {""}))
        return [_of(r) for r in session.scalars(query)]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

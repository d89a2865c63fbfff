"""Registry ingest and queries. Ingest stores only verified evidence (evidence.py); it is
idempotent and monotonic: a cancellation is never undone by a late-arriving 'issued' delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezla.document.model import as_builtins
from ezla.errors import BadRequest, EvidenceMismatch, EzlaError, NotFound
from ezla.events import EzlaId, EzlaStatus
from ezla.registry.evidence import Evidence
from ezla.registry.models import IngestLog, RegistryRecord


@dataclass(frozen=True)
class Ingested:
    ezla_id: EzlaId
    status: str
    created: bool
    duplicate: bool


MAX_KEY = 128  # IngestLog.idempotency_key


def _check_envelope(event: str, key: str) -> None:
    if event not in set(EzlaStatus) or not key or len(key) > MAX_KEY:
        raise BadRequest("event must be issued or cancelled, with an idempotency_key")


@dataclass(frozen=True)
class Item:
    ezla_id: EzlaId
    event: str
    key: str
    evidence: Evidence


def ingest_many(session: Session, items: list[Item], *, now: datetime) -> list[Ingested | EzlaError]:
    """``ingest`` for a batch with two reads and one flush instead of a round trip per statement:
    the known keys and the existing records (locked) are read up front, every item is judged
    before anything of it is written, and a refused item writes nothing. A record a concurrent
    batch inserts meanwhile surfaces as IntegrityError at the flush; the caller then falls back
    to ``ingest`` item by item."""
    seen = set(
        session.scalars(select(IngestLog.idempotency_key).where(IngestLog.idempotency_key.in_({i.key for i in items})))
    )
    records = {
        r.ezla_id: r
        for r in session.scalars(
            select(RegistryRecord).where(RegistryRecord.ezla_id.in_({i.ezla_id for i in items})).with_for_update()
        )
    }
    out: list[Ingested | EzlaError] = []
    for item in items:
        try:
            _check_envelope(item.event, item.key)
            record = records.get(item.ezla_id)
            created = record is None
            if record is None:
                record = _new_record(item.ezla_id, item.evidence, now=now)
                session.add(record)
                records[item.ezla_id] = record
            elif record.document_id != item.evidence.sick_leave.document_id:
                raise EvidenceMismatch("this e-ZLA id holds another document")
        except EzlaError as exc:
            out.append(exc)
            continue
        _apply_cancellation(record, item.evidence, now=now)
        duplicate = item.key in seen
        seen.add(item.key)
        session.add(
            IngestLog(
                idempotency_key=item.key, ezla_id=item.ezla_id, event=item.event, duplicate=duplicate, received_at=now
            )
        )
        out.append(Ingested(item.ezla_id, record.status, created, duplicate))
    session.flush()
    return out


def _new_record(ezla_id: EzlaId, evidence: Evidence, *, now: datetime) -> RegistryRecord:
    s, r = evidence.sick_leave, evidence.receipt
    return RegistryRecord(
        ezla_id=ezla_id,
        document_id=s.document_id,
        series=r.series,
        number=r.number,
        status=EzlaStatus.ISSUED,
        patient_pesel=s.patient.key,
        payer_key=f"nip:{s.payer.nip}" if s.payer.nip else f"pesel:{s.payer.pesel}",
        doctor_npwz=s.doctor.npwz,
        document_json=json.dumps(as_builtins(s), ensure_ascii=False),
        signed_xml=evidence.signed_xml,
        evidence_xml=evidence.long_term_xml,
        cancellation_xml=None,
        accepted_at=r.accepted_at,
        cancelled_at=None,
        updated_at=now,
    )


def _apply_cancellation(record: RegistryRecord, evidence: Evidence, *, now: datetime) -> None:
    """Monotonic: a signed Cancellation cancels; a late 'issued' never undoes it. The long-term
    form is kept from whichever delivery brings it first (a cancellation may overtake it)."""
    if record.evidence_xml is None and evidence.long_term_xml is not None:
        record.evidence_xml = evidence.long_term_xml
    if evidence.cancellation is not None and record.status != EzlaStatus.CANCELLED:
        record.status = EzlaStatus.CANCELLED
        record.cancellation_xml = evidence.cancellation_xml
        record.cancelled_at = evidence.cancelled_at
        record.updated_at = now


def ingest(session: Session, ezla_id: EzlaId, event: str, key: str, evidence: Evidence, *, now: datetime) -> Ingested:
    """Store what ``evidence`` (verified, see evidence.py) says; ``event`` and ``key`` only log."""
    _check_envelope(event, key)
    duplicate = session.scalar(select(IngestLog.id).where(IngestLog.idempotency_key == key).limit(1)) is not None
    session.add(IngestLog(idempotency_key=key, ezla_id=ezla_id, event=event, duplicate=duplicate, received_at=now))
    record = session.get(RegistryRecord, ezla_id, with_for_update=True)
    created = record is None
    s = evidence.sick_leave
    if record is None:
        record = _new_record(ezla_id, evidence, now=now)
        try:
            with session.begin_nested():
                session.add(record)
        except IntegrityError:  # a concurrent PUT of the same e-ZLA won; apply ours on top of it
            record = session.get(RegistryRecord, ezla_id, with_for_update=True)
            created = False
            if record is None:
                raise BadRequest("this DocumentId is registered under another e-ZLA id") from None
    if record.document_id != s.document_id:
        raise EvidenceMismatch("this e-ZLA id holds another document")
    _apply_cancellation(record, evidence, now=now)
    return Ingested(ezla_id, record.status, created, duplicate)


def as_json(r: RegistryRecord) -> dict[str, Any]:
    return {
        "id": r.ezla_id,
        "document_id": r.document_id,
        "series": r.series,
        "number": r.number,
        "status": r.status,
        "accepted_at": r.accepted_at.isoformat(),
        "cancelled_at": r.cancelled_at.isoformat() if r.cancelled_at else None,
        "document": json.loads(r.document_json),
    }


def get(session: Session, ezla_id: EzlaId) -> RegistryRecord:
    record = session.get(RegistryRecord, ezla_id)
    if record is None:
        raise NotFound("no such e-ZLA in the registry")
    return record


def query(
    session: Session, *, pesel: str | None, nip: str | None, series: str | None, number: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    if not any((pesel, nip, series, number)):
        raise BadRequest("give at least one of pesel, nip, series, number")
    stmt = select(RegistryRecord).order_by(RegistryRecord.accepted_at.desc()).limit(min(max(limit, 1), 500))
    if pesel:
        stmt = stmt.where(RegistryRecord.patient_pesel == pesel)
    if nip:
        stmt = stmt.where(RegistryRecord.payer_key == f"nip:{nip}")
    if series:
        stmt = stmt.where(RegistryRecord.series == series.upper())
    if number:
        stmt = stmt.where(RegistryRecord.number == number.zfill(7))
    return [as_json(r) for r in session.scalars(stmt)]


def ingest_counts(session: Session) -> dict[str, int]:
    """How many PUTs arrived per idempotency key (tests: duplicates only ever share a key)."""
    counts: dict[str, int] = {}
    for (key,) in session.execute(select(IngestLog.idempotency_key)):
        counts[key] = counts.get(key, 0) + 1
    return counts

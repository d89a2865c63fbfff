"""Registry ingest and queries. Ingest is idempotent and monotonic: a cancellation is never undone
by a late-arriving 'issued' delivery."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezla.errors import BadRequest, NotFound
from ezla.events import EzlaId, EzlaStatus
from ezla.registry.models import IngestLog, RegistryRecord


@dataclass(frozen=True)
class Ingested:
    ezla_id: EzlaId
    status: str
    created: bool
    duplicate: bool


def _b64(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{name} must be base64") from exc


def _require(body: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if not body.get(n)]
    if missing:
        raise BadRequest(f"missing fields: {', '.join(missing)}")


def ingest(session: Session, ezla_id: EzlaId, body: dict[str, Any], *, now: datetime) -> Ingested:
    _require(
        body,
        "event",
        "idempotency_key",
        "series",
        "number",
        "status",
        "document",
        "signed_xml",
        "patient_pesel",
        "payer_key",
        "doctor_npwz",
        "accepted_at",
    )
    if body["event"] not in set(EzlaStatus) or body["status"] not in set(EzlaStatus):
        raise BadRequest("event and status must be issued or cancelled")
    key = str(body["idempotency_key"])
    duplicate = session.scalar(select(IngestLog.id).where(IngestLog.idempotency_key == key).limit(1)) is not None
    session.add(
        IngestLog(idempotency_key=key, ezla_id=ezla_id, event=body["event"], duplicate=duplicate, received_at=now)
    )
    record = session.get(RegistryRecord, ezla_id, with_for_update=True)
    cancelled = body["status"] == EzlaStatus.CANCELLED
    created = record is None
    if record is None:
        record = RegistryRecord(
            ezla_id=ezla_id,
            document_id=body["document"]["document_id"],
            series=body["series"],
            number=body["number"],
            status=body["status"],
            patient_pesel=body["patient_pesel"],
            payer_key=body["payer_key"],
            doctor_npwz=body["doctor_npwz"],
            document_json=json.dumps(body["document"], ensure_ascii=False),
            signed_xml=_b64(body["signed_xml"], "signed_xml") or b"",
            cancellation_xml=_b64(body.get("cancellation_xml"), "cancellation_xml"),
            accepted_at=datetime.fromisoformat(body["accepted_at"]),
            cancelled_at=datetime.fromisoformat(body["cancelled_at"]) if body.get("cancelled_at") else None,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(record)
        except IntegrityError:  # a concurrent PUT of the same e-ZLA won; apply ours on top of it
            record = session.get(RegistryRecord, ezla_id, with_for_update=True)
            created = False
            if record is None:
                raise
    if cancelled and record.status != EzlaStatus.CANCELLED:
        record.status = EzlaStatus.CANCELLED
        record.cancellation_xml = _b64(body.get("cancellation_xml"), "cancellation_xml")
        record.cancelled_at = datetime.fromisoformat(body["cancelled_at"]) if body.get("cancelled_at") else now
        record.updated_at = now
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

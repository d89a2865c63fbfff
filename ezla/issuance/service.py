"""Issuance: accept exactly the genuine, valid e-ZLA; number it; sign a receipt; cancel.

Order of checks in ``submit`` (cheapest first, nothing stored until all pass):
hardened parse -> XAdES over the whole document, chain pinned to our CA, SigningTime judged ->
schema of the *signed* bytes only -> signer is the named doctor (NPWZ and names) -> [read:
the CA's record of the certificate and its revocation, an earlier submission of this DocumentId]
-> business rules -> [a number, or the doctor's reserved one checked; a corrected e-ZLA checked]
-> receipt signed -> [reservation claimed + corrected e-ZLA cancelled + record + outbox rows,
one transaction].

CPU work never holds a transaction or a lock: verification, schema and the receipt's signature
run between the three short transactions in brackets. A number taken for a submission that then
loses a race to its twin is a gap, never a duplicate (numbering.py).
"""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ezla.audit import service as audit
from ezla.business_time import local_date
from ezla.ca import evidence
from ezla.ca import service as ca_service
from ezla.ca.keystore import OnlineKeys
from ezla.ca.profile import names_of, npwz_of
from ezla.ca.serials import to_hex
from ezla.db import reading, transaction
from ezla.distribution import outbox
from ezla.document import codec, schema
from ezla.document import model as document
from ezla.errors import (
    AlreadyCancelled,
    CancellationMismatch,
    CertificateUntrusted,
    DoctorNameMismatch,
    DocumentIdConflict,
    EzlaNotFound,
    Forbidden,
    ReservedNumberUsed,
    RuleViolation,
    SchemaInvalid,
    SignerNotDoctor,
    WrongNamespace,
)
from ezla.events import EzlaId, EzlaStatus
from ezla.issuance import corrections, numbering, reservations, rules, views
from ezla.issuance.models import Draft, SickLeaveRecord
from ezla.issuance.receipts import build_receipt
from ezla.xades import (
    DOCUMENT_SIGNING_EKU,
    Check,
    VerifiedSignature,
    check_revocation,
    refuse_with_report,
    signed_document_digest,
    verify_enveloped,
)
from ezla.xades.report import CheckResult, Outcome

Sessions = sessionmaker[Session]


@dataclass(frozen=True)
class Accepted:
    id: str
    series: str
    number: int
    status: str
    created: bool  # False when this is the idempotent repeat of an earlier submission

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "series": self.series, "number": f"{self.number:07d}", "status": self.status}


def verify_signed(keys: OnlineKeys, data: bytes, *, now: datetime) -> VerifiedSignature:
    """The XAdES check shared by submissions and cancellations: our CA only, SigningTime believable.
    Pure CPU, no database: the CA's record of the signer is judged by ``judge_signer``."""
    return verify_enveloped(
        data,
        trust_roots=[keys.root],
        intermediates=keys.intermediates,  # every issuing CA generation still verifies
        at=now,
        require_eku=DOCUMENT_SIGNING_EKU,
        policy=rules.SUBMISSION_POLICY,
        timestamp_trust=evidence.timestamp_trust(keys),
    )


def judge_signer(session: Session, verified: VerifiedSignature, *, now: datetime) -> VerifiedSignature:
    """Chained to our issuing key is necessary, but it must also be a certificate we recorded, and
    its revocation is read from the database on every call (either node may have recorded it)."""
    status = ca_service.signer_status(session, verified.signer)
    if status is None:
        raise refuse_with_report(verified, Check.CHAIN, CertificateUntrusted("not a certificate this CA issued"))
    return check_revocation(verified, status.revocation, received_at=now, policy=rules.SUBMISSION_POLICY)


def _same_name(a: str, b: str) -> bool:
    """Unicode NFC, case-insensitive, inner white space collapsed: "ŁUKASZ" is "Łukasz"."""

    def norm(v: str) -> str:
        return " ".join(unicodedata.normalize("NFC", v).casefold().split())

    return norm(a) == norm(b)


def check_doctor(verified: VerifiedSignature, doctor: document.Doctor) -> VerifiedSignature:
    """domain.md: the signer is the doctor named in the document: NPWZ, given and family names."""
    if npwz_of(verified.signer) != doctor.npwz:
        raise refuse_with_report(verified, Check.DOCTOR_IDENTITY, SignerNotDoctor())
    names = names_of(verified.signer)
    if names is None or not (_same_name(names[0], doctor.given_name) and _same_name(names[1], doctor.family_name)):
        err = DoctorNameMismatch("the doctor's given and family names must be those in the signer certificate")
        raise refuse_with_report(verified, Check.DOCTOR_IDENTITY, err)
    return replace(verified, report=verified.report.with_check(CheckResult(Check.DOCTOR_IDENTITY, Outcome.PASSED)))


def _existing(session: Session, document_id: str) -> SickLeaveRecord | None:
    return session.scalar(select(SickLeaveRecord).where(SickLeaveRecord.document_id == document_id))


def _repeat(record: SickLeaveRecord, digest: str, sick_leave: document.SickLeave) -> Accepted:
    """domain.md: same DocumentId and same content -> the first answer. Same content also covers a
    re-signed copy (new ECDSA signature or SigningTime over identical data from the same doctor)."""
    same_bytes = record.document_sha256 == digest
    # Compared as models, not JSON: a record stored before a field was added reads back with its default.
    same_content = record.doctor_npwz == sick_leave.doctor.npwz and (
        document.sick_leave_from_builtins(json.loads(record.data_json)) == sick_leave
    )
    if not (same_bytes or same_content):
        raise DocumentIdConflict()
    return Accepted(record.id, record.series, record.number, record.status, created=False)


def _signed_element(verified: VerifiedSignature, local_name: str) -> etree._Element:
    root = verified.signed_root
    if etree.QName(root).namespace != schema.NS:
        raise WrongNamespace(f"root element must be in namespace {schema.NS}")
    if etree.QName(root).localname != local_name:
        raise SchemaInvalid(f"root element must be {local_name}")
    return root


def submit(sessions: Sessions, keys: OnlineKeys, data: bytes, *, now: datetime, node_id: str) -> Accepted:
    digest = signed_document_digest(data)
    verified = verify_signed(keys, data, now=now)
    sick_leave = codec.parse_sick_leave(_signed_element(verified, "SickLeave"))
    verified = check_doctor(verified, sick_leave.doctor)
    # The rules are judged first (CPU) but reported after the repeat check: a repeat days later
    # must still answer 200. One transaction reads the signer's status and any earlier submission
    # and takes a number (a PostgreSQL sequence: no lock; on SQLite the write lock, briefly).
    try:
        rules.check_sick_leave(sick_leave, today=local_date(now), received_at=local_date(now))
        refused: RuleViolation | None = None
    except RuleViolation as exc:
        refused = exc
    with transaction(sessions) as session:
        verified = judge_signer(session, verified, now=now)
        existing = _existing(session, sick_leave.document_id)
        if existing is not None:
            return _repeat(existing, digest, sick_leave)
        if refused is not None:
            raise refused
        replaced_id = corrections.check(session, sick_leave) if sick_leave.replaces is not None else None
        reserved = sick_leave.reserved_number
        if reserved is not None:  # written on a paper copy while offline: accepted under that number
            series, number = reservations.check(
                session, reserved, npwz=sick_leave.doctor.npwz, issue_date=sick_leave.issue_date
            )
        else:
            series, number = numbering.next_number(session)
    accepted_at = now.replace(microsecond=0)
    receipt = build_receipt(
        series=series,
        number=number,
        document_id=sick_leave.document_id,
        document_sha256=digest,
        accepted_at=accepted_at,
        keys=keys,
        notices=verified.report.notes,
    )
    # XAdES-LT for the archive (the registry keeps it): our time-stamp over the doctor's signature,
    # the chain and the signer's OCSP status as judged above. CPU, so outside both transactions.
    long_term = evidence.long_term(data, verified.signer, verified.revocation, keys, now=now)
    record = SickLeaveRecord(
        id=str(uuid.uuid4()),
        document_id=sick_leave.document_id,
        series=series,
        number=number,
        status=EzlaStatus.ISSUED,
        doctor_npwz=sick_leave.doctor.npwz,
        patient_pesel=sick_leave.patient.key,
        payer_nip=sick_leave.payer.nip,
        payer_pesel=sick_leave.payer.pesel,
        issue_date=sick_leave.issue_date,
        incapacity_from=sick_leave.incapacity.start,
        incapacity_to=sick_leave.incapacity.end,
        signer_serial=to_hex(verified.signer.serial_number),
        document_sha256=digest,
        signed_xml=data,
        data_json=json.dumps(document.as_builtins(sick_leave), ensure_ascii=False),
        receipt_xml=receipt,
        accepted_at=accepted_at,
        accepted_by_node=node_id,
    )
    try:
        with transaction(sessions) as session:
            if reserved is not None:
                reservations.claim(session, series, number, record.id, now=now)
            replaced = corrections.cancel_replaced(session, replaced_id, now=now) if replaced_id else None
            session.add(record)
            session.flush()
            announcement = _announcement(_view(record, sick_leave), long_term=long_term)
            outbox.enqueue(session, EzlaId(record.id), EzlaStatus.ISSUED, announcement, now=now)
            _mark_drafts_submitted(session, record)
            if replaced is not None:
                cancelled = _announcement(_view(replaced), replacement=(data, receipt))
                outbox.enqueue(session, EzlaId(replaced.id), EzlaStatus.CANCELLED, cancelled, now=now)
                audit.record(
                    session, "ezla_corrected", replaced.id, {"by": record.id, "npwz": record.doctor_npwz}, now=now
                )
            audit.record(
                session,
                "ezla_accepted",
                record.id,
                {"series": series, "number": number, "npwz": record.doctor_npwz, "sha256": digest},
                now=now,
            )
    except (IntegrityError, ReservedNumberUsed, AlreadyCancelled):
        # A concurrent twin (other node, same DocumentId) committed first: answer as it did.
        with reading(sessions) as session:
            existing = _existing(session, sick_leave.document_id)
            if existing is None:
                raise
            return _repeat(existing, digest, sick_leave)
    return Accepted(record.id, series, number, EzlaStatus.ISSUED, created=True)


def _mark_drafts_submitted(session: Session, record: SickLeaveRecord) -> None:
    """The doctor's drafts of this document (drafts.py) now stand for an accepted e-ZLA."""
    session.execute(
        update(Draft)
        .where(
            Draft.document_id == record.document_id,
            Draft.doctor_npwz == record.doctor_npwz,
            Draft.submitted_ezla_id.is_(None),
        )
        .values(submitted_ezla_id=record.id)
    )


def cancel(sessions: Sessions, keys: OnlineKeys, ezla_id: EzlaId, data: bytes, *, now: datetime) -> Accepted:
    verified = verify_signed(keys, data, now=now)
    cancellation = codec.parse_cancellation(_signed_element(verified, "Cancellation"))
    with transaction(sessions) as session:
        return _cancel(session, verified, cancellation, ezla_id, data, now=now)


def _cancel(
    session: Session,
    verified: VerifiedSignature,
    cancellation: document.Cancellation,
    ezla_id: EzlaId,
    data: bytes,
    *,
    now: datetime,
) -> Accepted:
    digest = signed_document_digest(data)
    judge_signer(session, verified, now=now)
    record = session.get(SickLeaveRecord, ezla_id, with_for_update=True) if _is_uuid(ezla_id) else None
    if record is None:
        raise EzlaNotFound()
    if (cancellation.document_id, cancellation.series, int(cancellation.number)) != (
        record.document_id,
        record.series,
        record.number,
    ):
        raise CancellationMismatch()
    if npwz_of(verified.signer) != cancellation.npwz or cancellation.npwz != record.doctor_npwz:
        raise SignerNotDoctor("only the doctor who issued the e-ZLA may cancel it")
    rules.check_cancellation(cancellation)
    if record.status == EzlaStatus.CANCELLED:
        if record.cancellation_sha256 == digest:  # the same request again: same answer
            return Accepted(record.id, record.series, record.number, record.status, created=False)
        raise AlreadyCancelled()
    record.status = EzlaStatus.CANCELLED
    record.cancelled_at = now.replace(microsecond=0)
    record.cancellation_xml = data
    record.cancellation_sha256 = digest
    record.cancellation_reason = cancellation.reason
    outbox.enqueue(session, ezla_id, EzlaStatus.CANCELLED, _announcement(_view(record)), now=now)
    audit.record(session, "ezla_cancelled", record.id, {"npwz": record.doctor_npwz, "sha256": digest}, now=now)
    return Accepted(record.id, record.series, record.number, record.status, created=True)


def _announcement(
    view: views.EzlaView, *, replacement: tuple[bytes, bytes] | None = None, long_term: bytes | None = None
) -> outbox.Announcement:
    """The e-ZLA as it stands now, for each recipient; the registry also gets the signed originals
    (for a correction's cancellation: the replacing document and its receipt, as the evidence)
    and, when it is accepted, its XAdES-LT form to archive."""
    full = view.full()
    registry = {
        **full,
        "doctor_npwz": view.doctor_npwz,
        "patient_pesel": view.patient_pesel,
        "payer_key": view.payer_key,
        "signed_xml": base64.b64encode(view.signed_xml).decode(),
        "receipt_xml": base64.b64encode(view.receipt_xml).decode(),
        "cancellation_xml": base64.b64encode(view.cancellation_xml).decode() if view.cancellation_xml else None,
    }
    if long_term is not None:
        registry["evidence_xml"] = base64.b64encode(long_term).decode()
    if replacement is not None:
        registry["replacement_xml"] = base64.b64encode(replacement[0]).decode()
        registry["replacement_receipt_xml"] = base64.b64encode(replacement[1]).decode()
    return outbox.Announcement(view.payer_key, view.patient_pesel, view.for_employer(), full, registry)


def _view(record: SickLeaveRecord, sick_leave: document.SickLeave | None = None) -> views.EzlaView:
    return views.EzlaView(
        record.id,
        record.series,
        record.number,
        record.status,
        record.doctor_npwz,
        record.patient_pesel,
        outbox.payer_key(record.payer_nip, record.payer_pesel),
        record.accepted_at,
        record.cancelled_at,
        record.cancellation_reason,
        sick_leave or document.sick_leave_from_builtins(json.loads(record.data_json)),
        record.signed_xml,
        record.receipt_xml,
        record.cancellation_xml,
    )


def get_for_payer(session: Session, ezla_id: EzlaId, *, payer: str) -> views.EzlaView:
    """The e-ZLA if it names this payer (payer key as ``outbox.payer_key``); not found otherwise,
    so a payer cannot learn which ids exist."""
    view = get(session, ezla_id)
    if view.payer_key != payer:
        raise EzlaNotFound()
    return view


def get(session: Session, ezla_id: EzlaId) -> views.EzlaView:
    record = session.get(SickLeaveRecord, ezla_id) if _is_uuid(ezla_id) else None
    if record is None:
        raise EzlaNotFound()
    return _view(record)


def get_for_doctor_or_operator(session: Session, ezla_id: EzlaId, *, role: str, npwz: str | None) -> views.EzlaView:
    view = get(session, ezla_id)
    if role == "operator" or (role == "doctor" and npwz == view.doctor_npwz):
        return view
    # The same answer as a missing e-ZLA would leak existence; a 403 is honest and leaks no content.
    raise Forbidden("only the issuing doctor or an operator may read this e-ZLA")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

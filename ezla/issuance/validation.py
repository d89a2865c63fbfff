"""Dry-run validation (ZUS's ``WalidujDokumenty``): everything a submission or cancellation would
find, at once, and nothing stored.

A document may come signed or unsigned. Signed, the signature is verified exactly as on
submission and its report returned; if it fails, the content is still judged (marked as not
covered by a valid signature) so the doctor can fix both in one round. Unsigned, the calling
doctor stands in for the signer. Findings carry the XPath of the element, as ``findings.py``
describes; warnings (``advice.py``) need the patient's other e-ZLA and so a doctor's token.

CPU work (parse, signature, schema, rules) runs outside any transaction; one short read gathers
what the database knows.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ezla.business_time import local_date
from ezla.ca.keystore import OnlineKeys
from ezla.db import reading
from ezla.document import codec, schema
from ezla.document import model as document
from ezla.errors import (
    AlreadyCancelled,
    CancellationMismatch,
    EzlaError,
    EzlaNotFound,
    RuleViolation,
    SchemaInvalid,
    SignerNotDoctor,
    WrongNamespace,
)
from ezla.events import EzlaStatus
from ezla.insurance import service as insurance
from ezla.issuance import advice, corrections, reservations, rules
from ezla.issuance.findings import Finding, Severity, finding_of, warning
from ezla.issuance.models import SickLeaveRecord
from ezla.issuance.service import check_doctor, judge_signer, verify_signed
from ezla.xades import parse_xml

Sessions = sessionmaker[Session]
_DSIG = f"{{{schema.DSIG_NS}}}Signature"
MAX_HISTORY = 50  # the patient's other e-ZLA read for the warnings: bounded whatever the history


@dataclass(frozen=True)
class Validation:
    kind: str  # SickLeave, Cancellation, or "unknown" when the XML could not be read as either
    signed: bool
    findings: tuple[Finding, ...]
    report: dict[str, Any] | None  # the signature's validation report, for a signed document
    document_id: str | None = None  # the root's DocumentId attribute as written, lower case

    @property
    def valid(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "kind": self.kind,
            "signed": self.signed,
            "findings": [f.as_json() for f in self.findings],
            "report": self.report,
        }


def validate(sessions: Sessions, keys: OnlineKeys, data: bytes, *, now: datetime, npwz: str) -> Validation:
    """Judge ``data`` as the calling doctor (``npwz``) would have it judged on submission."""
    try:
        root = parse_xml(data)  # the same hardened parse and cost limits as a submission
    except EzlaError as exc:
        return Validation("unknown", False, (finding_of(exc, path="/"),), None)
    kind = etree.QName(root).localname
    if etree.QName(root).namespace != schema.NS or kind not in ("SickLeave", "Cancellation"):
        err = WrongNamespace(f"the root must be SickLeave or Cancellation in namespace {schema.NS}")
        return Validation("unknown", False, (finding_of(err, path="/"),), None)
    findings: list[Finding] = []
    document_id = (root.get("DocumentId") or "").lower() or None
    signed = root.find(_DSIG) is not None
    report: dict[str, Any] | None = None
    verified = None
    if signed:
        try:
            verified = verify_signed(keys, data, now=now)
            with reading(sessions) as session:
                verified = judge_signer(session, verified, now=now)
            root, report = verified.signed_root, verified.report.as_dict()
        except EzlaError as exc:
            findings.append(finding_of(exc, path=f"/{kind}/Signature"))
            report = exc.extra.get("report")
            root = _without_signature(root)
    found = schema.problems(root)
    if found:
        findings.extend(Finding(code=SchemaInvalid.code, severity=Severity.ERROR, path=p, message=m) for p, m in found)
        return Validation(kind, signed, tuple(findings), report, document_id)
    if kind == "SickLeave":
        sick_leave = codec.parse_sick_leave(root)
        if verified is not None:
            try:
                check_doctor(verified, sick_leave.doctor)
            except EzlaError as exc:
                findings.append(finding_of(exc, path="/SickLeave/Doctor"))
        elif sick_leave.doctor.npwz != npwz:
            findings.append(_not_you("SickLeave"))
        findings.extend(_sick_leave_findings(sessions, sick_leave, now=now))
    else:
        cancellation = codec.parse_cancellation(root)
        if verified is None and cancellation.npwz != npwz:
            findings.append(_not_you("Cancellation"))
        findings.extend(_cancellation_findings(sessions, cancellation))
    return Validation(kind, signed, tuple(findings), report, document_id)


def _not_you(kind: str) -> Finding:
    err = SignerNotDoctor("an unsigned document is judged as the calling doctor's: the NPWZ must be yours")
    return finding_of(err, path=f"/{kind}/Doctor/Npwz")


def _without_signature(root: etree._Element) -> etree._Element:
    """The content of a document whose signature failed, judged all the same (a dry run only)."""
    content = copy.deepcopy(root)
    for sig in content.findall(_DSIG):
        content.remove(sig)
    return content


def _sick_leave_findings(sessions: Sessions, s: document.SickLeave, *, now: datetime) -> list[Finding]:
    today = local_date(now)
    errors: list[RuleViolation] = rules.sick_leave_violations(s, received=today)
    found = [finding_of(e) for e in errors]
    found.extend(advice.document_warnings(s, today=today))
    with reading(sessions) as session:
        earlier = _earlier_leaves(session, s)
        used = session.scalar(select(SickLeaveRecord.id).where(SickLeaveRecord.document_id == s.document_id))
        if s.payer.nip is not None and s.patient.pesel is not None:
            insured = insurance.is_payer_of(session, f"nip:{s.payer.nip}", s.patient.pesel, on=s.incapacity.start)
            if insured is False:
                found.append(warning("payer-not-registered", "/SickLeave/Payer/Nip"))
        if s.replaces is not None and used is None:
            try:
                corrections.check(session, s)
            except EzlaError as exc:
                found.append(finding_of(exc))
        if s.reserved_number is not None and used is None:  # a repeat keeps its number
            try:
                reservations.check(session, s.reserved_number, npwz=s.doctor.npwz, issue_date=s.issue_date)
            except EzlaError as exc:
                found.append(finding_of(exc))
    found.extend(advice.history_warnings(s, earlier))
    if used is not None:
        found.append(warning("document-id-used", "/SickLeave/@DocumentId"))
    return found


def _earlier_leaves(session: Session, s: document.SickLeave) -> list[advice.EarlierLeave]:
    """The patient's e-ZLA (not cancelled) that end at most 61 days before this one starts or
    overlap it: what code A and the overlap warning look at."""
    window_start = s.incapacity.start - timedelta(days=advice.CODE_A_BREAK_DAYS + 1)
    rows = session.execute(
        select(
            SickLeaveRecord.series,
            SickLeaveRecord.number,
            SickLeaveRecord.incapacity_from,
            SickLeaveRecord.incapacity_to,
            SickLeaveRecord.data_json,
        )
        .where(
            SickLeaveRecord.patient_pesel == s.patient.key,
            SickLeaveRecord.status == EzlaStatus.ISSUED,
            SickLeaveRecord.document_id != s.document_id,
            SickLeaveRecord.incapacity_to >= window_start,
            SickLeaveRecord.incapacity_from <= s.incapacity.end,
        )
        .order_by(SickLeaveRecord.incapacity_to.desc())
        .limit(MAX_HISTORY)
    ).all()
    leaves = []
    replaced = (s.replaces.series, int(s.replaces.number)) if s.replaces is not None else None
    for series, number, start, end, data_json in rows:
        if (series, number) == replaced:  # a correction overlaps what it replaces, by design
            continue
        data = json.loads(data_json)
        leaves.append(advice.EarlierLeave(series, number, start, end, data["icd10"], tuple(data.get("codes", ()))))
    return leaves


def _cancellation_findings(sessions: Sessions, c: document.Cancellation) -> list[Finding]:
    found: list[Finding] = []
    try:
        rules.check_cancellation(c)
    except RuleViolation as exc:
        found.append(finding_of(exc, root="Cancellation"))
    with reading(sessions) as session:
        record = session.scalar(select(SickLeaveRecord).where(SickLeaveRecord.document_id == c.document_id))
        if record is None:
            found.append(finding_of(EzlaNotFound("no e-ZLA with this DocumentId"), path="/Cancellation/@DocumentId"))
            return found
        if (c.series, int(c.number)) != (record.series, record.number):
            found.append(finding_of(CancellationMismatch(), path="/Cancellation/Number"))
        if c.npwz != record.doctor_npwz:
            err = SignerNotDoctor("only the doctor who issued the e-ZLA may cancel it")
            found.append(finding_of(err, path="/Cancellation/Doctor/Npwz"))
        if record.status == EzlaStatus.CANCELLED:
            found.append(finding_of(AlreadyCancelled(), path="/Cancellation"))
    return found

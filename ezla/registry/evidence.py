"""What the registry believes of an ingest: only what is signed.

A node sends the e-ZLA as the doctor signed it, the receipt our service sealed, and for a
cancellation the doctor's signed Cancellation. Each is verified against the CA chain the registry
is configured with (``EZLA_PKI_DIR``'s published certificates, never the main database), and the
record is derived from the signed bytes alone: the receipt gives series, number and acceptance
time and pins the document by its digest; the e-ZLA gives patient, payer, doctor and content.
The JSON beside them is not read. This is CPU work; callers run it outside any transaction.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from lxml import etree

from ezla.document import codec, schema
from ezla.document.model import Cancellation, SickLeave
from ezla.errors import BadRequest, EvidenceMismatch, PkiNotInitialised
from ezla.files import read_certificate
from ezla.xades import (
    DOCUMENT_SIGNING_EKU,
    SigningTimePolicy,
    VerifiedSignature,
    signed_document_digest,
    verify_enveloped,
)
from ezla.xades.long_term import verify_long_term
from ezla.xades.unsigned import TimestampTrust

# Judged as at acceptance: the submission delay was enforced by the node, so it is not re-applied.
_AS_ACCEPTED = SigningTimePolicy(max_delay_days=None)


@dataclass(frozen=True)
class Trust:
    root: x509.Certificate
    issuing: tuple[x509.Certificate, ...]  # every issuing CA generation (issuing.pem, issuing-N.pem)
    service: x509.Certificate  # the receipt seal
    other_tsa_roots: tuple[x509.Certificate, ...] = ()  # pki/trust/tsa/*.pem, as the nodes trust them

    @property
    def timestamps(self) -> TimestampTrust:
        return TimestampTrust(roots=(self.root, *self.other_tsa_roots), intermediates=self.issuing)

    @classmethod
    def load(cls, published: Path) -> Trust:
        try:
            issuing = [read_certificate(published / "issuing.pem")]
            numbered = [p for p in published.glob("issuing-*.pem") if p.stem.removeprefix("issuing-").isdigit()]
            issuing += [read_certificate(p) for p in sorted(numbered, key=lambda p: int(p.stem[8:]))]
            return cls(
                read_certificate(published / "root.pem"), tuple(issuing), read_certificate(published / "service.pem")
            )
        except FileNotFoundError as exc:
            raise PkiNotInitialised() from exc


@dataclass(frozen=True)
class Receipt:
    series: str
    number: str
    document_id: str
    document_sha256: str
    accepted_at: datetime


@dataclass(frozen=True)
class Evidence:
    receipt: Receipt
    sick_leave: SickLeave
    signed_xml: bytes
    cancellation: Cancellation | None
    cancellation_xml: bytes | None
    cancelled_at: datetime | None  # the Cancellation's SigningTime
    long_term_xml: bytes | None = None  # the e-ZLA as XAdES-LT, checked against signed_xml


def _b64(body: dict[str, Any], field: str) -> bytes | None:
    value = body.get(field)
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{field} must be base64", field=field) from exc


def _required(body: dict[str, Any], field: str) -> bytes:
    value = _b64(body, field)
    if not value:
        raise BadRequest(f"{field} is required", field=field)
    return value


def _text(root: etree._Element, name: str) -> str:
    return str(root.findtext(f"{{{schema.NS}}}{name}") or "").strip()


def read_receipt(data: bytes, trust: Trust, *, now: datetime) -> Receipt:
    verified = verify_enveloped(
        data, trust_roots=[trust.root], intermediates=list(trust.issuing), at=now, timestamp_trust=trust.timestamps
    )
    if verified.signer != trust.service:
        raise EvidenceMismatch("the receipt is not sealed by this CA's service certificate")
    root = verified.signed_root
    if root.tag != f"{{{schema.NS}}}Receipt":
        raise EvidenceMismatch("receipt_xml is not a Receipt")
    schema.validate(root)
    return Receipt(
        series=_text(root, "Series"),
        number=_text(root, "Number"),
        document_id=_text(root, "DocumentId"),
        document_sha256=_text(root, "DocumentSha256"),
        accepted_at=datetime.fromisoformat(_text(root, "AcceptedAt")),
    )


def verify_sick_leave(signed_xml: bytes, trust: Trust, *, at: datetime) -> VerifiedSignature:
    """The doctor's signature over an e-ZLA, judged as at its acceptance (``at``)."""
    return verify_enveloped(
        signed_xml,
        trust_roots=[trust.root],
        intermediates=list(trust.issuing),
        at=at,
        require_eku=DOCUMENT_SIGNING_EKU,
        policy=_AS_ACCEPTED,
        timestamp_trust=trust.timestamps,
    )


def read(body: dict[str, Any], trust: Trust, *, now: datetime) -> Evidence:
    """Verify every signed part of an ingest body; the rest of the body is ignored."""
    receipt = read_receipt(_required(body, "receipt_xml"), trust, now=now)
    signed_xml = _required(body, "signed_xml")
    verified = verify_sick_leave(signed_xml, trust, at=receipt.accepted_at)
    if signed_document_digest(signed_xml) != receipt.document_sha256:
        raise EvidenceMismatch("the receipt is for another document")
    sick_leave = codec.parse_sick_leave(verified.signed_root)
    if sick_leave.document_id != receipt.document_id:
        raise EvidenceMismatch("the receipt names another DocumentId")

    cancelling = body.get("event") == "cancelled"
    if cancelling and body.get("replacement_xml") is not None:
        return _corrected(body, receipt, sick_leave, signed_xml, trust, now=now)
    cancellation_xml = _b64(body, "cancellation_xml") if cancelling else None
    if cancelling and not cancellation_xml:
        raise BadRequest("a cancellation needs cancellation_xml (or replacement_xml)", field="cancellation_xml")
    cancellation, cancelled_at = None, None
    if cancellation_xml:
        signed = verify_enveloped(
            cancellation_xml,
            trust_roots=[trust.root],
            intermediates=list(trust.issuing),
            at=now,
            require_eku=DOCUMENT_SIGNING_EKU,
            policy=_AS_ACCEPTED,
            timestamp_trust=trust.timestamps,
        )
        cancellation = codec.parse_cancellation(signed.signed_root)
        same = (cancellation.document_id, cancellation.series, cancellation.number) == (
            receipt.document_id,
            receipt.series,
            receipt.number,
        )
        if not same or cancellation.npwz != sick_leave.doctor.npwz:
            raise EvidenceMismatch("the cancellation is not by the issuing doctor for this e-ZLA")
        cancelled_at = signed.signing_time
    long_term = _b64(body, "evidence_xml")
    if long_term is not None:
        read_long_term(long_term, verified, trust, now=now)
    return Evidence(receipt, sick_leave, signed_xml, cancellation, cancellation_xml, cancelled_at, long_term)


def verify_long_term_form(long_term_xml: bytes, trust: Trust, *, at: datetime) -> VerifiedSignature:
    """The archived e-ZLA, from its own evidence alone (time-stamp, chain, OCSP status), at ``at``."""
    return verify_long_term(
        long_term_xml,
        trust_roots=[trust.root],
        intermediates=list(trust.issuing),
        timestamp_trust=trust.timestamps,
        at=at,
        require_eku=DOCUMENT_SIGNING_EKU,
    )


def read_long_term(long_term_xml: bytes, verified: VerifiedSignature, trust: Trust, *, now: datetime) -> None:
    """Only what verifies from its own evidence and is the same signature as ``signed_xml`` is kept."""
    archived = verify_long_term_form(long_term_xml, trust, at=now)
    same = etree.tostring(archived.signed_root, method="c14n") == etree.tostring(verified.signed_root, method="c14n")
    if archived.signer != verified.signer or not same:
        raise EvidenceMismatch("evidence_xml is not the signed e-ZLA it came with")


def _corrected(
    body: dict[str, Any], receipt: Receipt, sick_leave: SickLeave, signed_xml: bytes, trust: Trust, *, now: datetime
) -> Evidence:
    """A cancellation by correction: the doctor's signed replacement names this e-ZLA in
    ``Replaces``, and our receipt for it proves it was accepted (and when: the cancellation time)."""
    replacement_xml = _required(body, "replacement_xml")
    replacement_receipt = read_receipt(_required(body, "replacement_receipt_xml"), trust, now=now)
    if signed_document_digest(replacement_xml) != replacement_receipt.document_sha256:
        raise EvidenceMismatch("the replacement's receipt is for another document")
    verified = verify_sick_leave(replacement_xml, trust, at=replacement_receipt.accepted_at)
    replacement = codec.parse_sick_leave(verified.signed_root)
    replaces = replacement.replaces
    if (
        replaces is None
        or (replaces.series, replaces.number) != (receipt.series, receipt.number)
        or replacement.doctor.npwz != sick_leave.doctor.npwz
        or replacement.patient.key != sick_leave.patient.key
    ):
        raise EvidenceMismatch("the replacement does not correct this e-ZLA (number, doctor or patient)")
    cancellation = Cancellation(
        document_id=sick_leave.document_id,
        series=receipt.series,
        number=receipt.number,
        reason="correction",
        npwz=sick_leave.doctor.npwz,
    )
    return Evidence(receipt, sick_leave, signed_xml, cancellation, replacement_xml, replacement_receipt.accepted_at)

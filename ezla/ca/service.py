"""The CA's narrow interface: everything other packages, the HTTP layer and the CLI may call.

In the spirit of Boulder's CA/storage split, the CA is a handful of operations; each lives in the
module named after its job (``enrollment``, ``revocation``, ``login``, ``context``) and returns
domain objects (``Issued``, ``Revoked``, ``CrlRecord``, ``SignerStatus``), never ORM rows.
Most functions take the session, their inputs and the time and run inside the caller's
transaction; the ones that sign (enrollment, renewal, OCSP) take the sessionmaker instead and keep
their CPU work outside any transaction.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from ezla.ca import tsa
from ezla.ca.context import CaContext, register_pki_certificates
from ezla.ca.enrollment import (
    MAX_CODE_FAILURES,
    Issued,
    Registration,
    Requester,
    enroll_with_csr,
    enroll_with_pkcs12,
    new_activation_code,
    register_doctor,
    renew,
)
from ezla.ca.login import DoctorToken, log_in_doctor
from ezla.ca.records import DoctorRecord, DoctorSummary, get_certificate, list_doctors
from ezla.ca.records import doctor_record as _doctor_record
from ezla.ca.revocation import (
    CrlRecord,
    Revoked,
    SignerStatus,
    latest_crl,
    ocsp_response,
    publish_crl,
    publish_crls,
    revoke,
    signer_status,
)


def timestamp_reply(ctx: CaContext, query_der: bytes, *, now: datetime) -> bytes:
    """RFC 3161: our TSA's answer to a TimeStampReq (a rejection for anything it does not grant)."""
    keys = ctx.keys
    chain = (keys.generation_of(keys.tsa).issuing,)
    return tsa.respond(query_der, cert=keys.tsa, key=keys.tsa_key, chain=chain, now=now)


def doctor_record(session: Session, npwz: str) -> DoctorRecord:
    return _doctor_record(session, npwz, max_code_failures=MAX_CODE_FAILURES)


__all__ = [
    "CaContext",
    "CrlRecord",
    "DoctorRecord",
    "DoctorSummary",
    "DoctorToken",
    "Issued",
    "Registration",
    "Requester",
    "Revoked",
    "SignerStatus",
    "doctor_record",
    "enroll_with_csr",
    "enroll_with_pkcs12",
    "get_certificate",
    "latest_crl",
    "list_doctors",
    "log_in_doctor",
    "new_activation_code",
    "ocsp_response",
    "publish_crl",
    "publish_crls",
    "register_doctor",
    "register_pki_certificates",
    "renew",
    "revoke",
    "signer_status",
    "timestamp_reply",
]

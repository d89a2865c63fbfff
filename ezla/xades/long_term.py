"""Validating a signature long after the fact, from the evidence it carries (XAdES baseline LT).

The signature time-stamp proves the signature existed at its genTime; so the signature is
validated as if received then: the signer's path at that time, and the signer's status from the
OCSP response stored beside it (valid at genTime, signed by a responder the signer's CA
delegated). Nothing is fetched: a document verified in 2040 needs only the trust anchors.

``at`` is when the validation happens; it only has to come after the time-stamp. What expires
meanwhile (the doctor's certificate, the responder's, the TSA's) no longer matters once the
time-stamp proves the signature existed while they were valid. Guarding against the TSA's key
itself weakening in decades needs archive time-stamps (XAdES-A); not built yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from asn1crypto.keys import PublicKeyInfo
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ezla.errors import EvidenceMissing, RevocationEvidenceInvalid
from ezla.xades.report import Check
from ezla.xades.signing_time import Revocation, SigningTimePolicy
from ezla.xades.unsigned import TimestampTrust
from ezla.xades.verifier import VerifiedSignature, check_revocation, refuse_with_report, verify_enveloped

# Signed any time before its time-stamp: the submission delay was the acceptor's business.
ARCHIVAL = SigningTimePolicy(max_delay_days=None)
# How far an OCSP response's thisUpdate may lie after the time-stamp and still speak for it.
FRESHNESS = timedelta(hours=1)


def verify_long_term(
    data: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    timestamp_trust: TimestampTrust | None = None,
    at: datetime,
    require_eku: x509.ObjectIdentifier | None = None,
) -> VerifiedSignature:
    """Verify an XAdES-LT document at ``at`` from its own evidence; raises like ``verify_enveloped``
    (with the report), or ``EvidenceMissing`` when the document carries no time-stamp."""
    trust = timestamp_trust or TimestampTrust(roots=trust_roots, intermediates=intermediates)
    # One pass at ``at``: every time-stamp verified (genTime before ``at``), the path at the claimed
    # SigningTime, which a time-stamp bounds from above. Then the status as the stored OCSP
    # response gives it at the newest time-stamp (the service's, taken at acceptance with that
    # response); the oldest one is the proof of existence the result reports (``existed_at``).
    verified = verify_enveloped(
        data,
        trust_roots=trust_roots,
        intermediates=intermediates,
        at=at,
        timestamp_trust=trust,
        policy=ARCHIVAL,
        require_eku=require_eku,
        long_term=True,
    )
    if not verified.timestamps:
        missing = EvidenceMissing("no signature time-stamp: not an XAdES-T/LT document")
        raise refuse_with_report(verified, Check.TIMESTAMP, missing)
    received = verified.timestamps[-1].gen_time
    try:
        revocation = status_from_evidence(verified, intermediates, at=received)
    except RevocationEvidenceInvalid as exc:
        raise refuse_with_report(verified, Check.REVOCATION, exc) from None
    except Exception as exc:  # hostile evidence (a malformed certificate, an odd algorithm) is never a 500
        unreadable = RevocationEvidenceInvalid(f"the stored evidence cannot be read ({type(exc).__name__})")
        raise refuse_with_report(verified, Check.REVOCATION, unreadable) from None
    return check_revocation(verified, revocation, received_at=received, policy=ARCHIVAL)


def status_from_evidence(
    verified: VerifiedSignature, intermediates: Sequence[x509.Certificate], *, at: datetime
) -> Revocation | None:
    """The signer's revocation as the stored OCSP responses say it stood at ``at``: None if good."""
    signer = verified.signer
    issuers = [c for c in intermediates if c.subject == signer.issuer]
    extra = [x509.load_der_x509_certificate(der) for der in verified.evidence.certificates]
    for der in verified.evidence.ocsp_responses:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError:
            continue
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            continue
        for issuer in issuers:
            found = _judge(response, signer, issuer, [*response.certificates, *extra], at)
            if found is not None:
                return found[0]
    raise RevocationEvidenceInvalid("no OCSP response for the signer's certificate, valid at the time-stamp")


def _judge(
    response: ocsp.OCSPResponse,
    signer: x509.Certificate,
    issuer: x509.Certificate,
    candidates: list[x509.Certificate],
    at: datetime,
) -> tuple[Revocation | None] | None:
    """(status,) if ``response`` is a valid statement on ``signer`` at ``at``, else None."""
    if not any(_is_responder_for(c, issuer, response) for c in candidates):
        return None
    single = next((r for r in response.responses if r.serial_number == signer.serial_number), None)
    if (
        single is None
        or single.issuer_key_hash != _key_hash(issuer, single.hash_algorithm)
        or not at - FRESHNESS <= single.this_update_utc <= at + FRESHNESS
        or (single.next_update_utc is not None and single.next_update_utc < at)
    ):
        return None
    if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return (None,)
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED and single.revocation_time_utc is not None:
        reason = single.revocation_reason  # ReasonFlags values are RFC 5280's names ("superseded")
        return (Revocation(single.revocation_time_utc, reason.value if reason else None),)
    return None


def _is_delegated(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert == issuer:
        return True
    try:
        cert.verify_directly_issued_by(issuer)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _is_responder_for(cert: x509.Certificate, issuer: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    """RFC 6960 4.2.2.2: the CA itself, or a certificate it issued with id-kp-OCSPSigning, valid
    when the response was produced, whose key signed this response."""
    if not _is_delegated(cert, issuer):
        return False
    if not cert.not_valid_before_utc <= response.produced_at_utc <= cert.not_valid_after_utc:
        return False
    key, algorithm = cert.public_key(), response.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
            return True
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(response.signature, response.tbs_response_bytes, PKCS1v15(), algorithm)
            return True
    except InvalidSignature:
        pass
    return False


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 6960 CertID issuerKeyHash: the hash of the issuer's subjectPublicKey BIT STRING value."""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(algorithm)
    digest.update(PublicKeyInfo.load(spki)["public_key"].contents[1:])  # cryptography exposes no BIT STRING
    return digest.finalize()

"""RFC 6960 responses signed by the delegated responder; pure apart from the status lookup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto.keys import PublicKeyInfo  # cryptography exposes no subjectPublicKey BIT STRING
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ezla.ca.crl import REASONS
from ezla.ca.keystore import OnlineKeys
from ezla.ca.signer import sign_ocsp_response
from ezla.errors import OcspRequestMalformed

RESPONSE_VALIDITY = timedelta(hours=1)
MAX_NONCE = 32  # RFC 8954: a nonce is 1 to 32 octets; longer ones are refused, never echoed


def _malformed() -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
        serialization.Encoding.DER
    )


@dataclass(frozen=True)
class Status:
    """``good`` / ``revoked`` / ``unknown`` for one serial, with the certificate when we have it."""

    state: str
    certificate: x509.Certificate | None = None
    revoked_at: datetime | None = None
    reason: str | None = None


def parse_request(der: bytes) -> ocsp.OCSPRequest:
    try:
        return ocsp.load_der_ocsp_request(der)
    except Exception as exc:  # cryptography raises ValueError or others on junk or multi-cert requests
        raise OcspRequestMalformed(str(exc)[:200]) from exc


def _issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    key_hash = hashes.Hash(algorithm)
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    key_hash.update(PublicKeyInfo.load(spki)["public_key"].contents[1:])
    return name_hash.finalize(), key_hash.finalize()


def respond(req: ocsp.OCSPRequest, keys: OnlineKeys, lookup: Callable[[int], Status], *, now: datetime) -> bytes:
    try:  # cryptography parses these lazily: an unknown hash OID or a repeated extension raises here
        algorithm = req.hash_algorithm
        extensions = list(req.extensions)
    except Exception:
        return _malformed()
    if not isinstance(algorithm, hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        return _malformed()
    nonces = [ext.value for ext in extensions if isinstance(ext.value, x509.OCSPNonce)]
    if len(nonces) > 1 or any(not 1 <= len(n.nonce) <= MAX_NONCE for n in nonces):
        return _malformed()
    asked = (req.issuer_name_hash, req.issuer_key_hash)
    # Whichever of our issuing CAs (every generation since the first) the request names.
    gen = next((g for g in keys.all_generations if _issuer_hashes(g.issuing, algorithm) == asked), None)
    if gen is None:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
            serialization.Encoding.DER
        )
    status = lookup(req.serial_number)
    if status.certificate is not None and not gen.issued(status.certificate):
        status = Status("unknown")  # that serial is another CA's
    this_update = now.replace(microsecond=0)
    builder = ocsp.OCSPResponseBuilder()
    if status.state == "unknown" or status.certificate is None:
        builder = builder.add_response_by_hash(
            req.issuer_name_hash,
            req.issuer_key_hash,
            req.serial_number,
            req.hash_algorithm,
            ocsp.OCSPCertStatus.UNKNOWN,
            this_update,
            this_update + RESPONSE_VALIDITY,
            None,
            None,
        )
    else:
        builder = _add_known(builder, status, gen.issuing, req.hash_algorithm, this_update)
    for nonce in nonces:
        builder = builder.add_extension(nonce, critical=False)
    return sign_ocsp_response(builder, gen.ocsp, gen.ocsp_key)


def _add_known(
    builder: ocsp.OCSPResponseBuilder,
    status: Status,
    issuer: x509.Certificate,
    algorithm: hashes.HashAlgorithm,
    this_update: datetime,
) -> ocsp.OCSPResponseBuilder:
    assert status.certificate is not None
    revoked = status.state == "revoked"
    return builder.add_response(
        cert=status.certificate,
        issuer=issuer,
        algorithm=algorithm,
        cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
        this_update=this_update,
        next_update=this_update + RESPONSE_VALIDITY,
        revocation_time=status.revoked_at.replace(microsecond=0) if revoked and status.revoked_at else None,
        revocation_reason=REASONS[status.reason]
        if revoked and status.reason and status.reason != "unspecified"
        else None,
    )


def status_response(status: Status, keys: OnlineKeys, *, now: datetime) -> bytes:
    """An OCSP response for one certificate we issued, unasked: the revocation evidence stored
    with an accepted e-ZLA (XAdES-LT), signed and linted like any answer of the responder."""
    assert status.certificate is not None
    gen = keys.generation_of(status.certificate)
    builder = _add_known(ocsp.OCSPResponseBuilder(), status, gen.issuing, hashes.SHA256(), now.replace(microsecond=0))
    return sign_ocsp_response(builder, gen.ocsp, gen.ocsp_key)

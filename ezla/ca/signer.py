"""Every CA signature in Boulder's order: build, lint a copy signed with a throwaway key of the
same kind, (certificates: record intent through the caller's hook), sign with the real key,
compare the to-be-signed bytes. Certificates, CRLs and OCSP responses all go through here.

No database here: ``record_intent`` is a callback so the service decides where intent lives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ezla.ca.lint import lint_certificate, lint_crl, lint_ocsp_response
from ezla.errors import LintFailed


def hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


@cache
def _throwaway(kind: str, size: int) -> CertificateIssuerPrivateKeyTypes:
    # Same algorithm and size as the real issuer so the lint copy's TBS equals the real one.
    if kind == "ec":
        curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}[size]
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def throwaway_like(key: CertificateIssuerPrivateKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _throwaway("ec", key.curve.key_size)
    if isinstance(key, rsa.RSAPrivateKey):
        return _throwaway("rsa", key.key_size)
    raise TypeError("unsupported issuer key")


def issue(
    builder: x509.CertificateBuilder,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    doctor: bool,
    record_intent: Callable[[x509.Certificate], None] = lambda _: None,
) -> x509.Certificate:
    algorithm = hash_for(issuer_key)
    lint_copy = builder.sign(throwaway_like(issuer_key), algorithm)
    lint_certificate(lint_copy, doctor=doctor)
    record_intent(lint_copy)
    cert = builder.sign(issuer_key, algorithm)
    # RSA PKCS#1 v1.5 and our ECDSA keys sign the same TBS; a mismatch means the builder or
    # key misbehaved between lint and sign: refuse rather than issue something unlinted.
    if cert.tbs_certificate_bytes != lint_copy.tbs_certificate_bytes:
        raise LintFailed("TBS of the signed certificate differs from the linted copy")
    return cert


def sign_crl(builder: x509.CertificateRevocationListBuilder, issuer_key: CertificateIssuerPrivateKeyTypes) -> bytes:
    algorithm = hash_for(issuer_key)
    lint_copy = builder.sign(throwaway_like(issuer_key), algorithm)
    lint_crl(lint_copy)
    crl = builder.sign(issuer_key, algorithm)
    if crl.tbs_certlist_bytes != lint_copy.tbs_certlist_bytes:
        raise LintFailed("TBS of the signed CRL differs from the linted copy")
    return crl.public_bytes(Encoding.DER)


MAX_PRODUCED_AT_DRIFT = 60  # seconds between the lint copy's signature and the real one (pkilint runs between)


@cache
def _stand_in(responder: x509.Certificate, kind: str, size: int) -> x509.Certificate:
    """A certificate for the throwaway key with the responder's names: cryptography refuses to sign
    an OCSP response whose embedded responder certificate does not match the signing key."""
    key = _throwaway(kind, size)
    return (
        x509.CertificateBuilder()
        .subject_name(responder.subject)
        .issuer_name(responder.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(responder.not_valid_before_utc)
        .not_valid_after(responder.not_valid_after_utc)
        .sign(key, hash_for(key))
    )


def _tbs_but_responder_id(response: ocsp.OCSPResponse) -> list[bytes]:
    """The signed response data except the ResponderID, which names the key by its hash, and
    producedAt, which cryptography sets to the clock at each signature (compared on its own)."""
    tbs = asn1_ocsp.OCSPResponse.load(response.public_bytes(Encoding.DER))["response_bytes"]["response"].parsed[
        "tbs_response_data"
    ]
    return [tbs[field].dump() for field in ("version", "responses", "response_extensions")]


def sign_ocsp_response(
    builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, responder_key: CertificateIssuerPrivateKeyTypes
) -> bytes:
    """``builder`` has its responses and extensions; the responder is set here, once for the lint
    copy (a stand-in certificate for the throwaway key) and once for the real signature."""
    algorithm = hashes.SHA256()
    if isinstance(responder_key, ec.EllipticCurvePrivateKey):
        kind, size = "ec", responder_key.curve.key_size
    elif isinstance(responder_key, rsa.RSAPrivateKey):
        kind, size = "rsa", responder_key.key_size
    else:
        raise TypeError("unsupported responder key")
    stand_in = _stand_in(responder, kind, size)
    lint_copy = (
        builder.responder_id(ocsp.OCSPResponderEncoding.HASH, stand_in)
        .certificates([stand_in])
        .sign(_throwaway(kind, size), algorithm)
    )
    lint_ocsp_response(lint_copy.public_bytes(Encoding.DER))
    response = (
        builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
        .sign(responder_key, algorithm)
    )
    if _tbs_but_responder_id(response) != _tbs_but_responder_id(lint_copy):
        raise LintFailed("the signed OCSP response differs from the linted copy")
    # The two signatures straddle a second now and then: producedAt may move on, never back or far.
    drift = (response.produced_at_utc - lint_copy.produced_at_utc).total_seconds()
    if not 0 <= drift <= MAX_PRODUCED_AT_DRIFT:
        raise LintFailed("the signed OCSP response's producedAt is not the linted copy's")
    return response.public_bytes(Encoding.DER)

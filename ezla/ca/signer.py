"""Issue a certificate in Boulder's order: TBS from the profile, lint under a throwaway key,
record intent (the caller's hook), sign with the real key, compare the TBS bytes.

No database here: ``record_intent`` is a callback so the service decides where intent lives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ezla.ca.lint import lint_certificate
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

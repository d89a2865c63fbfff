"""Proof of possession: a signature by a certificate's key over bytes the server chose."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ezla.errors import ProofInvalid


def sign_proof(key: PrivateKeyTypes, message: bytes) -> bytes:
    """Client side (SDK/CLI): RSA PKCS#1 v1.5 or ECDSA, both over SHA-256."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    raise TypeError("unsupported key type")


def verify_proof(cert: x509.Certificate, message: bytes, signature: bytes) -> None:
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            raise ProofInvalid("unsupported key type")
    except InvalidSignature as exc:
        raise ProofInvalid() from exc

"""Proof of possession: a signature by a certificate's key over bytes the server chose."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ezla.errors import ProofInvalid

LOGIN_CONTEXT = b"ezla-doctor-login-v1\0"
# 40 bytes in base64url, unpadded: expiry (8), random (16), HMAC tag (16) (ezla.auth.service). The
# last character carries 4 bits, so it is one of four: one spelling per challenge.
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9_-]{53}[AQgw]")


def login_message(challenge: str) -> bytes:
    """What a doctor signs to log in. The fixed context prefix means a signature made here can never
    double as an XMLDSig SignedInfo signature, whatever a (malicious) server sends as a challenge."""
    return LOGIN_CONTEXT + challenge.encode()


def check_challenge(challenge: str) -> str:
    """Client side: sign only what looks like one of our challenges (40 bytes, base64url)."""
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise ProofInvalid("the server's challenge has an unexpected form; refusing to sign it")
    return challenge


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


def holder_message(purpose: str, serial: str, challenge: str, extra: str = "") -> bytes:
    """What a holder signs to prove possession (renewal, revocation): bound to purpose and serial."""
    return f"ezla:{purpose}:{serial}:{challenge}:{extra}".encode()

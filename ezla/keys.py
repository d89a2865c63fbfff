"""The one key policy: which public keys may sign anything ezla issues or accepts (doctors' and
clinics' keys, the CA's own, the receipt seal). Used by enrollment (CSR keys), the CA's lints and
the XAdES verifier and signer, so the three can never drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ezla.errors import KeyExponentNotAllowed, KeyTooWeak

ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048
# Upper bounds keep one verification cheap: any certificate can be sent in a KeyInfo.
MAX_RSA_BITS = 8192
# 65537 only: e=3 invites the low-exponent mistakes of RFC 3447's history (Bleichenbacher 2006
# forgeries against lax verifiers), and nothing we issue for needs another.
RSA_EXPONENT = 65537


@dataclass(frozen=True)
class KeyProblem:
    detail: str
    too_weak: bool  # below the floor, as opposed to outside the policy (too large, odd curve)
    exponent: bool = False  # an RSA public exponent other than 65537


def _rsa_problem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> KeyProblem | None:
    if key.key_size < MIN_RSA_BITS:
        return KeyProblem(f"RSA-{key.key_size} is below {MIN_RSA_BITS} bits", too_weak=True)
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if key.key_size > MAX_RSA_BITS:
        return KeyProblem(f"RSA keys above {MAX_RSA_BITS} bits are not accepted", too_weak=False)
    if public.public_numbers().e != RSA_EXPONENT:
        return KeyProblem("RSA public exponent must be 65537", too_weak=False, exponent=True)
    return None


def key_problem(key: object) -> KeyProblem | None:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return _rsa_problem(key)
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ALLOWED_CURVES):
            return None
        weak = key.curve.key_size < 256
        return KeyProblem(f"curve {key.curve.name} not allowed; use P-256, P-384 or P-521", too_weak=weak)
    return KeyProblem("only RSA and EC (NIST P) keys are accepted", too_weak=False)


def check_key(key: object) -> None:
    problem = key_problem(key)
    if problem is not None:
        raise (KeyExponentNotAllowed if problem.exponent else KeyTooWeak)(problem.detail)

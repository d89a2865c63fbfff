"""ezla.keys: the one key policy shared by enrollment, the CA's lints and the XAdES verifier."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ezla import errors
from ezla.keys import check_key, key_problem

_RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (_RSA_2048.public_key(), None),
        (ec.generate_private_key(ec.SECP256R1()).public_key(), None),
        (ec.generate_private_key(ec.SECP521R1()), None),  # private keys are judged by their public half
        (rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), True),
        (ec.generate_private_key(ec.SECP224R1()).public_key(), True),
        (ec.generate_private_key(ec.SECP256K1()).public_key(), False),  # strong, but not a NIST P curve
        (rsa.RSAPublicNumbers(2**40 + 1, _RSA_2048.public_key().public_numbers().n).public_key(), False),
        (rsa.RSAPublicNumbers(3, _RSA_2048.public_key().public_numbers().n).public_key(), False),
        (ed25519.Ed25519PrivateKey.generate().public_key(), False),
    ],
    ids=["rsa-2048", "p-256", "p-521-private", "rsa-1024", "p-224", "secp256k1", "huge-exponent", "e-3", "ed25519"],
)
def test_key_policy(key: object, expected: bool | None) -> None:
    problem = key_problem(key)
    assert (None if problem is None else problem.too_weak) == expected
    if problem is not None:
        with pytest.raises(errors.KeyTooWeak):
            check_key(key)


def test_rsa_exponent_other_than_65537_has_its_own_code() -> None:
    e3 = rsa.RSAPublicNumbers(3, _RSA_2048.public_key().public_numbers().n).public_key()
    with pytest.raises(errors.KeyExponentNotAllowed) as caught:
        check_key(e3)
    assert caught.value.code == "key-exponent-not-allowed"

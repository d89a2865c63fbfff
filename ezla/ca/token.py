"""CA keys inside a PKCS#11 token (SoftHSM2 in development and tests, any HSM in production).

Keys are generated in the token (sensitive, never extractable) and used through python-pkcs11.
Each one is wrapped as a ``cryptography`` private key whose ``sign`` asks the token, so the x509,
CRL and OCSP builders, the XAdES signer (signxml) and the TSA sign with it unchanged: the lint
copy, the TBS comparison and every profile stay exactly as for the PEM keystore.

Which token holds the CA's keys is recorded in ``pki/keys/pkcs11.toml`` (module path and token
label, no secret), so every node that is given the PKI directory and the user PIN
(``EZLA_CA_KEY_PASSPHRASE``) uses the same keys: the twins share the token.
"""

from __future__ import annotations

import hashlib
import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.utils import Buffer
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from ezla.errors import PkiNotInitialised, PkiPassphraseWrong, TokenKeyExists

CONFIG_NAME = "pkcs11.toml"
_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# Generated in the token, usable only for signing, never readable outside it.
_PRIVATE_TEMPLATE = {
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.DERIVE: False,
    Attribute.UNWRAP: False,
}
_PUBLIC_TEMPLATE = {Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}


@dataclass(frozen=True)
class TokenConfig:
    module: str  # the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    label: str  # the token's label

    def save(self, keys_dir: Path) -> None:
        keys_dir.mkdir(parents=True, exist_ok=True)
        (keys_dir / CONFIG_NAME).write_text(
            f"# CA keys live in this PKCS#11 token (the PIN is EZLA_CA_KEY_PASSPHRASE)\n"
            f"module = {_toml_string(self.module)}\ntoken = {_toml_string(self.label)}\n",
            encoding="utf-8",
        )

    @classmethod
    def load(cls, keys_dir: Path) -> TokenConfig | None:
        path = keys_dir / CONFIG_NAME
        if not path.exists():
            return None
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(module=str(data["module"]), label=str(data["token"]))


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Token:
    """One logged-in session per process and token. PKCS#11 login state is per application, and a
    session runs one operation at a time, so every call goes through one lock: a CA signature on
    SoftHSM2 takes about a millisecond, and the nodes' OCSP and issuance paths are rate-limited."""

    def __init__(self, config: TokenConfig, pin: str) -> None:
        try:
            lib = pkcs11.lib(config.module)
        except RuntimeError as exc:  # python-pkcs11 raises RuntimeError when the module cannot be loaded
            raise PkiNotInitialised(f"cannot load the PKCS#11 module {config.module}: {exc}") from None
        try:
            token = lib.get_token(token_label=config.label)
        except (pkcs11.exceptions.NoSuchToken, pkcs11.exceptions.TokenNotPresent):
            raise PkiNotInitialised(f"no PKCS#11 token labelled {config.label!r} in {config.module}") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinInvalid, pkcs11.exceptions.PinLenRange):
            raise PkiPassphraseWrong(
                f"the token {config.label!r} refused the PIN: EZLA_CA_KEY_PASSPHRASE must be its user PIN"
            ) from None
        except pkcs11.exceptions.PinLocked:
            raise PkiPassphraseWrong(f"the token {config.label!r} has locked its user PIN") from None
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 logs in per process: this one already opened the token with another PIN.
            raise PkiPassphraseWrong(f"the token {config.label!r} is open in this process with another PIN") from None
        self.config = config
        self.lock = threading.Lock()

    def _find(self, object_class: ObjectClass, role: str) -> Any:
        found = list(self._session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: role}))
        if len(found) > 1:
            raise PkiNotInitialised(f"the token holds {len(found)} keys labelled {role!r}: keep one")
        return found[0] if found else None

    def key(self, role: str) -> CertificateIssuerPrivateKeyTypes:
        with self.lock:
            private = self._find(ObjectClass.PRIVATE_KEY, role)
            public = self._find(ObjectClass.PUBLIC_KEY, role)
        if private is None or public is None:
            raise PkiNotInitialised(f"the token {self.config.label!r} holds no {role} key")
        return self._wrap(private, public)

    def _wrap(self, private: Any, public: Any) -> CertificateIssuerPrivateKeyTypes:
        if private.key_type == KeyType.EC:
            ec_public = serialization.load_der_public_key(encode_ec_public_key(public))
            assert isinstance(ec_public, ec.EllipticCurvePublicKey)
            return TokenEcKey(self, private, ec_public)
        rsa_public = serialization.load_der_public_key(encode_rsa_public_key(public))
        assert isinstance(rsa_public, rsa.RSAPublicKey)
        return TokenRsaKey(self, private, rsa_public)

    def generate(
        self, role: str, *, curve: str | None = None, rsa_bits: int | None = None
    ) -> CertificateIssuerPrivateKeyTypes:
        """A new key pair in the token, labelled with its role. A token that already holds a key of
        that role is refused: a ceremony never overwrites or shadows a CA key."""
        with self.lock:
            if self._find(ObjectClass.PRIVATE_KEY, role) is not None:
                raise TokenKeyExists(f"the token {self.config.label!r} already holds a {role} key")
            ident = role.encode()
            if curve is not None:
                params = self._session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
                )
                public, private = params.generate_keypair(
                    store=True,
                    label=role,
                    id=ident,
                    public_template=_PUBLIC_TEMPLATE,
                    private_template=_PRIVATE_TEMPLATE,
                )
            else:
                public, private = self._session.generate_keypair(
                    KeyType.RSA,
                    rsa_bits,
                    store=True,
                    label=role,
                    id=ident,
                    public_template=_PUBLIC_TEMPLATE,
                    private_template=_PRIVATE_TEMPLATE,
                )
        return self._wrap(private, public)

    def destroy(self, role: str) -> None:
        """Remove a key pair made by a ceremony that then failed (never called on a working PKI)."""
        with self.lock:
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in list(self._session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: role})):
                    obj.destroy()

    def sign(self, private: Any, data: bytes, mechanism: Mechanism) -> bytes:
        with self.lock:
            return bytes(private.sign(data, mechanism=mechanism))


_open: dict[tuple[int, str, str, str], Token] = {}
_open_lock = threading.Lock()


def open_token(config: TokenConfig, pin: str) -> Token:
    """The process's session with the token (a second login would be refused by PKCS#11)."""
    key = (os.getpid(), config.module, config.label, hashlib.sha256(pin.encode()).hexdigest())
    with _open_lock:
        token = _open.get(key)
        if token is None:
            token = _open[key] = Token(config, pin)
        return token


def _unsupported(what: str) -> NoReturn:
    raise TypeError(f"a key in a PKCS#11 token cannot {what}")


class TokenEcKey(ec.EllipticCurvePrivateKey):
    """An ECDSA key in the token. Hashing is done here and CKM_ECDSA signs the digest: every token
    has that mechanism, while the hash-and-sign ones vary by token and firmware."""

    def __init__(self, token: Token, private: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._token, self._private, self._public = token, private, public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            _unsupported("sign with anything but ECDSA")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(algorithm)
            h.update(data)
            digest = h.finalize()
        raw = self._token.sign(self._private, digest, Mechanism.ECDSA)
        half = len(raw) // 2  # PKCS#11 returns r || s; X.509 and CMS want the DER SEQUENCE
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _unsupported("do key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _unsupported("be exported")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _unsupported("be exported")

    def __copy__(self) -> TokenEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenEcKey:
        return self


class TokenRsaKey(rsa.RSAPrivateKey):
    """An RSA key in the token: PKCS#1 v1.5 with SHA-2 only (the receipt seal's XML signatures)."""

    def __init__(self, token: Token, private: Any, public: rsa.RSAPublicKey) -> None:
        self._token, self._private, self._public = token, private, public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        mechanism = _RSA_MECHANISMS.get(algorithm.name) if isinstance(algorithm, hashes.HashAlgorithm) else None
        if not isinstance(padding, _PKCS1v15) or mechanism is None:
            _unsupported("sign with anything but PKCS#1 v1.5 over SHA-256/384/512 of the data")
        return self._token.sign(self._private, bytes(data), mechanism)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        _unsupported("decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _unsupported("be exported")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _unsupported("be exported")

    def __copy__(self) -> TokenRsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenRsaKey:
        return self


_PKCS1v15 = padding.PKCS1v15

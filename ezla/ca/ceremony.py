"""``ezla pki init``: the key ceremony that creates the hierarchy (see pki/README.md).

Root (offline-style, ECDSA P-384, 20 years) -> issuing "ezla Doctors CA 1" (P-384, 10 years)
-> delegated OCSP responder (P-256), the receipt service seal (RSA-3072, because every XAdES
stack verifies RSA, while ECDSA XML signatures still trip some), the audit log's checkpoint
signer (P-256) and the time-stamping authority (P-256). Also an initial root CRL (ARL).
Keys are made in a PKCS#11 token when one is given (``token``), else kept as encrypted PEM.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ezla.ca import keystore, profile, serials
from ezla.ca.signer import issue
from ezla.ca.token import TokenConfig, open_token
from ezla.errors import PkiNotInitialised, TokenKeyExists
from ezla.files import write_private


@dataclass(frozen=True)
class CeremonyResult:
    created: bool
    root_fingerprint: str
    issuing_fingerprint: str


def ensure_passphrase(passphrase: str | None, fallback_file: Path) -> str:
    """A development passphrase when none is configured: written 0600, never printed."""
    if passphrase:
        return passphrase
    if fallback_file.exists():
        return fallback_file.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(32)
    write_private(fallback_file, value.encode())
    return value


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def root_crl(root: x509.Certificate, root_key: CertificateIssuerPrivateKeyTypes, now: datetime) -> bytes:
    """The authority revocation list: empty at birth; refreshed by a ceremony, not by nodes."""
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(now)
        .next_update(now + timedelta(days=365))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(aki, critical=False)
        .sign(root_key, hashes.SHA384())
    )
    return crl.public_bytes(serialization.Encoding.DER)


# Each role's key: (kind, size). The root and issuing CA sign with P-384; the receipt seal is
# RSA-3072 (see the module docstring); the rest sign often and cheaply with P-256.
KEY_SPECS: dict[str, tuple[str, int]] = {
    "root": ("ec", 384),
    "issuing": ("ec", 384),
    "ocsp": ("ec", 256),
    "service": ("rsa", 3072),
    "audit": ("ec", 256),
    "tsa": ("ec", 256),
}
_CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1}


class _KeyMaker:
    """Generates each role's key where it will live: in the token, or in memory to be written to
    ``keys/<role>.key.pem`` under the passphrase once the whole hierarchy is made."""

    def __init__(self, pki_dir: Path, passphrase: str, token: TokenConfig | None) -> None:
        self.pki_dir, self.passphrase = pki_dir, passphrase
        self.token = open_token(token, passphrase) if token is not None else None
        self.made: list[str] = []
        self.kept: list[tuple[str, CertificateIssuerPrivateKeyTypes, x509.Certificate]] = []

    def new(self, role: str, *, spec: tuple[str, int] | None = None) -> CertificateIssuerPrivateKeyTypes:
        kind, size = spec or KEY_SPECS[role]
        if self.token is not None:
            if kind == "ec":
                key = self.token.generate(role, curve=_CURVES[size]().name)
            else:
                key = self.token.generate(role, rsa_bits=size)
            self.made.append(role)  # only once made: a refused role names someone else's key
            return key
        if kind == "ec":
            return ec.generate_private_key(_CURVES[size]())
        return rsa.generate_private_key(public_exponent=65537, key_size=size)

    def keep(self, role: str, key: CertificateIssuerPrivateKeyTypes, cert: x509.Certificate) -> None:
        self.kept.append((role, key, cert))

    def commit(self) -> None:
        """Written only once every certificate passed its lint: a failed ceremony leaves no half PKI."""
        for role, key, cert in self.kept:
            if self.token is None:
                keystore.save_key(self.pki_dir, role, key, self.passphrase)
            keystore.save_cert(self.pki_dir, role, cert)

    def abandon(self) -> None:
        if self.token is not None:
            for role in self.made:
                self.token.destroy_made(role)


# Signed by the issuing CA (online anyway): roles a hierarchy made by an older release lacks are
# added by the next ``ezla pki init``.
_LEAF_BUILDERS = {
    "ocsp": lambda pub, issuing, serial, now, prof, urls: profile.ocsp_builder(pub, issuing, serial, now, prof),
    "service": profile.service_builder,
    "audit": lambda pub, issuing, serial, now, prof, urls: profile.audit_builder(pub, issuing, serial, now, prof),
    "tsa": profile.tsa_builder,
}


def _leaf(
    maker: _KeyMaker,
    role: str,
    issuing: x509.Certificate,
    issuing_key: CertificateIssuerPrivateKeyTypes,
    now: datetime,
    prof: profile.Profile,
    urls: profile.Urls,
    node: int,
) -> None:
    key = maker.new(role)
    builder = _LEAF_BUILDERS[role](key.public_key(), issuing, serials.new_serial(node), now, prof, urls)
    maker.keep(role, key, issue(builder, issuing_key, doctor=False))


@contextmanager
def _all_or_nothing(maker: _KeyMaker) -> Iterator[None]:
    try:
        yield
    except BaseException:
        maker.abandon()
        raise
    maker.commit()


def init_pki(
    pki_dir: Path,
    passphrase: str,
    public_url: str,
    now: datetime,
    *,
    node_number: int = 1,
    token: TokenConfig | None = None,
) -> CeremonyResult:
    """Make the hierarchy once; later calls only add roles a newer release introduced. With
    ``token`` every key is generated inside that PKCS#11 token and never leaves it."""
    existing = keystore.token_config(pki_dir)
    prof, urls = profile.Profile.load(pki_dir), profile.Urls(public_url)
    if keystore.cert_path(pki_dir, "issuing").exists():
        if token is not None and token != existing:
            raise TokenKeyExists(
                "this PKI's keys are already kept elsewhere; a PKI moves to a token by a new ceremony (or a rollover)"
            )
        issuing = keystore.load_cert(pki_dir, "issuing")
        missing = [r for r in _LEAF_BUILDERS if not keystore.cert_path(pki_dir, r).exists()]
        if missing:
            maker = _KeyMaker(pki_dir, passphrase, existing)
            issuing_key = keystore.load_key(pki_dir, "issuing", passphrase)
            with _all_or_nothing(maker):
                for role in missing:
                    _leaf(maker, role, issuing, issuing_key, now, prof, urls, node_number)
        return CeremonyResult(bool(missing), fingerprint(keystore.load_cert(pki_dir, "root")), fingerprint(issuing))

    maker = _KeyMaker(pki_dir, passphrase, token)
    with _all_or_nothing(maker):
        root_key = maker.new("root")
        root = profile.root_builder(root_key.public_key(), serials.new_serial(node_number), now, prof).sign(
            root_key, hashes.SHA384()
        )
        issuing_key = maker.new("issuing")
        issuing = profile.issuing_builder(
            issuing_key.public_key(), root, serials.new_serial(node_number), now, prof, urls
        ).sign(root_key, hashes.SHA384())
        maker.keep("root", root_key, root)
        maker.keep("issuing", issuing_key, issuing)
        for role in _LEAF_BUILDERS:
            _leaf(maker, role, issuing, issuing_key, now, prof, urls, node_number)
        arl = root_crl(root, root_key, now)
    if token is not None:
        token.save(pki_dir / "keys")
    (pki_dir / "issued" / "root.crl").write_bytes(arl)
    return CeremonyResult(True, fingerprint(root), fingerprint(issuing))


@dataclass(frozen=True)
class Rollover:
    generation: int
    issuing_fingerprint: str
    previous: list[int]


def rollover(pki_dir: Path, passphrase: str, public_url: str, now: datetime, *, node_number: int = 1) -> Rollover:
    """A new issuing CA (and its OCSP responder), signed by the root, made current for new
    certificates. The older ones stay: they keep answering OCSP and publishing CRLs for what they
    issued, and their certificates verify as before; doctors move on at their next renewal.
    Nodes pick the new generation up from ``issued/current-issuing`` without a restart."""
    if not keystore.is_initialised(pki_dir):
        raise PkiNotInitialised()
    existing = keystore.generations(pki_dir)
    n = existing[-1] + 1
    issuing_role, ocsp_role = keystore.generation_roles(n)
    prof = profile.Profile.load(pki_dir).for_generation(n)
    urls = profile.Urls(public_url).for_generation(n)
    root = keystore.load_cert(pki_dir, "root")
    root_key = keystore.load_key(pki_dir, "root", passphrase)
    maker = _KeyMaker(pki_dir, passphrase, keystore.token_config(pki_dir))
    with _all_or_nothing(maker):
        issuing_key = maker.new(issuing_role, spec=KEY_SPECS["issuing"])
        issuing = profile.issuing_builder(
            issuing_key.public_key(), root, serials.new_serial(node_number), now, prof, urls
        ).sign(root_key, hashes.SHA384())
        ocsp_key = maker.new(ocsp_role, spec=KEY_SPECS["ocsp"])
        ocsp = issue(
            profile.ocsp_builder(ocsp_key.public_key(), issuing, serials.new_serial(node_number), now, prof),
            issuing_key,
            doctor=False,
        )
        maker.keep(issuing_role, issuing_key, issuing)
        maker.keep(ocsp_role, ocsp_key, ocsp)
    # Last, and atomically: nodes switch only to a generation whose files are all there.
    marker = pki_dir / "issued" / keystore.CURRENT_FILE
    partial = marker.with_suffix(".tmp")
    partial.write_text(f"{n}\n", encoding="utf-8")
    partial.replace(marker)
    return Rollover(n, fingerprint(issuing), existing)

"""The CA's on-disk home (``EZLA_PKI_DIR``): keys encrypted at rest, certificates in the clear.

Layout: ``keys/<role>.key.pem`` (PKCS#8, encrypted with ``EZLA_CA_KEY_PASSPHRASE``),
``issued/<role>.pem``, ``issued/root.crl``. Roles: root, issuing, ocsp, service, audit.
The root key is only needed by ``ezla pki init`` (the key ceremony); nodes never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes

from ezla.errors import PkiNotInitialised, PkiPassphraseWrong
from ezla.files import write_private

ROLES = ("root", "issuing", "ocsp", "service", "audit")


def key_path(pki_dir: Path, role: str) -> Path:
    return pki_dir / "keys" / f"{role}.key.pem"


def cert_path(pki_dir: Path, role: str) -> Path:
    return pki_dir / "issued" / f"{role}.pem"  # Settings.published_dir


def save_key(pki_dir: Path, role: str, key: PrivateKeyTypes, passphrase: str) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    write_private(key_path(pki_dir, role), pem)


def save_cert(pki_dir: Path, role: str, cert: x509.Certificate) -> None:
    path = cert_path(pki_dir, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_cert(pki_dir: Path, role: str) -> x509.Certificate:
    path = cert_path(pki_dir, role)
    if not path.exists():
        raise PkiNotInitialised()
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(pki_dir: Path, role: str, passphrase: str | None) -> CertificateIssuerPrivateKeyTypes:
    path = key_path(pki_dir, role)
    if not path.exists():
        raise PkiNotInitialised()
    if not passphrase:
        raise PkiNotInitialised("EZLA_CA_KEY_PASSPHRASE (or _FILE) is not set")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), passphrase.encode())
    except ValueError:
        # Typically var/ was deleted (with its generated ca-passphrase) and pki/ kept.
        raise PkiPassphraseWrong(
            f"{path} was encrypted with another passphrase: restore the one it was made with "
            "(EZLA_CA_KEY_PASSPHRASE, _FILE, or var/ca-passphrase), or move the PKI away to start a new CA"
        ) from None
    return key  # type: ignore[return-value]


def is_initialised(pki_dir: Path) -> bool:
    return all(cert_path(pki_dir, r).exists() for r in ROLES) and all(
        key_path(pki_dir, r).exists() for r in ROLES if r != "root"
    )


@dataclass(frozen=True)
class OnlineKeys:
    """What a running node holds: the issuing CA, the OCSP responder, the receipt seal and the
    audit log's checkpoint key."""

    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    ocsp: x509.Certificate
    ocsp_key: CertificateIssuerPrivateKeyTypes
    service: x509.Certificate
    service_key: CertificateIssuerPrivateKeyTypes
    audit: x509.Certificate
    audit_key: CertificateIssuerPrivateKeyTypes

    @property
    def chain(self) -> tuple[x509.Certificate, x509.Certificate]:
        return (self.issuing, self.root)

    @classmethod
    def load(cls, pki_dir: Path, passphrase: str | None) -> OnlineKeys:
        return cls(
            root=load_cert(pki_dir, "root"),
            issuing=load_cert(pki_dir, "issuing"),
            issuing_key=load_key(pki_dir, "issuing", passphrase),
            ocsp=load_cert(pki_dir, "ocsp"),
            ocsp_key=load_key(pki_dir, "ocsp", passphrase),
            service=load_cert(pki_dir, "service"),
            service_key=load_key(pki_dir, "service", passphrase),
            audit=load_cert(pki_dir, "audit"),
            audit_key=load_key(pki_dir, "audit", passphrase),
        )

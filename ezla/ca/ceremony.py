"""``ezla pki init``: the key ceremony that creates the hierarchy (see pki/README.md).

Root (offline-style, ECDSA P-384, 20 years) -> issuing "ezla Doctors CA 1" (P-384, 10 years)
-> delegated OCSP responder (P-256), the receipt service seal (RSA-3072, because every XAdES
stack verifies RSA, while ECDSA XML signatures still trip some) and the audit log's checkpoint
signer (P-256). Also an initial root CRL (ARL).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ezla.ca import keystore, profile, serials
from ezla.ca.signer import issue
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


def root_crl(root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, now: datetime) -> bytes:
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


def _audit_signer(
    issuing: x509.Certificate, issuing_key: ec.EllipticCurvePrivateKey, now: datetime, prof: profile.Profile, node: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(
        profile.audit_builder(key.public_key(), issuing, serials.new_serial(node), now, prof), issuing_key, doctor=False
    )
    return key, cert


def init_pki(pki_dir: Path, passphrase: str, public_url: str, now: datetime, *, node_number: int = 1) -> CeremonyResult:
    if keystore.is_initialised(pki_dir):
        root = keystore.load_cert(pki_dir, "root")
        issuing = keystore.load_cert(pki_dir, "issuing")
        return CeremonyResult(False, fingerprint(root), fingerprint(issuing))
    if all(keystore.cert_path(pki_dir, r).exists() for r in ("root", "issuing", "ocsp", "service")):
        # A hierarchy from before the audit key: add it, signed by the issuing CA (online anyway).
        issuing_key = keystore.load_key(pki_dir, "issuing", passphrase)
        assert isinstance(issuing_key, ec.EllipticCurvePrivateKey)
        issuing = keystore.load_cert(pki_dir, "issuing")
        audit_key, audit = _audit_signer(issuing, issuing_key, now, profile.Profile.load(pki_dir), node_number)
        keystore.save_key(pki_dir, "audit", audit_key, passphrase)
        keystore.save_cert(pki_dir, "audit", audit)
        return CeremonyResult(True, fingerprint(keystore.load_cert(pki_dir, "root")), fingerprint(issuing))
    prof = profile.Profile.load(pki_dir)
    urls = profile.Urls(public_url)

    root_key = ec.generate_private_key(ec.SECP384R1())
    root = profile.root_builder(root_key.public_key(), serials.new_serial(node_number), now, prof).sign(
        root_key, hashes.SHA384()
    )
    issuing_key = ec.generate_private_key(ec.SECP384R1())
    issuing = profile.issuing_builder(
        issuing_key.public_key(), root, serials.new_serial(node_number), now, prof, urls
    ).sign(root_key, hashes.SHA384())
    ocsp_key = ec.generate_private_key(ec.SECP256R1())
    ocsp = issue(
        profile.ocsp_builder(ocsp_key.public_key(), issuing, serials.new_serial(node_number), now, prof),
        issuing_key,
        doctor=False,
    )
    service_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    service = issue(
        profile.service_builder(service_key.public_key(), issuing, serials.new_serial(node_number), now, prof, urls),
        issuing_key,
        doctor=False,
    )
    audit_key, audit = _audit_signer(issuing, issuing_key, now, prof, node_number)
    for role, key, cert in (
        ("root", root_key, root),
        ("issuing", issuing_key, issuing),
        ("ocsp", ocsp_key, ocsp),
        ("service", service_key, service),
        ("audit", audit_key, audit),
    ):
        keystore.save_key(pki_dir, role, key, passphrase)
        keystore.save_cert(pki_dir, role, cert)
    (pki_dir / "issued" / "root.crl").write_bytes(root_crl(root, root_key, now))
    return CeremonyResult(True, fingerprint(root), fingerprint(issuing))

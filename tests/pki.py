"""The one place tests make certificates.

- ``Hierarchy.shaped_like_ours(now)``: a root and an issuing CA built with ezla's own profile
  (``ezla.ca.profile``) but with keys of their own: a foreign CA that looks exactly like ours.
- ``Hierarchy.ours(pki_dir)``: the session's real CA (made by ``ezla pki init``), whose issuing key
  can sign doctor certificates the CA never recorded.
- ``Hierarchy.doctor(npwz, when)``: a doctor certificate from either, through the real lint.
- ``certificate(...)``: one certificate with hand-picked extensions, for the verifier's unit tests
  (odd key usages, missing EKU, CA flags) that no profile would produce.

The session PKI itself is made once by ``ezla.ca.ceremony.init_pki`` (tests/conftest.py), and
tests/vectors/ holds fixed certificates made by ``tests/vectors/make_vectors.py`` with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from ezla.ca import profile, serials
from ezla.ca.keystore import OnlineKeys
from ezla.ca.signer import issue
from ezla.xades import sign_enveloped

DOC_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
PUBLIC_URL = "http://ezla.127.0.0.1.nip.io:8000"


def new_key(kind: str = "ec") -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Issued:
    """A signer: key, certificate and the chain to put in KeyInfo."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def sign(self, xml: bytes, *, signing_time: datetime | None = None) -> bytes:
        return sign_enveloped(xml, self.key, self.cert, self.chain, signing_time=signing_time)


@dataclass(frozen=True)
class Hierarchy:
    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    prof: profile.Profile
    urls: profile.Urls
    keyinfo_chain: tuple[x509.Certificate, ...] = ()  # what signers put in KeyInfo besides the leaf

    @classmethod
    def shaped_like_ours(cls, now: datetime | None = None) -> Hierarchy:
        now = now or datetime.now(UTC)
        prof, urls = profile.Profile(), profile.Urls(PUBLIC_URL)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = profile.root_builder(root_key.public_key(), serials.new_serial(1), now, prof).sign(
            root_key, hashes.SHA384()
        )
        issuing_key = ec.generate_private_key(ec.SECP384R1())
        issuing = profile.issuing_builder(issuing_key.public_key(), root, serials.new_serial(1), now, prof, urls).sign(
            root_key, hashes.SHA384()
        )
        return cls(root, issuing, issuing_key, prof, urls, (issuing, root))

    @classmethod
    def ours(cls, pki_dir: Path, passphrase: str) -> Hierarchy:
        keys = OnlineKeys.load(pki_dir, passphrase)
        return cls(keys.root, keys.issuing, keys.issuing_key, profile.Profile.load(pki_dir), profile.Urls(PUBLIC_URL))

    def doctor(
        self,
        npwz: str,
        *,
        when: datetime | None = None,
        kind: str = "ec",
        given_name: str = "Anna",
        family_name: str = "Nowak",
    ) -> Issued:
        """A doctor certificate as the CA would issue it at ``when`` (linted, not recorded)."""
        key = new_key(kind)
        builder = profile.doctor_builder(
            profile.DoctorIdentity(npwz, given_name, family_name),
            key.public_key(),
            self.issuing,
            serials.new_serial(1),
            when or datetime.now(UTC),
            self.prof,
            self.urls,
        )
        return Issued(key, issue(builder, self.issuing_key, doctor=True), self.keyinfo_chain)


# --- hand-made certificates for the verifier's unit tests -------------------------------------------
def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key_usage(**on: bool) -> x509.KeyUsage:
    fields = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{f: on.get(f, False) for f in fields})


def certificate(*args: Any, **kwargs: Any) -> x509.Certificate:
    """``certificate_builder``'s certificate, signed by the issuer key (or its own)."""
    builder, signing_key = certificate_builder(*args, **kwargs)
    is_ec = isinstance(signing_key, ec.EllipticCurvePrivateKey)
    return builder.sign(signing_key, hashes.SHA384() if is_ec else hashes.SHA256())


def certificate_builder(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    cn: str,
    issuer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    issuer: x509.Certificate | None = None,
    *,
    now: datetime,
    ca: bool = False,
    days: tuple[int, int] = (-1, 365),
    ku: x509.KeyUsage | None = None,
    eku: bool = True,
) -> tuple[x509.CertificateBuilder, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    """One certificate's builder and the key to sign it with, self-signed unless ``issuer`` is given; leaves are nonRepudiation-only
    document-signing certificates unless ``ku``/``eku`` say otherwise."""
    signing_key = issuer_key or key
    b = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer.subject if issuer else name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key())  # type: ignore[arg-type]
        b = b.add_extension(aki, critical=False)
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), True)
        b = b.add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    else:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        b = b.add_extension(ku or key_usage(content_commitment=True), critical=True)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage([DOC_SIGNING]), critical=False)
        b = b.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), None)]),
            critical=False,
        )
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier("http://ca.example/crl")], None, None, None)]
            ),
            critical=False,
        )
    return b, signing_key

"""Certificate profiles: pure functions from identities and keys to unsigned builders.

No Litestar, no SQLAlchemy here: ``x509`` objects in, builders out (style.md "CA core").
The doctor profile follows ETSI EN 319 412-2 (natural person) for a non-qualified (NCP)
document-signing certificate; the same certificate signs e-prescriptions.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ezla.xades import DOCUMENT_SIGNING_EKU

# ETSI EN 319 411-1 Normalized Certificate Policy.
ETSI_NCP_OID = ObjectIdentifier("0.4.0.2042.1.1")
# ETSI EN 319 412-1 5.1.3: a two-letter national scheme plus ':' ("NP" = numer prawa wykonywania
# zawodu, the NPWZ). pkilint reports national schemes as a NOTICE only.
NPWZ_SCHEME_PREFIX = "NP:PL-"


@dataclass(frozen=True)
class Profile:
    """Tunable parts of the profiles; ``pki/profiles/ezla.toml`` overrides the defaults."""

    organization: str = "ezla"
    country: str = "PL"
    root_cn: str = "ezla Root CA"
    issuing_cn: str = "ezla Doctors CA 1"
    ocsp_cn: str = "ezla Doctors CA 1 OCSP Responder"
    service_cn: str = "ezla Receipt Service"
    audit_cn: str = "ezla Audit Log Signer"
    tsa_cn: str = "ezla Time-Stamping Authority"
    root_days: int = 7300
    issuing_days: int = 3650
    doctor_days: int = 730
    ocsp_days: int = 365
    service_days: int = 730
    audit_days: int = 3650
    tsa_days: int = 3650
    backdate_minutes: int = 5
    # A deployment adds its own CP/CPS arc in pki/profiles/ezla.toml; we own none to put here.
    policy_oids: tuple[str, ...] = field(default=(ETSI_NCP_OID.dotted_string,))

    def for_generation(self, n: int) -> Profile:
        """Names of the n-th issuing CA and its responder ("ezla Doctors CA 2"): a rollover makes
        a new CA beside the old one, and both must be told apart by name."""
        if n == 1:
            return self
        base = self.issuing_cn.removesuffix(" 1")
        return replace(self, issuing_cn=f"{base} {n}", ocsp_cn=f"{base} {n} OCSP Responder")

    @classmethod
    def load(cls, pki_dir: Path) -> Profile:
        path = pki_dir / "profiles" / "ezla.toml"
        if not path.exists():
            return cls()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        values = {**data.get("names", {}), **data.get("validity", {})}
        if "policies" in data:
            values["policy_oids"] = tuple(data["policies"]["oids"])
        return cls(**values)


@dataclass(frozen=True)
class DoctorIdentity:
    npwz: str
    given_name: str
    family_name: str


@dataclass(frozen=True)
class Urls:
    """Where relying parties find status: built from ``EZLA_PUBLIC_URL``."""

    public_url: str
    generation: int = 1  # which issuing CA the certificate's AIA and CRL DP name (see rollover)

    def for_generation(self, n: int) -> Urls:
        return replace(self, generation=n)

    @property
    def ocsp(self) -> str:
        return f"{self.public_url}/v1/ca/ocsp"  # one responder URL: it answers for every generation

    @property
    def issuing_ca(self) -> str:
        if self.generation > 1:
            return f"{self.public_url}/v1/ca/issuing/{self.generation}"
        return f"{self.public_url}/v1/ca/issuing.cer"

    @property
    def root_ca(self) -> str:
        return f"{self.public_url}/v1/ca/root.cer"

    @property
    def crl(self) -> str:
        if self.generation > 1:
            return f"{self.public_url}/v1/ca/crl/{self.generation}"
        return f"{self.public_url}/v1/ca/crl"

    @property
    def root_crl(self) -> str:
        return f"{self.public_url}/v1/ca/root.crl"


def doctor_subject(doctor: DoctorIdentity, profile: Profile) -> x509.Name:
    """ETSI EN 319 412-2 4.2.4: country, given name, surname, common name, serialNumber."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, profile.country),
            x509.NameAttribute(NameOID.GIVEN_NAME, doctor.given_name),
            x509.NameAttribute(NameOID.SURNAME, doctor.family_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, NPWZ_SCHEME_PREFIX + doctor.npwz),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{doctor.given_name} {doctor.family_name}"),
        ]
    )


def npwz_of(cert: x509.Certificate) -> str | None:
    """The NPWZ carried in the subject serialNumber, or None for a non-doctor certificate."""
    for attr in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode()
        if value.startswith(NPWZ_SCHEME_PREFIX):
            return value.removeprefix(NPWZ_SCHEME_PREFIX)
    return None


def names_of(cert: x509.Certificate) -> tuple[str, str] | None:
    """(given name, family name) from the subject's GN and SN, or None if either is missing."""
    given = cert.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    family = cert.subject.get_attributes_for_oid(NameOID.SURNAME)
    if len(given) != 1 or len(family) != 1:
        return None
    return str(given[0].value), str(family[0].value)


def _ca_name(cn: str, profile: Profile) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, profile.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.organization),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _validity(builder: x509.CertificateBuilder, now: datetime, days: int, profile: Profile) -> x509.CertificateBuilder:
    # A small backdate absorbs relying parties' clock skew (RFC 5280 4.1.2.5 allows any start).
    start = (now - timedelta(minutes=profile.backdate_minutes)).replace(microsecond=0)
    return builder.not_valid_before(start).not_valid_after(start + timedelta(days=days))


def _policies(profile: Profile) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(o), None) for o in profile.policy_oids])


def root_builder(
    public_key: CertificateIssuerPublicKeyTypes, serial: int, now: datetime, profile: Profile
) -> x509.CertificateBuilder:
    name = _ca_name(profile.root_cn, profile)
    b = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key).serial_number(serial)
    b = _validity(b, now, profile.root_days, profile)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return (
        b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(ski, critical=False)
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(*, digital_signature: bool, non_repudiation: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _issued_by(
    builder: x509.CertificateBuilder, issuer: x509.Certificate, public_key: CertificateIssuerPublicKeyTypes
) -> x509.CertificateBuilder:
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    return (
        builder.issuer_name(issuer.subject)
        .public_key(public_key)
        .add_extension(aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _aia(ca_issuers_url: str, ocsp_url: str | None) -> x509.AuthorityInformationAccess:
    descs = []
    if ocsp_url:
        descs.append(
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        )
    descs.append(
        x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url))
    )
    return x509.AuthorityInformationAccess(descs)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)])


def issuing_builder(
    public_key: CertificateIssuerPublicKeyTypes,
    root: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
    urls: Urls,
) -> x509.CertificateBuilder:
    b = x509.CertificateBuilder().subject_name(_ca_name(profile.issuing_cn, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.issuing_days, profile), root, public_key)
    return (
        b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_policies(profile), critical=False)
        .add_extension(_aia(urls.root_ca, None), critical=False)
        .add_extension(_crl_dp(urls.root_crl), critical=False)
    )


def _document_signing_leaf(
    b: x509.CertificateBuilder, profile: Profile, urls: Urls, *, digital_signature: bool
) -> x509.CertificateBuilder:
    """The extensions doctors' certificates and the receipt seal share: nonRepudiation, documentSigning,
    policies and the status pointers (AIA with OCSP, CRL distribution point)."""
    return (
        b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(digital_signature=digital_signature, non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING_EKU]), critical=False)
        .add_extension(_policies(profile), critical=False)
        .add_extension(_aia(urls.issuing_ca, urls.ocsp), critical=False)
        .add_extension(_crl_dp(urls.crl), critical=False)
    )


def doctor_builder(
    doctor: DoctorIdentity,
    public_key: CertificateIssuerPublicKeyTypes,
    issuer: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
    urls: Urls,
) -> x509.CertificateBuilder:
    """EN 319 412-2: keyUsage nonRepudiation only (4.3.2 content commitment), EKU documentSigning."""
    b = x509.CertificateBuilder().subject_name(doctor_subject(doctor, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.doctor_days, profile), issuer, public_key)
    return _document_signing_leaf(b, profile, urls, digital_signature=False)


def ocsp_builder(
    public_key: CertificateIssuerPublicKeyTypes,
    issuer: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
) -> x509.CertificateBuilder:
    """RFC 6960 4.2.2.2 delegated responder, with id-pkix-ocsp-nocheck (4.2.2.2.1)."""
    b = x509.CertificateBuilder().subject_name(_ca_name(profile.ocsp_cn, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.ocsp_days, profile), issuer, public_key)
    return (
        b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(digital_signature=True, non_repudiation=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )


def service_builder(
    public_key: CertificateIssuerPublicKeyTypes,
    issuer: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
    urls: Urls,
) -> x509.CertificateBuilder:
    """The service's own seal for receipts: a document-signing certificate like the doctors'."""
    b = x509.CertificateBuilder().subject_name(_ca_name(profile.service_cn, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.service_days, profile), issuer, public_key)
    return _document_signing_leaf(b, profile, urls, digital_signature=True)


def audit_builder(
    public_key: CertificateIssuerPublicKeyTypes,
    issuer: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
) -> x509.CertificateBuilder:
    """The key that signs the audit log's checkpoints: a plain signing leaf, no EKU (no standard
    one fits), long-lived because old checkpoints are checked against it for years."""
    b = x509.CertificateBuilder().subject_name(_ca_name(profile.audit_cn, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.audit_days, profile), issuer, public_key)
    return b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True).add_extension(
        _leaf_key_usage(digital_signature=True, non_repudiation=True), critical=True
    )


def tsa_builder(
    public_key: CertificateIssuerPublicKeyTypes,
    issuing: x509.Certificate,
    serial: int,
    now: datetime,
    profile: Profile,
    urls: Urls,
) -> x509.CertificateBuilder:
    """The time-stamping unit (RFC 3161 2.3, ETSI EN 319 422): EKU timeStamping alone and
    critical, so its key can stamp nothing but TSTInfo; long-lived like the audit key, because
    tokens are checked against it for as long as the documents they date are kept."""
    b = x509.CertificateBuilder().subject_name(_ca_name(profile.tsa_cn, profile)).serial_number(serial)
    b = _issued_by(_validity(b, now, profile.tsa_days, profile), issuing, public_key)
    return (
        b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(digital_signature=True, non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(_policies(profile), critical=False)
        .add_extension(_aia(urls.issuing_ca, urls.ocsp), critical=False)
        .add_extension(_crl_dp(urls.crl), critical=False)
    )

"""CRL building (RFC 5280 5): pure, cryptography's builder, linted before signing (signer.py);
the service stores and serves it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ezla.ca.signer import sign_crl

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}
# certificateHold is left out on purpose: a suspended signing certificate would make documents'
# validity depend on later events; a doctor whose licence is suspended gets privilegeWithdrawn.


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str
    invalid_since: datetime | None = None  # RFC 5280 5.3.2 invalidityDate: when the key was compromised


def build_crl(
    issuer: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    entries: Iterable[RevokedEntry],
    *,
    number: int,
    now: datetime,
    validity: timedelta,
) -> bytes:
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now.replace(microsecond=0))
        .next_update((now + validity).replace(microsecond=0))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(aki, critical=False)
    )
    for e in entries:
        rc = (
            x509.RevokedCertificateBuilder()
            .serial_number(e.serial)
            .revocation_date(e.revoked_at.replace(microsecond=0))
        )
        # RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent.
        if e.reason != "unspecified":
            rc = rc.add_extension(x509.CRLReason(REASONS[e.reason]), critical=False)
        if e.invalid_since is not None:
            rc = rc.add_extension(
                x509.InvalidityDate(e.invalid_since.replace(microsecond=0, tzinfo=None)), critical=False
            )
        builder = builder.add_revoked_certificate(rc.build())
    return sign_crl(builder, key)

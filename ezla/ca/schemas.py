from __future__ import annotations

from datetime import datetime

import msgspec

from ezla.ca.records import DoctorRecord


class DoctorIn(msgspec.Struct, forbid_unknown_fields=True):
    npwz: str
    pesel: str
    given_name: str
    family_name: str


class RegistrationOut(msgspec.Struct):
    npwz: str
    activation_code: str
    expires_at: datetime


class EnrollmentIn(msgspec.Struct, forbid_unknown_fields=True):
    activation_code: str
    csr_pem: str | None = None
    pkcs12_password: str | None = None
    # Optional: names whose code this is, so wrong codes count against (and lock) that doctor's codes.
    npwz: str | None = None


class IssuedOut(msgspec.Struct):
    serial: str
    certificate_pem: str
    chain_pem: str
    not_after: datetime


class RevocationIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = "unspecified"
    challenge: str | None = None
    signature: str | None = None
    # Operator only, keyCompromise/unspecified: renewals from this time on are revoked too.
    compromised_at: datetime | None = None


class RevocationOut(msgspec.Struct):
    serial: str
    status: str
    reason: str
    revoked_at: datetime
    lineage_revoked: list[str] = []
    tokens_revoked: int = 0


class CertificateOut(msgspec.Struct):
    serial: str
    status: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    renewed_from: str | None
    revoked_at: datetime | None
    revocation_reason: str | None
    invalid_since: datetime | None


class ActivationCodeOut(msgspec.Struct):
    expires_at: datetime
    used_at: datetime | None
    failed_attempts: int
    locked: bool


class DoctorOut(msgspec.Struct):
    npwz: str
    given_name: str
    family_name: str
    registered_at: datetime
    certificates: list[CertificateOut]
    activation_codes: list[ActivationCodeOut]

    @classmethod
    def of(cls, record: DoctorRecord) -> DoctorOut:
        return cls(
            record.npwz,
            record.given_name,
            record.family_name,
            record.registered_at,
            [
                CertificateOut(
                    c.serial,
                    c.status,
                    c.not_before,
                    c.not_after,
                    c.created_at,
                    c.renewed_from,
                    c.revoked_at,
                    c.revocation_reason,
                    c.invalid_since,
                )
                for c in record.certificates
            ],
            [ActivationCodeOut(a.expires_at, a.used_at, a.failed_attempts, a.locked) for a in record.activation_codes],
        )


class RenewalIn(msgspec.Struct, forbid_unknown_fields=True):
    csr_pem: str
    challenge: str
    signature: str


class DoctorTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    certificate_pem: str
    challenge: str
    signature: str


class TokenOut(msgspec.Struct):
    token: str
    expires_at: datetime

from __future__ import annotations

from datetime import datetime

import msgspec


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


class IssuedOut(msgspec.Struct):
    serial: str
    certificate_pem: str
    chain_pem: str
    not_after: datetime


class RevocationIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = "unspecified"
    challenge: str | None = None
    signature: str | None = None


class RevocationOut(msgspec.Struct):
    serial: str
    status: str
    reason: str
    revoked_at: datetime


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

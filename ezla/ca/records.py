"""Reading the CA's certificate records by serial."""

from __future__ import annotations

from cryptography import x509
from sqlalchemy.orm import Session

from ezla.ca import serials
from ezla.ca.models import Certificate
from ezla.errors import CertificateUnknown


def load_row(session: Session, serial: str) -> Certificate:
    value = serials.parse_hex(serial)
    row = session.get(Certificate, serials.to_hex(value)) if value is not None else None
    if row is None or row.der is None:
        raise CertificateUnknown()
    return row


def get_certificate(session: Session, serial: str) -> x509.Certificate:
    row = load_row(session, serial)
    assert row.der is not None
    return x509.load_der_x509_certificate(row.der)

"""Shared by the issuance attack tests: what a refusal is measured against, and certificates the
real issuing CA signed with a shifted clock, so that each attack isolates the check it targets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from ezla.business_time import local_date
from ezla.ca import serials
from ezla.ca.models import Certificate
from ezla.db import transaction
from ezla.document.codec import build_sick_leave_xml
from ezla.issuance.samples import sample_sick_leave
from tests.conftest import PASSPHRASE
from tests.factories import XML, EnrolledDoctor
from tests.pki import Hierarchy, Issued

PROBLEM = "application/problem+json"


def stored(session_factory: Any) -> tuple[int, int]:
    """Rows in the e-ZLA table and the outbox: an attack must change neither."""
    with transaction(session_factory) as s:
        sick_leaves = s.scalar(text("SELECT count(*) FROM ezla_sick_leaves"))
        deliveries = s.scalar(text("SELECT count(*) FROM dist_deliveries"))
    return int(sick_leaves or 0), int(deliveries or 0)


def refused(
    client: Any,
    session_factory: Any,
    body: bytes,
    status: int,
    code: str,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    before = stored(session_factory)
    r = client.post("/v1/ezla", content=body, headers=XML if headers is None else headers)
    assert (r.status_code, r.headers.get("content-type", "").split(";")[0]) == (status, PROBLEM), r.text
    problem = r.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    assert stored(session_factory) == before, "a refused submission stored something"
    return problem  # type: ignore[no-any-return]


def today() -> date:
    return local_date(datetime.now(UTC))


def unsigned(doctor: EnrolledDoctor, **overrides: Any) -> bytes:
    """A SickLeave for ``doctor`` as bytes, not validated (so tests can break the schema)."""
    return build_sick_leave_xml(sample_sick_leave(today=today(), npwz=doctor.npwz, **overrides), check=False)


def issue_with_our_ca(pki_dir: Path, npwz: str, *, when: datetime) -> Issued:
    """A doctor certificate signed by the real issuing CA key, as if issued at ``when``."""
    return Hierarchy.ours(pki_dir, PASSPHRASE).doctor(npwz, when=when)


def record(session_factory: Any, cert: x509.Certificate) -> None:
    """Record the certificate as issued by our CA, so only the check under test can refuse it."""
    with transaction(session_factory) as s:
        s.add(
            Certificate(
                serial=serials.to_hex(cert.serial_number),
                doctor_id=None,
                kind="doctor",
                status="issued",
                der=cert.public_bytes(serialization.Encoding.DER),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                created_at=datetime.now(UTC),
            )
        )

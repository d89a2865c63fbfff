"""Medical assistants (a ZUS feature since 2018): a doctor authorises an assistant's account, with
a signature by the doctor's own certificate key over a server challenge that names the assistant
(the challenge is spent; the signature is kept as evidence). The assistant then prepares drafts
for that doctor (``drafts.py``) until the doctor revokes the authorisation; an assistant has no
certificate, so never signs an e-ZLA.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ezla.auth.service import Role, active_role, consume_challenge
from ezla.ca import service as ca_service
from ezla.ca.profile import npwz_of
from ezla.errors import BadRequest, CertificateRevoked, Forbidden, NotFound
from ezla.issuance.models import AssistantAuthorisation
from ezla.proof import holder_message, verify_proof

PURPOSE = "authorise-assistant"


@dataclass(frozen=True)
class Authorisation:
    id: int
    doctor_npwz: str
    assistant_id: int
    granted_at: datetime
    revoked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doctor_npwz": self.doctor_npwz,
            "assistant_id": self.assistant_id,
            "granted_at": self.granted_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _of(a: AssistantAuthorisation) -> Authorisation:
    return Authorisation(a.id, a.doctor_npwz, a.assistant_id, a.granted_at, a.revoked_at)


def message(serial: str, challenge: str, assistant_id: int) -> bytes:
    """What the doctor signs (clients build the same bytes: ``ezla.proof.holder_message``)."""
    return holder_message(PURPOSE, serial, challenge, str(assistant_id))


def authorise(
    session: Session,
    npwz: str,
    *,
    assistant_id: int,
    serial: str,
    challenge: str,
    signature_b64: str,
    now: datetime,
) -> Authorisation:
    if active_role(session, assistant_id, now=now) is not Role.ASSISTANT:
        raise NotFound("no active assistant account with this id")
    cert = ca_service.get_certificate(session, serial)
    if npwz_of(cert) != npwz:
        raise Forbidden("sign with one of your own certificates")
    status = ca_service.signer_status(session, cert)
    if (
        status is None
        or status.revocation is not None
        or not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    ):
        raise CertificateRevoked("the signing certificate is not valid now")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("signature must be base64", field="signature") from exc
    verify_proof(cert, message(serial, challenge, assistant_id), signature)
    consume_challenge(session, challenge, now=now)
    current = _active(session, npwz, assistant_id)
    if current is not None:  # authorising again keeps the authorisation (and evidence) already on file
        return _of(current)
    row = AssistantAuthorisation(
        doctor_npwz=npwz,
        assistant_id=assistant_id,
        certificate_serial=serial,
        challenge=challenge,
        signature=signature_b64,
        granted_at=now,
    )
    session.add(row)
    session.flush()
    return _of(row)


def _active(session: Session, npwz: str, assistant_id: int) -> AssistantAuthorisation | None:
    return session.scalar(
        select(AssistantAuthorisation).where(
            AssistantAuthorisation.doctor_npwz == npwz,
            AssistantAuthorisation.assistant_id == assistant_id,
            AssistantAuthorisation.revoked_at.is_(None),
        )
    )


def revoke(session: Session, npwz: str, assistant_id: int, *, now: datetime) -> None:
    done = session.execute(
        update(AssistantAuthorisation)
        .where(
            AssistantAuthorisation.doctor_npwz == npwz,
            AssistantAuthorisation.assistant_id == assistant_id,
            AssistantAuthorisation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("this assistant holds no authorisation of yours")


def of_doctor(session: Session, npwz: str) -> list[Authorisation]:
    rows = session.scalars(
        select(AssistantAuthorisation)
        .where(AssistantAuthorisation.doctor_npwz == npwz)
        .order_by(AssistantAuthorisation.granted_at.desc())
    ).all()
    return [_of(r) for r in rows]


def doctors_of(session: Session, assistant_id: int) -> set[str]:
    """The doctors who authorise this assistant now."""
    return set(
        session.scalars(
            select(AssistantAuthorisation.doctor_npwz).where(
                AssistantAuthorisation.assistant_id == assistant_id, AssistantAuthorisation.revoked_at.is_(None)
            )
        )
    )

"""Accounts and tokens. Tokens are shown once and stored as SHA-256 (they carry 256 bits)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ezla.auth.models import Account, Challenge
from ezla.errors import BadRequest, ChallengeInvalid, Unauthenticated

CHALLENGE_TTL = timedelta(minutes=5)
DOCTOR_TOKEN_TTL = timedelta(hours=1)


class Role(StrEnum):
    OPERATOR = "operator"
    EMPLOYER = "employer"
    PATIENT = "patient"
    DOCTOR = "doctor"


@dataclass(frozen=True)
class Principal:
    role: Role
    account_id: int
    nip: str | None = None
    pesel: str | None = None
    npwz: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_account(
    session: Session,
    role: Role,
    *,
    now: datetime,
    nip: str | None = None,
    pesel: str | None = None,
    npwz: str | None = None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[Account, str]:
    """Returns the account and its bearer token (the only time the token exists in clear)."""
    if role is Role.EMPLOYER and not (nip or pesel):
        raise BadRequest("an employer account is bound to a NIP (or the PESEL of a person who employs)")
    if role is Role.PATIENT and not pesel:
        raise BadRequest("a patient account is bound to a PESEL")
    token = f"ezla_{role.value[:3]}_{secrets.token_urlsafe(32)}"
    account = Account(
        role=role.value,
        token_hash=_digest(token),
        nip=nip,
        pesel=pesel,
        npwz=npwz,
        label=label,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(account)
    session.flush()
    return account, token


def authenticate(session: Session, token: str, *, now: datetime) -> Principal:
    account = session.scalar(select(Account).where(Account.token_hash == _digest(token)))
    if account is None or (account.expires_at is not None and account.expires_at <= now):
        raise Unauthenticated("unknown or expired token")
    return Principal(Role(account.role), account.id, account.nip, account.pesel, account.npwz)


def issue_challenge(session: Session, *, now: datetime) -> tuple[str, datetime]:
    challenge = secrets.token_urlsafe(32)
    expires_at = now + CHALLENGE_TTL
    session.add(Challenge(challenge_hash=_digest(challenge), expires_at=expires_at))
    return challenge, expires_at


def consume_challenge(session: Session, challenge: str, *, now: datetime) -> None:
    """Single use: the UPDATE ... WHERE used_at IS NULL wins once, on either node."""
    result = session.execute(
        update(Challenge)
        .where(Challenge.challenge_hash == _digest(challenge), Challenge.used_at.is_(None), Challenge.expires_at > now)
        .values(used_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ChallengeInvalid()


def issue_doctor_token(session: Session, npwz: str, *, now: datetime) -> tuple[str, datetime]:
    expires_at = now + DOCTOR_TOKEN_TTL
    _, token = create_account(session, Role.DOCTOR, now=now, npwz=npwz, expires_at=expires_at)
    return token, expires_at

"""Accounts, tokens, challenges and shared failure counters.

Tokens are shown once and stored as SHA-256 (they carry 256 bits). Every token expires (a default
per role), can be revoked, and records when it was last used. A doctor token stands for one
certificate: it expires with it, and the CA revokes it in the same transaction as the certificate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ezla.audit import service as audit
from ezla.auth.models import Account, Secret, SpentChallenge, Throttle
from ezla.document.model import passport_key
from ezla.errors import AccountNotFound, BadRequest, ChallengeInvalid, RateLimited, Unauthenticated
from ezla.proof import CHALLENGE_PATTERN

CHALLENGE_TTL = timedelta(minutes=5)
DOCTOR_TOKEN_TTL = timedelta(hours=1)
# Long enough not to be a chore, short enough that a forgotten token dies: renew by adding another.
DEFAULT_TTL = {
    "operator": timedelta(days=90),
    "employer": timedelta(days=365),
    "patient": timedelta(days=90),
    "doctor": DOCTOR_TOKEN_TTL,
    "assistant": timedelta(days=30),
}
MAX_TTL = timedelta(days=3 * 365)
# last_used_at is written at most this often per token: one write a minute, not one per request.
TOUCH_EVERY = timedelta(seconds=60)


PASSPORT = re.compile(r"([A-Z]{2}):([A-Z0-9]{5,20})")


class Role(StrEnum):
    OPERATOR = "operator"
    EMPLOYER = "employer"
    PATIENT = "patient"
    DOCTOR = "doctor"
    ASSISTANT = "assistant"  # a doctor's medical assistant: prepares drafts, never signs


@dataclass(frozen=True)
class Principal:
    role: Role
    account_id: int
    nip: str | None = None
    pesel: str | None = None
    npwz: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _insert_ignore(
    session: Session, model: type[SpentChallenge] | type[Secret] | type[Throttle], values: dict[str, object]
) -> bool:
    """INSERT unless the key exists; True when this call inserted. Core and RETURNING, so a lost
    race is a no-op, not an aborted transaction (and rowcount is not reliable for it on psycopg)."""
    table = model.__table__
    ins = pg_insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite_insert(table)  # type: ignore[arg-type]
    key = model.__mapper__.primary_key[0]
    return session.execute(ins.values(**values).on_conflict_do_nothing().returning(key)).first() is not None


# --- accounts and tokens -------------------------------------------------------------------
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
    certificate_serial: str | None = None,
    passport: str | None = None,
) -> tuple[Account, str]:
    """Returns the account and its bearer token (the only time the token exists in clear).

    A patient without a PESEL is bound to a passport, ``CC:NUMBER`` (country, number), stored as
    the key derived from it (``ezla.document.model.passport_key``: what their e-ZLA are filed under)."""
    if passport is not None:
        match = PASSPORT.fullmatch(passport)
        if role is not Role.PATIENT or pesel is not None or match is None:
            raise BadRequest("a patient without a PESEL is bound to a passport given as CC:NUMBER", field="passport")
        pesel = passport_key(match[1], match[2])
    if role is Role.EMPLOYER and not (nip or pesel):
        raise BadRequest("an employer account is bound to a NIP (or the PESEL of a person who employs)")
    if role in (Role.PATIENT, Role.ASSISTANT) and not pesel:
        raise BadRequest(f"a {role.value} account is bound to a PESEL")
    if label is not None and (len(label) > 100 or any(not ch.isprintable() for ch in label)):
        raise BadRequest("label must be at most 100 printable characters", field="label")
    expires_at = expires_at or now + DEFAULT_TTL[role.value]
    if not now < expires_at <= now + MAX_TTL:
        raise BadRequest("a token expires in the future, within three years", field="expires_at")
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
        certificate_serial=certificate_serial,
    )
    session.add(account)
    session.flush()
    if role is not Role.DOCTOR:  # doctor logins are audited as the CA's certificate use
        audit.record(session, "account_created", str(account.id), {"role": role.value}, now=now)
    return account, token


def expiry_of(account: Account) -> datetime:
    """An account written by a node of the release before 0007 (a rolling upgrade) has no expiry
    yet: it gets its role's default, counted from creation."""
    if account.expires_at is not None:
        return account.expires_at
    return account.created_at + DEFAULT_TTL.get(account.role, DOCTOR_TOKEN_TTL)


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    needs_touch: bool  # last_used_at is older than TOUCH_EVERY


def authenticate(session: Session, token: str, *, now: datetime) -> Authenticated:
    """A read: the caller records the use (``touch``) in a write transaction when asked to."""
    account = session.scalar(select(Account).where(Account.token_hash == _digest(token)))
    if account is None or account.revoked_at is not None or account.expires_at is None or account.expires_at <= now:
        raise Unauthenticated("unknown, expired or revoked token")
    principal = Principal(Role(account.role), account.id, account.nip, account.pesel, account.npwz)
    stale = account.last_used_at is None or account.last_used_at + TOUCH_EVERY <= now
    return Authenticated(principal, stale)


def active_role(session: Session, account_id: int, *, now: datetime) -> Role | None:
    """The role of an account whose token still works (not revoked, not expired); else None."""
    account = session.get(Account, account_id)
    if account is None or account.revoked_at is not None or account.expires_at is None or account.expires_at <= now:
        return None
    return Role(account.role)


def touch(session: Session, account_id: int, *, now: datetime) -> None:
    session.execute(update(Account).where(Account.id == account_id).values(last_used_at=now))


@dataclass(frozen=True)
class AccountView:
    """An account as operators see it: never the token, and a PESEL only by its last digits."""

    id: int
    role: str
    label: str | None
    nip: str | None
    pesel_hint: str | None
    npwz: str | None
    certificate_serial: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, a: Account, now: datetime) -> AccountView:
        active = a.revoked_at is None and expiry_of(a) > now
        hint = f"*******{a.pesel[-4:]}" if a.pesel else None
        return cls(
            a.id,
            a.role,
            a.label,
            a.nip,
            hint,
            a.npwz,
            a.certificate_serial,
            a.created_at,
            expiry_of(a),
            a.last_used_at,
            a.revoked_at,
            active,
        )


def list_accounts(
    session: Session, *, now: datetime, role: Role | None = None, include_inactive: bool = False, limit: int = 200
) -> list[AccountView]:
    stmt = select(Account).order_by(Account.id.desc()).limit(limit)
    if role is not None:
        stmt = stmt.where(Account.role == role.value)
    if not include_inactive:
        stmt = stmt.where(Account.revoked_at.is_(None), or_(Account.expires_at.is_(None), Account.expires_at > now))
    views = [AccountView.of(a, now) for a in session.scalars(stmt)]
    return views if include_inactive else [v for v in views if v.active]


def revoke_account(session: Session, account_id: int, *, now: datetime, by: str) -> AccountView:
    """Takes effect on the next request on either node: every request reads the account."""
    account = session.get(Account, account_id) if 0 < account_id < 2**62 else None
    if account is None:
        raise AccountNotFound()
    if account.revoked_at is None:
        account.revoked_at = now
        audit.record(session, "account_revoked", str(account.id), {"role": account.role, "by": by}, now=now)
    return AccountView.of(account, now)


def revoke_certificate_tokens(session: Session, serials: list[str], *, now: datetime) -> int:
    """Every doctor token obtained with these certificates stops working (the CA calls this in the
    revocation's transaction)."""
    if not serials:
        return 0
    result = session.execute(
        update(Account)
        .where(Account.certificate_serial.in_(serials), Account.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def issue_doctor_token(
    session: Session, npwz: str, certificate_serial: str, certificate_not_after: datetime, *, now: datetime
) -> tuple[str, datetime]:
    expires_at = min(now + DOCTOR_TOKEN_TTL, certificate_not_after)
    _, token = create_account(
        session, Role.DOCTOR, now=now, npwz=npwz, expires_at=expires_at, certificate_serial=certificate_serial
    )
    return token, expires_at


# --- challenges: stateless until spent -----------------------------------------------------
CHALLENGE_KEY = "challenge-mac"
LEGACY_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def shared_secret(session: Session, name: str, *, create: bool = False) -> bytes | None:
    """A random key the nodes share through the database (challenges, printout codes). Creating
    one must happen in a write transaction of its own (see ``ensure_challenge_key``)."""
    key = session.scalar(select(Secret.value).where(Secret.name == name))
    if key is None and create:
        # Both nodes may get here at once: the first insert wins, both read what won.
        _insert_ignore(session, Secret, {"name": name, "value": secrets.token_bytes(32)})
        key = session.scalar(select(Secret.value).where(Secret.name == name))
    return key


def _challenge_key(session: Session, *, create: bool) -> bytes | None:
    return shared_secret(session, CHALLENGE_KEY, create=create)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"ezla-challenge/1" + body, hashlib.sha256).digest()[:16]


def challenge_key(session: Session) -> bytes | None:
    """The nodes' shared challenge key, if it exists yet (a read)."""
    return _challenge_key(session, create=False)


def ensure_challenge_key(session: Session) -> bytes:
    """Create the key if no challenge was ever given (in a write transaction of its own: on SQLite
    a read transaction that turns into a write fails at once when a writer holds the lock)."""
    key = _challenge_key(session, create=True)
    assert key is not None
    return key


def challenge_with(key: bytes, *, now: datetime) -> tuple[str, datetime]:
    """An expiring challenge signed with the nodes' shared ``key`` (issuing one stores nothing):
    eight bytes of expiry, sixteen random, a 16-byte MAC."""
    expires_at = (now + CHALLENGE_TTL).replace(microsecond=0)
    body = struct.pack(">Q", int(expires_at.timestamp())) + secrets.token_bytes(16)
    raw = body + _mac(key, body)
    return base64.urlsafe_b64encode(raw).decode().rstrip("="), expires_at


def consume_challenge(session: Session, challenge: str, *, now: datetime) -> None:
    """Valid, unexpired and single use: spending inserts its hash, which succeeds once on either node.
    Only the canonical form is accepted (base64 decoding is lenient: several strings decode to the
    same bytes), and the hash is over the bytes, so no variant of one challenge spends twice."""
    if LEGACY_CHALLENGE.fullmatch(challenge):
        _consume_legacy(session, challenge, now=now)
        return
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise ChallengeInvalid()
    raw = base64.urlsafe_b64decode(challenge + "==")
    key = _challenge_key(session, create=False)
    if len(raw) != 40 or key is None or not hmac.compare_digest(raw[24:], _mac(key, raw[:24])):
        raise ChallengeInvalid()
    expires_at = datetime.fromtimestamp(struct.unpack(">Q", raw[:8])[0], UTC)
    if expires_at <= now:
        raise ChallengeInvalid()
    session.execute(delete(SpentChallenge).where(SpentChallenge.expires_at <= now))
    spent = _insert_ignore(
        session,
        SpentChallenge,
        {"challenge_hash": hashlib.sha256(raw).hexdigest(), "expires_at": expires_at, "used_at": now},
    )
    if not spent:
        raise ChallengeInvalid()


def _consume_legacy(session: Session, challenge: str, *, now: datetime) -> None:
    """A challenge a node of the release before 0007 issued (stored when issued) during a rolling
    upgrade: spent with the old conditional UPDATE. Goes with the release after this one."""
    result = session.execute(
        update(SpentChallenge)
        .where(
            SpentChallenge.challenge_hash == _digest(challenge),
            SpentChallenge.used_at.is_(None),
            SpentChallenge.expires_at > now,
        )
        .values(used_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ChallengeInvalid()


# --- failure counters shared by the nodes --------------------------------------------------
@dataclass(frozen=True)
class FailureLimit:
    failures: int
    window: timedelta


def check_failures(session: Session, key: str, limit: FailureLimit, *, now: datetime) -> None:
    """429 once ``key`` has failed ``limit.failures`` times in the current window."""
    row = session.get(Throttle, key)
    if row is not None and row.window_start + limit.window > now and row.failures >= limit.failures:
        retry = int((row.window_start + limit.window - now).total_seconds()) + 1
        raise RateLimited("too many failed attempts from this address", retry_after=retry)


def count_failure(session: Session, key: str, limit: FailureLimit, *, now: datetime) -> None:
    key = key[:100]
    _insert_ignore(session, Throttle, {"key": key, "window_start": now, "failures": 0})  # both nodes may be first
    row = session.get(Throttle, key, with_for_update=True)
    assert row is not None
    if row.window_start + limit.window <= now:
        row.window_start, row.failures = now, 1
    else:
        row.failures += 1
    session.execute(delete(Throttle).where(Throttle.window_start <= now - limit.window - timedelta(hours=1)))

"""The audit trail: record in the state change's transaction, link later, sign the head.

``hash_n = sha256(hash_{n-1} || canonical JSON of (seq, at, action, subject, details))``. Changing
or deleting a linked row breaks every later link; rewriting the whole chain and its head from the
first changed row on breaks the signed checkpoints after it, which only the CA's audit key can make.

Recording is one INSERT into ``audit_pending`` with no lock, so an e-ZLA submission never queues
behind another node's. ``sequence`` (every node's scheduler, and ``ezla audit verify``) takes the
head's row lock and links what is pending, in batches; two nodes sequencing at once take turns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ezla.audit.models import AuditEvent, AuditHead, Checkpoint, PendingEvent

GENESIS = "0" * 64
BATCH = 500


def _ms(at: datetime) -> datetime:
    return at.replace(microsecond=(at.microsecond // 1000) * 1000)  # survive every engine's precision


def _link(prev_hash: str, seq: int, at: datetime, action: str, subject: str, details: str) -> str:
    body = json.dumps([seq, at.isoformat(), action, subject, details], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(session: Session, action: str, subject: str, details: dict[str, Any], *, now: datetime) -> None:
    """An event, in the caller's transaction: it exists exactly when the change it describes does.
    ``details`` is for identifiers and codes, never personal data (PESEL, names, diagnosis)."""
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    session.flush()  # keep ORM writes of the same transaction ahead of this Core insert
    session.execute(insert(PendingEvent).values(at=_ms(now), action=action, subject=subject[:64], details=text))


def lock(session: Session) -> tuple[int, str]:
    """Take the chain's lock (the head row) for the rest of the transaction; also the CA's lock
    for work that must not run on both nodes at once (CRL numbers)."""
    head = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq).returning(AuditHead.seq, AuditHead.hash)
    ).first()
    if head is None:  # a database created without migration 0004 (tests building from metadata)
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))
        session.flush()
        return 0, GENESIS
    return int(head[0]), str(head[1])


def sequence(session: Session, *, limit: int = BATCH) -> int:
    """Link up to ``limit`` pending events into the chain; returns how many."""
    seq, prev = lock(session)
    pending = session.execute(select(PendingEvent).order_by(PendingEvent.id).limit(limit)).scalars().all()
    if not pending:
        return 0
    rows = []
    for ev in pending:
        seq += 1
        digest = _link(prev, seq, ev.at, ev.action, ev.subject, ev.details)
        rows.append(
            {
                "seq": seq,
                "at": ev.at,
                "action": ev.action,
                "subject": ev.subject,
                "details": ev.details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(insert(AuditEvent), rows)
    session.execute(delete(PendingEvent).where(PendingEvent.id.in_([ev.id for ev in pending])))
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    session.expunge_all()
    return len(rows)


def checkpoint_message(seq: int, digest: str, at: datetime) -> bytes:
    """What the audit key signs: domain-separated, so no other ezla signature can pass for one."""
    return f"ezla-audit-checkpoint/1\n{seq}\n{digest}\n{at.isoformat()}\n".encode()


def _signer_sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def checkpoint(
    session: Session, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, *, now: datetime
) -> Checkpoint | None:
    """Sign the head as it is (after linking what is pending). None when the newest checkpoint
    already covers it. Runs under the chain's lock, so the signed head is the stored one."""
    while sequence(session):
        pass
    seq, digest = lock(session)
    if seq == 0 or session.get(Checkpoint, seq) is not None:
        return None
    at = _ms(now)
    signature = key.sign(checkpoint_message(seq, digest, at), ec.ECDSA(hashes.SHA256()))
    row = Checkpoint(seq=seq, hash=digest, at=at, signature=signature, signer_sha256=_signer_sha256(cert))
    session.add(row)
    return row


def latest_checkpoint_at(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Checkpoint.at)))


@dataclass(frozen=True)
class AuditReport:
    events: int
    checkpoints: int
    pending: int
    problems: tuple[str, ...]
    first_broken: int | None  # the seq of the first row that fails, None when intact
    unsigned_tail: int = 0  # linked rows after the newest checkpoint (not yet signed)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Walk:
    problems: list[str] = field(default_factory=list)
    first_broken: int | None = None

    def broken(self, seq: int, problem: str) -> None:
        self.problems.append(problem)
        if self.first_broken is None or seq < self.first_broken:
            self.first_broken = seq


def _checkpoint_valid(cp: dict[str, Any], certs: dict[str, x509.Certificate]) -> bool:
    cert = certs.get(cp["signer_sha256"])
    if cert is None:
        return False
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(cp["signature"], checkpoint_message(cp["seq"], cp["hash"], cp["at"]), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_entries(
    events: Iterator[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    audit_certs: list[x509.Certificate],
    *,
    head: tuple[int, str] | None = None,
    start: tuple[int, str] = (1, GENESIS),
) -> AuditReport:
    """Check a run of events from ``start`` (its first seq and the hash before it) against each
    other, the signed checkpoints and, when given, the stored head. Works on the database and on an
    export alike (``ezla audit export``), so a third party checks offline with the audit certificate."""
    walk = _Walk()
    certs = {_signer_sha256(c): c for c in audit_certs}
    by_seq = {cp["seq"]: cp for cp in checkpoints}
    for cp in checkpoints:
        if not _checkpoint_valid(cp, certs):
            walk.broken(cp["seq"], f"checkpoint at row {cp['seq']}: signature invalid or signer unknown")
    expected_seq, prev = start
    vouched = start[0] - 1  # the newest row a valid checkpoint agreed with
    count = 0
    for ev in events:
        count += 1
        seq = ev["seq"]
        if seq != expected_seq:
            walk.broken(expected_seq, f"row {expected_seq} missing (next is {seq})")
        if ev["prev_hash"] != prev:
            walk.broken(seq, f"row {seq}: previous-hash link broken")
        if _link(ev["prev_hash"], seq, ev["at"], ev["action"], ev["subject"], ev["details"]) != ev["hash"]:
            walk.broken(seq, f"row {seq}: content does not match its hash")
        signed = by_seq.get(seq)
        if signed is not None and signed["hash"] != ev["hash"]:
            # Links alone cannot tell where a consistent rewrite began: after the last row a
            # checkpoint vouched for, at the latest here.
            walk.broken(
                vouched + 1,
                f"rows {vouched + 1}..{seq} rewritten: row {seq} differs from its signed checkpoint",
            )
        elif signed is not None and _checkpoint_valid(signed, certs):
            vouched = seq
        prev, expected_seq = ev["hash"], seq + 1
    last = expected_seq - 1
    for cp_seq in sorted(s for s in by_seq if s > last):
        walk.broken(last + 1, f"checkpoint at row {cp_seq} but the log ends at row {last}: rows deleted at the end")
    if head is not None and (head[0] != last or head[1] != prev):
        walk.broken(last + 1, f"log ends at row {last} but the head says {head[0]}: rows deleted at the end")
    return AuditReport(count, len(checkpoints), 0, tuple(walk.problems), walk.first_broken, max(0, last - vouched))


def _event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "at": ev.at,
        "action": ev.action,
        "subject": ev.subject,
        "details": ev.details,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def _checkpoint_dict(cp: Checkpoint) -> dict[str, Any]:
    return {"seq": cp.seq, "hash": cp.hash, "at": cp.at, "signature": cp.signature, "signer_sha256": cp.signer_sha256}


def events(session: Session, *, first: int = 1, last: int | None = None) -> Iterator[dict[str, Any]]:
    stmt = select(AuditEvent).where(AuditEvent.seq >= first).order_by(AuditEvent.seq)
    if last is not None:
        stmt = stmt.where(AuditEvent.seq <= last)
    for ev in session.scalars(stmt.execution_options(yield_per=1000)):
        yield _event_dict(ev)


def checkpoints(session: Session, *, first: int = 1, last: int | None = None) -> list[dict[str, Any]]:
    stmt = select(Checkpoint).where(Checkpoint.seq >= first).order_by(Checkpoint.seq)
    if last is not None:
        stmt = stmt.where(Checkpoint.seq <= last)
    return [_checkpoint_dict(cp) for cp in session.scalars(stmt)]


# Nodes sign the head every minute; rows that stay unsigned far longer mean signing stopped, or
# that checkpoints were deleted to hide a rewritten tail.
MAX_UNSIGNED_AGE = timedelta(hours=1)


def verify(
    session: Session,
    audit_certs: list[x509.Certificate],
    *,
    now: datetime,
    max_unsigned_age: timedelta = MAX_UNSIGNED_AGE,
) -> AuditReport:
    head = session.get(AuditHead, 1)
    report = verify_entries(
        events(session), checkpoints(session), audit_certs, head=(head.seq, head.hash) if head is not None else None
    )
    problems, first_broken = list(report.problems), report.first_broken
    if report.unsigned_tail:
        first_unsigned = report.events - report.unsigned_tail + 1
        oldest = session.scalar(select(AuditEvent.at).where(AuditEvent.seq == first_unsigned))
        if oldest is not None and now - oldest > max_unsigned_age:
            problems.append(
                f"rows {first_unsigned}..{report.events} are older than {max_unsigned_age} and no checkpoint signs "
                "them: checkpoints were deleted, or no node has signed since"
            )
            first_broken = first_unsigned if first_broken is None else min(first_broken, first_unsigned)
    pending = session.scalar(select(func.count()).select_from(PendingEvent)) or 0
    return AuditReport(report.events, report.checkpoints, pending, tuple(problems), first_broken, report.unsigned_tail)

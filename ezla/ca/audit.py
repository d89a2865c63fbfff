"""Append-only, hash-chained audit log of CA operations.

``hash_n = sha256(hash_{n-1} || canonical JSON of (seq, at, action, subject, details))``. Changing or
deleting any row breaks every later link, which ``verify`` reports. The head row serializes appends
across nodes: its UPDATE takes the row lock on PostgreSQL and the write lock on SQLite.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ezla.ca.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _link(prev_hash: str, seq: int, at: datetime, action: str, subject: str, details: str) -> str:
    body = json.dumps([seq, at.isoformat(), action, subject, details], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append(session: Session, action: str, subject: str, details: dict[str, Any], *, now: datetime) -> AuditEvent:
    head = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    ).first()
    if head is None:
        session.add(AuditHead(id=1, seq=1, hash=GENESIS))
        session.flush()
        seq, prev = 1, GENESIS
    else:
        seq, prev = head
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)  # survive every engine's precision
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    event = AuditEvent(
        seq=seq,
        at=at,
        action=action,
        subject=subject,
        details=text,
        prev_hash=prev,
        hash=_link(prev, seq, at, action, subject, text),
    )
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=event.hash))
    return event


@dataclass(frozen=True)
class AuditReport:
    events: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session) -> AuditReport:
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        count += 1
        if ev.seq != expected_seq:
            problems.append(f"row {expected_seq} missing (next is {ev.seq})")
        if ev.prev_hash != prev:
            problems.append(f"row {ev.seq}: previous-hash link broken")
        if _link(ev.prev_hash, ev.seq, ev.at, ev.action, ev.subject, ev.details) != ev.hash:
            problems.append(f"row {ev.seq}: content does not match its hash")
        prev, expected_seq = ev.hash, ev.seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        problems.append(f"log ends at row {expected_seq - 1} but the head says {head.seq}: rows deleted at the end")
    return AuditReport(count, tuple(problems))

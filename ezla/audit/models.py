"""Tables owned by the audit trail. Other packages go through ``ezla.audit.service``.

The chained tables keep their first names (``ca_audit_*``): the log began as the CA's and its rows
are the start of the same chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezla.db import Base, UtcDateTime


class PendingEvent(Base):
    """An event recorded in its state change's transaction, not yet linked into the chain.

    Writers never take the chain's lock (an e-ZLA submission must not queue behind every other);
    the sequencer links pending events in batches, in the order it finds them committed."""

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash || canonical(row))``."""

    __tablename__ = "ca_audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """A single row that serializes sequencing on both engines (UPDATE takes the row/write lock)."""

    __tablename__ = "ca_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Checkpoint(Base):
    """The chain's head at ``seq``, signed with the CA's audit key: rewriting the chain (and the head)
    without that key breaks every checkpoint after the first rewritten row."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    signer_sha256: Mapped[str] = mapped_column(String(64))  # the audit certificate that signed it

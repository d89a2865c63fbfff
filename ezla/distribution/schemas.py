"""The distribution domain's JSON answers, as types (the API reference is generated from them and
each answer is converted to them before it is sent)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ezla.document.json_views import EzlaForPayer, EzlaJson


class InboxEvent(msgspec.Struct, frozen=True, kw_only=True):
    cursor: str  # continue after this event with ?after=
    event: str  # issued | cancelled
    ezla_id: str
    delivered_at: datetime
    acknowledged_at: datetime | None
    ezla: EzlaForPayer  # as it stood at this event


class InboxPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[InboxEvent]
    next_cursor: str | None  # poll with it; it stays the same when nothing new arrived


class PatientEzla(EzlaJson, frozen=True, kw_only=True):
    ezla_id: str
    last_event: str  # issued | cancelled


class PatientList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PatientEzla]


class DeliveryRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    ezla_id: str
    event: str
    recipient: str  # registry | employer | employer_webhook | patient
    status: str  # pending | delivered | dead
    attempts: int
    idempotency_key: str
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class Deliveries(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeliveryRow]

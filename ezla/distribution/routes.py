"""Employer and patient channels, operator view of the outbox, /metrics."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State

from ezla.auth.guards import principal_of, requires
from ezla.auth.service import Principal, Role
from ezla.db import reading, transaction, utcnow
from ezla.distribution import outbox, schemas, service
from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.outbox import payer_key
from ezla.errors import BadRequest
from ezla.events import EzlaId


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    secret: str


class AckOut(msgspec.Struct, frozen=True):
    ezla_id: str
    acknowledged: bool


class WebhookOut(msgspec.Struct, frozen=True):
    url: str
    signature_header: str  # HMAC-SHA256 of "timestamp.body" with the secret, hex
    timestamp_header: str


class RetryOut(msgspec.Struct, frozen=True):
    requeued: int


def _payer(p: Principal) -> str:
    return payer_key(p.nip, p.pesel)


class EmployerController(Controller):
    path = "/v1/employer"
    tags = ["employer"]
    guards = [requires(Role.EMPLOYER)]

    @get("/ezla", sync_to_thread=True, summary="Inbox: the payer's e-ZLA events, no diagnosis; cursor paging")
    def inbox(
        self, request: Request[Any, Any, State], state: State, after: str | None = None, limit: int = 50
    ) -> schemas.InboxPage:
        with reading(state.sessionmaker) as session:
            page = service.employer_inbox(session, _payer(principal_of(request)), after=after, limit=limit)
        return msgspec.convert({"items": page.items, "next_cursor": page.next_cursor}, schemas.InboxPage)

    @post(
        "/ezla/{ezla_id:str}/ack",
        status_code=200,
        sync_to_thread=True,
        summary="Acknowledge an e-ZLA in the payer's inbox",
    )
    def ack(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> AckOut:
        with transaction(state.sessionmaker) as session:
            service.acknowledge(session, _payer(principal_of(request)), EzlaId(ezla_id), now=utcnow())
        return AckOut(ezla_id, True)

    @put(
        "/webhook",
        status_code=200,
        sync_to_thread=True,
        summary="Set the payer's webhook: each new event is POSTed to it, signed with HMAC",
    )
    def set_webhook(self, data: WebhookIn, request: Request[Any, Any, State], state: State) -> WebhookOut:
        payer = _payer(principal_of(request))
        service.check_webhook_url(
            data.url, WebhookPolicy.from_settings(state.settings)
        )  # resolves: no transaction open
        with transaction(state.sessionmaker) as session:
            service.set_webhook(session, payer, url=data.url, secret=data.secret, now=utcnow())
        return WebhookOut(data.url, "X-Ezla-Signature", "X-Ezla-Timestamp")

    @delete("/webhook", status_code=204, sync_to_thread=True, summary="Remove the payer's webhook")
    def delete_webhook(self, request: Request[Any, Any, State], state: State) -> None:
        with transaction(state.sessionmaker) as session:
            service.delete_webhook(session, _payer(principal_of(request)))


class PatientController(Controller):
    path = "/v1/patient"
    tags = ["patient"]
    guards = [requires(Role.PATIENT)]

    @get("/ezla", sync_to_thread=True, summary="The patient's own e-ZLA (with diagnosis) and cancellations")
    def mine(self, request: Request[Any, Any, State], state: State) -> schemas.PatientList:
        pesel = principal_of(request).pesel
        assert pesel is not None
        with reading(state.sessionmaker) as session:
            return msgspec.convert({"items": service.patient_ezla(session, pesel)}, schemas.PatientList)


class OpsController(Controller):
    path = "/v1/ops"
    tags = ["operations"]
    guards = [requires(Role.OPERATOR)]

    @get("/deliveries", sync_to_thread=True, summary="Outbox rows (status=dead for the dead-letter view)")
    def deliveries(self, state: State, status: str | None = None, limit: int = 100) -> schemas.Deliveries:
        with reading(state.sessionmaker) as session:
            return msgspec.convert(
                {"items": service.deliveries(session, status=status, limit=limit)}, schemas.Deliveries
            )

    @post(
        "/deliveries/retry",
        status_code=200,
        sync_to_thread=True,
        summary="Put dead deliveries back in the queue (operator)",
    )
    def retry(self, state: State, delivery_id: int | None = None) -> RetryOut:
        if delivery_id is not None and not 0 < delivery_id < 2**62:
            raise BadRequest("delivery_id out of range", field="delivery_id")
        with transaction(state.sessionmaker) as session:
            return RetryOut(outbox.retry_dead(session, now=utcnow(), delivery_id=delivery_id))


@get(
    "/metrics",
    media_type="text/plain; version=0.0.4",
    sync_to_thread=True,
    tags=["operations"],
    summary="Prometheus metrics of the delivery queue",
)
def metrics(state: State) -> Response[str]:
    with reading(state.sessionmaker) as session:
        text = service.outbox_metrics(session, now=utcnow())
    return Response(text, media_type="text/plain; version=0.0.4")

"""HTTP surface of issuance. The signed XML is the doctor's credential for writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter

from ezla.audit import service as audit
from ezla.auth.guards import authenticated_by, principal_of, requires
from ezla.auth.service import Role
from ezla.db import reading, transaction, utcnow
from ezla.distribution.outbox import payer_key
from ezla.document.json_views import EzlaJson
from ezla.errors import UnsupportedMediaType
from ezla.events import EzlaId, EzlaStatus
from ezla.idempotency import by_content
from ezla.issuance import assistants, drafts, lists, printouts, reservations, schemas, service, validation
from ezla.issuance.payer_copy import payer_copy as seal_payer_copy
from ezla.log import get_logger
from ezla.problems import ROW_ID
from ezla.ratelimit import bucket

XML_TYPES = ("application/xml", "text/xml")
XSD = "the e-ZLA schema (namespace urn:ezla:sick-leave:1), published at /v1/xsd/sickleave.xsd"


def _xml_body(description: str) -> type[Operation]:
    """OpenAPI for a raw XML request body, which the handler reads itself (Litestar would decode a
    typed ``data`` parameter as JSON)."""

    @dataclass
    class XmlBody(Operation):
        def __post_init__(self) -> None:
            schema = Schema(type=OpenAPIType.STRING, description=description)
            self.request_body = RequestBody(
                content={t: OpenAPIMediaType(schema=schema) for t in XML_TYPES}, required=True
            )

    return XmlBody


SIGNED_SICK_LEAVE = _xml_body(f"A SickLeave signed by its doctor (enveloped XAdES-BES over the whole document); {XSD}.")
SIGNED_CANCELLATION = _xml_body(f"A Cancellation signed by the issuing doctor (enveloped XAdES-BES); {XSD}.")
ANY_DOCUMENT = _xml_body(f"A SickLeave or Cancellation, signed or unsigned; {XSD}.")
UNSIGNED_SICK_LEAVE = _xml_body(f"An unsigned SickLeave; {XSD}.")


class ReservationRequest(msgspec.Struct, forbid_unknown_fields=True):
    count: int


class AuthorisationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The doctor's signature (base64) over ``ezla.proof.holder_message("authorise-assistant",
    serial, challenge, str(assistant_id))`` with the key of the certificate ``serial``."""

    assistant_id: int
    serial: str
    challenge: str
    signature: str


log = get_logger("ezla.issuance")


async def _read_xml(request: Request[Any, Any, Any]) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in XML_TYPES:
        raise UnsupportedMediaType("send the signed document as application/xml")
    return await request.body()


class AcceptedOut(msgspec.Struct, frozen=True):
    """The answer to a submission or a cancellation: the e-ZLA's id, number and status now."""

    id: str
    series: str
    number: str  # seven digits, as printed
    status: str  # issued | cancelled


def _accepted(result: service.Accepted) -> AcceptedOut:
    return AcceptedOut(result.id, result.series, f"{result.number:07d}", result.status)


def _answer(result: service.Accepted) -> Response[AcceptedOut]:
    return Response(
        _accepted(result), status_code=201 if result.created else 200, headers={"Location": f"/v1/ezla/{result.id}"}
    )


class EzlaController(Controller):
    path = "/v1/ezla"
    tags = ["e-ZLA"]

    @post(
        "/",
        status_code=201,
        summary="Submit a signed SickLeave (application/xml)",
        opt={
            **bucket("submission"),
            **by_content(),
            **authenticated_by("the doctor's XAdES signature on the SickLeave"),
        },
        operation_class=SIGNED_SICK_LEAVE,
    )
    async def submit(self, request: Request[Any, Any, State], state: State) -> Response[AcceptedOut]:
        data = await _read_xml(request)

        def run() -> service.Accepted:  # the service opens its own short transactions around the CPU work
            return service.submit(
                state.sessionmaker, state.ca_context().keys, data, now=utcnow(), node_id=state.settings.node_id
            )

        result = await anyio.to_thread.run_sync(run)
        if result.created:
            state.outbox_committed()
        log.info(
            "ezla_accepted" if result.created else "ezla_repeat",
            ezla_id=result.id,
            series=result.series,
            number=result.number,
        )
        return _answer(result)

    @post(
        "/{ezla_id:str}/cancellation",
        status_code=200,
        summary="Cancel with a signed Cancellation",
        opt={
            **bucket("submission"),
            **by_content(),
            **authenticated_by("the doctor's XAdES signature on the Cancellation"),
        },
        operation_class=SIGNED_CANCELLATION,
    )
    async def cancel(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> Response[AcceptedOut]:
        data = await _read_xml(request)

        def run() -> service.Accepted:
            return service.cancel(state.sessionmaker, state.ca_context().keys, EzlaId(ezla_id), data, now=utcnow())

        result = await anyio.to_thread.run_sync(run)
        if result.created:
            state.outbox_committed()
        log.info("ezla_cancelled", ezla_id=result.id)
        return Response(_accepted(result), status_code=200, headers={"Location": f"/v1/ezla/{result.id}"})

    @post(
        "/validation",
        status_code=200,
        guards=[requires(Role.DOCTOR)],
        summary="Dry run: every finding for a signed or unsigned SickLeave or Cancellation; stores nothing",
        opt=bucket("submission"),
        operation_class=ANY_DOCUMENT,
    )
    async def validation(self, request: Request[Any, Any, State], state: State) -> schemas.ValidationOut:
        data = await _read_xml(request)
        npwz = principal_of(request).npwz or ""

        def run() -> validation.Validation:
            return validation.validate(state.sessionmaker, state.ca_context().keys, data, now=utcnow(), npwz=npwz)

        result = await anyio.to_thread.run_sync(run)
        log.info("ezla_validated", valid=result.valid, findings=len(result.findings))
        return msgspec.convert(result.as_json(), schemas.ValidationOut)

    @post(
        "/number-reservations",
        status_code=201,
        guards=[requires(Role.DOCTOR)],
        sync_to_thread=True,
        summary="Reserve e-ZLA numbers for offline work",
        description="Body `{count}` (1-100). Write a reserved `Series`/`Number` on a paper e-ZLA issued "
        "while offline; its electronic copy carrying them is accepted under that number when sent within "
        "the submission delay. Reservations expire (`expires_at`); a number is never given out twice.",
    )
    def reserve_numbers(
        self, request: Request[Any, Any, State], state: State, data: ReservationRequest
    ) -> schemas.Reservations:
        npwz = principal_of(request).npwz or ""
        now = utcnow()
        with transaction(state.sessionmaker) as session:
            made = reservations.reserve(
                session, npwz, data.count, now=now, ttl=timedelta(days=state.settings.reservation_ttl_days)
            )
            audit.record(session, "numbers_reserved", npwz, {"count": len(made)}, now=now)
        return msgspec.convert({"reservations": [r.as_json() for r in made]}, schemas.Reservations)

    @get(
        "/number-reservations",
        guards=[requires(Role.DOCTOR)],
        sync_to_thread=True,
        summary="The calling doctor's reserved numbers not yet used or expired",
    )
    def reserved_numbers(self, request: Request[Any, Any, State], state: State) -> schemas.Reservations:
        npwz = principal_of(request).npwz or ""
        with reading(state.sessionmaker) as session:
            made = [r.as_json() for r in reservations.outstanding(session, npwz, now=utcnow())]
        return msgspec.convert({"reservations": made}, schemas.Reservations)

    @get(
        "/{ezla_id:str}",
        guards=[requires(Role.DOCTOR, Role.OPERATOR)],
        sync_to_thread=True,
        summary="The e-ZLA as JSON, or the signed original with Accept: application/xml",
        responses={
            200: ResponseSpec(
                data_container=EzlaJson, generate_examples=False, description="The whole e-ZLA (or its XML)"
            )
        },
    )
    def read(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> Response[Any]:
        principal = principal_of(request)
        with reading(state.sessionmaker) as session:
            view = service.get_for_doctor_or_operator(
                session, EzlaId(ezla_id), role=principal.role.value, npwz=principal.npwz
            )
        if principal.role is Role.OPERATOR:  # an operator reading a patient's e-ZLA is a look-up to answer for
            with transaction(state.sessionmaker) as session:
                audit.record(session, "ezla_viewed", ezla_id, {"by": principal.account_id}, now=utcnow())
        if "xml" in request.headers.get("accept", ""):
            return Response(view.signed_xml, media_type="application/xml")
        return Response(msgspec.convert(view.full(), EzlaJson))

    @get(
        "/{ezla_id:str}/related",
        guards=[requires(Role.DOCTOR, Role.OPERATOR)],
        sync_to_thread=True,
        summary="The same patient's e-ZLA continuing this one or within 60 days of it",
        description="Each item says whether the diagnosis is the same (`same_diagnosis`), never another "
        "doctor's diagnosis; `relation` is overlapping, continuous or within-60-days.",
    )
    def related(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> schemas.RelatedList:
        principal = principal_of(request)
        with reading(state.sessionmaker) as session:
            service.get_for_doctor_or_operator(session, EzlaId(ezla_id), role=principal.role.value, npwz=principal.npwz)
            return msgspec.convert({"items": lists.related(session, EzlaId(ezla_id))}, schemas.RelatedList)

    @get(
        "/{ezla_id:str}/receipt",
        guards=[requires(Role.DOCTOR, Role.OPERATOR)],
        sync_to_thread=True,
        media_type="application/xml",
        summary="The signed receipt (XAdES) the service gave when it accepted the e-ZLA",
    )
    def receipt(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> bytes:
        principal = principal_of(request)
        with reading(state.sessionmaker) as session:
            view = service.get_for_doctor_or_operator(
                session, EzlaId(ezla_id), role=principal.role.value, npwz=principal.npwz
            )
        return view.receipt_xml

    @get(
        "/{ezla_id:str}/payer-copy",
        guards=[requires(Role.EMPLOYER)],
        sync_to_thread=True,
        media_type="application/xml",
        summary="The payer's copy: the e-ZLA without the diagnosis, sealed by the service (XAdES)",
        description="A `PayerCopy` (GET /v1/xsd/sickleave.xsd) with the e-ZLA's current status, "
        "verifiable with the CA chain (GET /v1/ca/chain).",
    )
    def payer_copy(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> Response[bytes]:
        principal = principal_of(request)
        with reading(state.sessionmaker) as session:
            view = service.get_for_payer(session, EzlaId(ezla_id), payer=payer_key(principal.nip, principal.pesel))
        body = seal_payer_copy(view, state.ca_context().keys, now=utcnow())
        name = f"e-ZLA-{view.series}{view.number:07d}-payer.xml"
        return Response(
            body, media_type="application/xml", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )


class DoctorController(Controller):
    path = "/v1/doctor"
    tags = ["doctor"]
    guards = [requires(Role.DOCTOR)]

    @get(
        "/ezla",
        sync_to_thread=True,
        summary="The calling doctor's e-ZLA, newest first",
        description="`status` (issued, cancelled), `from`/`to` bound the date of issue (both included); "
        "`after` is the previous page's `next_cursor` (null on the last page).",
    )
    def ezla(
        self,
        request: Request[Any, Any, State],
        state: State,
        status: EzlaStatus | None = None,
        issued_from: Annotated[date | None, QueryParameter(name="from")] = None,
        issued_to: Annotated[date | None, QueryParameter(name="to")] = None,
        number: Annotated[str | None, QueryParameter(description="As printed: ZA 0000123")] = None,
        after: str | None = None,
        limit: int = 50,
    ) -> schemas.DoctorPage:
        npwz = principal_of(request).npwz or ""
        with reading(state.sessionmaker) as session:
            page = lists.doctor_ezla(
                session,
                npwz,
                status=status,
                issued_from=issued_from,
                issued_to=issued_to,
                number=printouts.parse_number(number) if number else None,
                after=after,
                limit=limit,
            )
        return msgspec.convert({"items": page.items, "next_cursor": page.next_cursor}, schemas.DoctorPage)

    @post(
        "/assistants",
        status_code=201,
        sync_to_thread=True,
        summary="Authorise a medical assistant to prepare your drafts (signed with your certificate's key)",
    )
    def authorise_assistant(
        self, request: Request[Any, Any, State], state: State, data: AuthorisationRequest
    ) -> schemas.AuthorisationOut:
        npwz = principal_of(request).npwz or ""
        now = utcnow()
        with transaction(state.sessionmaker) as session:
            granted = assistants.authorise(
                session,
                npwz,
                assistant_id=data.assistant_id,
                serial=data.serial.lower(),
                challenge=data.challenge,
                signature_b64=data.signature,
                now=now,
            )
            audit.record(
                session, "assistant_authorised", npwz, {"assistant": data.assistant_id, "serial": data.serial}, now=now
            )
        return msgspec.convert(granted.as_json(), schemas.AuthorisationOut)

    @get("/assistants", sync_to_thread=True, summary="Your assistants' authorisations, revoked ones too")
    def list_assistants(self, request: Request[Any, Any, State], state: State) -> schemas.Authorisations:
        npwz = principal_of(request).npwz or ""
        with reading(state.sessionmaker) as session:
            found = [a.as_json() for a in assistants.of_doctor(session, npwz)]
        return msgspec.convert({"items": found}, schemas.Authorisations)

    @delete("/assistants/{assistant_id:int}", status_code=204, sync_to_thread=True, summary="Revoke an assistant")
    def revoke_assistant(
        self, assistant_id: Annotated[int, ROW_ID], request: Request[Any, Any, State], state: State
    ) -> None:
        npwz = principal_of(request).npwz or ""
        now = utcnow()
        with transaction(state.sessionmaker) as session:
            assistants.revoke(session, npwz, assistant_id, now=now)
            audit.record(session, "assistant_revoked", npwz, {"assistant": assistant_id}, now=now)


class DraftsController(Controller):
    """Drafts for a doctor: written by the doctor or an authorised assistant, signed by the doctor."""

    path = "/v1/drafts"
    tags = ["drafts"]
    guards = [requires(Role.DOCTOR, Role.ASSISTANT)]

    @post(
        "/",
        status_code=201,
        summary="Save an unsigned SickLeave as a draft (validated; findings returned)",
        description="An assistant names the doctor: `?doctor=NPWZ`.",
        operation_class=UNSIGNED_SICK_LEAVE,
    )
    async def create(
        self, request: Request[Any, Any, State], state: State, doctor: str | None = None
    ) -> schemas.DraftOut:
        data = await _read_xml(request)
        who = principal_of(request)

        def run() -> drafts.DraftView:
            return drafts.save(state.sessionmaker, state.ca_context().keys, who, data, doctor=doctor, now=utcnow())

        return msgspec.convert((await anyio.to_thread.run_sync(run)).as_json(), schemas.DraftOut)

    @get("/", sync_to_thread=True, summary="Drafts you may see, newest first")
    def listing(self, request: Request[Any, Any, State], state: State) -> schemas.Drafts:
        found = [d.as_json() for d in drafts.listing(state.sessionmaker, principal_of(request))]
        return msgspec.convert({"items": found}, schemas.Drafts)

    @get(
        "/{draft_id:str}",
        sync_to_thread=True,
        summary="A draft as JSON, or its XML with Accept: application/xml",
        responses={
            200: ResponseSpec(
                data_container=schemas.DraftWithXml, generate_examples=False, description="The draft (or its XML)"
            )
        },
    )
    def read(self, draft_id: str, request: Request[Any, Any, State], state: State) -> Response[Any]:
        view = drafts.get(state.sessionmaker, principal_of(request), draft_id)
        if "xml" in request.headers.get("accept", ""):
            return Response(view.xml, media_type="application/xml")
        return Response(msgspec.convert({**view.as_json(), "xml": view.xml.decode()}, schemas.DraftWithXml))

    @put(
        "/{draft_id:str}",
        status_code=200,
        summary="Replace a draft's XML (validated again)",
        operation_class=UNSIGNED_SICK_LEAVE,
    )
    async def replace(self, draft_id: str, request: Request[Any, Any, State], state: State) -> schemas.DraftOut:
        data = await _read_xml(request)
        who = principal_of(request)

        def run() -> drafts.DraftView:
            return drafts.update(state.sessionmaker, state.ca_context().keys, who, draft_id, data, now=utcnow())

        return msgspec.convert((await anyio.to_thread.run_sync(run)).as_json(), schemas.DraftOut)

    @delete("/{draft_id:str}", status_code=204, sync_to_thread=True, summary="Delete a draft")
    def remove(self, draft_id: str, request: Request[Any, Any, State], state: State) -> None:
        drafts.delete(state.sessionmaker, principal_of(request), draft_id)

"""HTTP surface of the CA (design.md contract). Handlers: decode, one service call, encode."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from urllib.parse import unquote

import anyio
from cryptography.hazmat.primitives import serialization
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.openapi.datastructures import ResponseSpec

from ezla.audit import service as audit
from ezla.auth.guards import authenticated_by, principal_of, requires
from ezla.auth.service import Role
from ezla.bearer import bearer_token
from ezla.ca import schemas, service, tsa
from ezla.ca.keystore import Generation
from ezla.db import reading, transaction, utcnow
from ezla.errors import BadRequest, NotFound, OcspRequestMalformed, UnsupportedMediaType
from ezla.ratelimit import bucket, client_address

# Responses that carry a credential: never cached, never kept for Idempotency-Key replay.
NO_STORE = CacheControlHeader(no_store=True)

PEM_CHAIN = "application/pem-certificate-chain"
OCSP_RESPONSE = "application/ocsp-response"
MAX_OCSP_REQUEST = 10_000


def ca(state: State) -> service.CaContext:
    return state.ca_context()  # type: ignore[no-any-return]


def refresh_crl_if_stale(state: State, generation: int = 1) -> bytes:
    """The CRL of issuing CA ``generation``, made anew after a revocation or when due."""
    refresh = timedelta(hours=state.settings.crl_refresh_hours)
    return service.publish_crl(state.sessionmaker, ca(state), now=utcnow(), refresh=refresh, generation=generation).der


def _generation(state: State, number: int) -> Generation:
    found = ca(state).keys.generation(number) if number >= 1 else None
    if found is None:
        raise NotFound(f"no issuing CA number {number}")
    return found


def ocsp_answer(state: State, der: bytes) -> bytes:
    return service.ocsp_response(state.sessionmaker, ca(state), der, now=utcnow())


class DoctorLoginController(Controller):
    """``/v1/auth/doctor-token``: the CA vouches for its certificate, auth mints the token."""

    path = "/v1/auth"
    tags = ["auth"]

    @post(
        "/doctor-token",
        status_code=200,
        sync_to_thread=True,
        cache_control=NO_STORE,
        opt={**bucket("login"), **authenticated_by("a challenge signed with the doctor's certificate key")},
        summary="Log in as a doctor: a token for a challenge signed with your certificate's key",
    )
    def doctor_token(self, data: schemas.DoctorTokenIn, state: State) -> schemas.TokenOut:
        with transaction(state.sessionmaker) as session:
            token = service.log_in_doctor(session, data.certificate_pem, data.challenge, data.signature, now=utcnow())
        return schemas.TokenOut(token.token, token.expires_at)


class CaController(Controller):
    path = "/v1/ca"
    tags = ["certificate authority"]

    @post(
        "/doctors",
        guards=[requires(Role.OPERATOR)],
        status_code=201,
        sync_to_thread=True,
        cache_control=NO_STORE,
        summary="Register a doctor (operator): returns the first activation code",
    )
    def register_doctor(self, data: schemas.DoctorIn, state: State) -> schemas.RegistrationOut:
        with transaction(state.sessionmaker) as session:
            reg = service.register_doctor(
                session,
                npwz=data.npwz,
                pesel=data.pesel,
                given_name=data.given_name,
                family_name=data.family_name,
                ttl=timedelta(hours=state.settings.activation_code_ttl_hours),
                now=utcnow(),
            )
        return schemas.RegistrationOut(reg.npwz, reg.activation_code, reg.expires_at)

    @post(
        "/doctors/{npwz:str}/activation-codes",
        guards=[requires(Role.OPERATOR)],
        status_code=201,
        sync_to_thread=True,
        cache_control=NO_STORE,
        summary="Give a registered doctor a new activation code (operator)",
    )
    def new_activation_code(self, npwz: str, state: State) -> schemas.RegistrationOut:
        with transaction(state.sessionmaker) as session:
            reg = service.new_activation_code(
                session, npwz, ttl=timedelta(hours=state.settings.activation_code_ttl_hours), now=utcnow()
            )
        return schemas.RegistrationOut(reg.npwz, reg.activation_code, reg.expires_at)

    @get(
        "/doctors/{npwz:str}",
        guards=[requires(Role.OPERATOR)],
        sync_to_thread=True,
        summary="A doctor with every certificate's status and lineage (operator)",
    )
    def doctor(self, npwz: str, request: Request[object, object, State], state: State) -> schemas.DoctorOut:
        """The doctor with every certificate's status and lineage, and the activation codes used."""
        with transaction(state.sessionmaker) as session:
            record = service.doctor_record(session, npwz)
            audit.record(session, "doctor_viewed", npwz, {"by": principal_of(request).account_id}, now=utcnow())
        return schemas.DoctorOut.of(record)

    @post(
        "/enrollments",
        status_code=201,
        sync_to_thread=True,
        opt={**bucket("enrollment"), **authenticated_by("the one-time activation code in the body")},
        summary="Enroll with an activation code: a certificate for your CSR, or a key and certificate in PKCS#12",
        responses={
            201: ResponseSpec(
                data_container=schemas.IssuedOut,
                generate_examples=False,
                description="For a CSR: the certificate and chain. With pkcs12_password instead: the key and "
                "certificate as application/x-pkcs12 (X-Ezla-Serial names the certificate).",
            )
        },
    )
    def enroll(
        self, data: schemas.EnrollmentIn, request: Request[object, object, State], state: State
    ) -> Response[object]:
        # The service runs its own short transactions around the CPU work (lint, sign, key, KDF).
        if (data.csr_pem is None) == (data.pkcs12_password is None):
            raise BadRequest("send exactly one of csr_pem or pkcs12_password")
        requester = service.Requester(client_address(request, state.settings.trusted_proxies), data.npwz)
        if data.csr_pem is not None:
            issued = service.enroll_with_csr(
                state.sessionmaker,
                ca(state),
                activation_code=data.activation_code,
                csr_pem=data.csr_pem,
                now=utcnow(),
                requester=requester,
            )
            body = schemas.IssuedOut(
                issued.serial, issued.certificate_pem, issued.chain_pem, issued.certificate.not_valid_after_utc
            )
            return Response(body, status_code=201, headers={"Location": f"/v1/ca/certificates/{issued.serial}"})
        assert data.pkcs12_password is not None
        issued, p12 = service.enroll_with_pkcs12(
            state.sessionmaker,
            ca(state),
            activation_code=data.activation_code,
            password=data.pkcs12_password,
            now=utcnow(),
            requester=requester,
        )
        return Response(
            p12,
            status_code=201,
            media_type="application/x-pkcs12",
            headers={
                "Location": f"/v1/ca/certificates/{issued.serial}",
                "X-Ezla-Serial": issued.serial,
                "Content-Disposition": f'attachment; filename="{issued.serial}.p12"',
            },
        )

    @get(
        "/chain",
        media_type=PEM_CHAIN,
        sync_to_thread=False,
        summary="The CA chain as PEM: every issuing CA (newest first; more than one after a rollover), then the root",
    )
    def chain(self, state: State) -> str:
        keys = ca(state).keys
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in keys.chain)

    @get("/issuing.cer", media_type="application/pkix-cert", sync_to_thread=False, include_in_schema=False)
    def issuing_cer(self, state: State) -> bytes:
        first = ca(state).keys.all_generations[0]  # the URL in the first CA's certificates
        return first.issuing.public_bytes(serialization.Encoding.DER)

    @get(
        "/issuing/{generation:int}",
        media_type="application/pkix-cert",
        sync_to_thread=False,
        summary="Issuing CA number N (DER): the AIA of the certificates it issued points here",
    )
    def issuing_generation(self, generation: int, state: State) -> bytes:
        return _generation(state, generation).issuing.public_bytes(serialization.Encoding.DER)

    @get(
        "/crl/{generation:int}",
        media_type="application/pkix-crl",
        sync_to_thread=True,
        summary="The current CRL of issuing CA number N (DER); /v1/ca/crl is the first one's",
    )
    def crl_generation(self, generation: int, state: State) -> bytes:
        _generation(state, generation)
        return refresh_crl_if_stale(state, generation)

    @get("/root.cer", media_type="application/pkix-cert", sync_to_thread=False, include_in_schema=False)
    def root_cer(self, state: State) -> bytes:
        return ca(state).keys.root.public_bytes(serialization.Encoding.DER)

    @get("/root.crl", media_type="application/pkix-crl", sync_to_thread=True, include_in_schema=False)
    def root_crl(self, state: State) -> bytes:
        return (state.settings.pki_dir / "issued" / "root.crl").read_bytes()  # type: ignore[no-any-return]

    @get(
        "/certificates/{serial:str}",
        media_type="application/pem-certificate-chain",
        sync_to_thread=True,
        summary="A certificate by serial number, as PEM",
    )
    def certificate(self, serial: str, state: State) -> str:
        with reading(state.sessionmaker) as session:
            cert = service.get_certificate(session, serial)
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    @post(
        "/certificates/{serial:str}/revocation",
        status_code=200,
        sync_to_thread=True,
        summary="Revoke a certificate (its holder, with a signed proof, or an operator)",
        opt=authenticated_by("the holder's proof signed with the certificate's key, or an operator token"),
    )
    def revoke(
        self,
        serial: str,
        data: schemas.RevocationIn,
        request: Request[object, object, State],
        state: State,
    ) -> schemas.RevocationOut:
        if bearer_token(request) is not None:
            principal = principal_of(request)
            if principal.role is not Role.OPERATOR:
                raise BadRequest("only an operator token may revoke; holders sign a challenge instead")
            by = "operator"
        else:
            by = "holder"
        with transaction(state.sessionmaker) as session:
            revoked = service.revoke(
                session,
                serial,
                reason=data.reason,
                now=utcnow(),
                by=by,
                challenge=data.challenge,
                signature=data.signature,
                compromised_at=data.compromised_at if by == "operator" else None,
            )
        # A fresh CRL at once (a changed reason does not move the newest revocation time).
        service.publish_crls(state.sessionmaker, ca(state), now=utcnow())
        return schemas.RevocationOut(
            revoked.serial,
            revoked.status,
            revoked.reason,
            revoked.revoked_at,
            list(revoked.lineage),
            revoked.tokens_revoked,
        )

    @post(
        "/certificates/{serial:str}/renewal",
        status_code=201,
        sync_to_thread=True,
        opt={**bucket("enrollment"), **authenticated_by("a proof signed with the certificate's key")},
        summary="Renew a certificate before it expires, proven with its key",
    )
    def renew(self, serial: str, data: schemas.RenewalIn, state: State) -> schemas.IssuedOut:
        issued = service.renew(
            state.sessionmaker,
            ca(state),
            serial,
            csr_pem=data.csr_pem,
            challenge=data.challenge,
            signature=data.signature,
            now=utcnow(),
        )
        return schemas.IssuedOut(
            issued.serial, issued.certificate_pem, issued.chain_pem, issued.certificate.not_valid_after_utc
        )

    @get(
        "/crl",
        media_type="application/pkix-crl",
        sync_to_thread=True,
        summary="The current CRL of the issuing CA (DER)",
    )
    def crl(self, state: State) -> bytes:
        return refresh_crl_if_stale(state)

    @post(
        "/ocsp",
        media_type=OCSP_RESPONSE,
        status_code=200,
        opt=bucket("ocsp"),
        summary="OCSP (RFC 6960) request in the body",
    )
    async def ocsp_post(self, request: Request[object, object, State], state: State) -> bytes:
        body = await request.body()  # raw DER: Litestar would otherwise try to decode JSON
        if len(body) > MAX_OCSP_REQUEST:
            raise OcspRequestMalformed("request too large")
        return await anyio.to_thread.run_sync(ocsp_answer, state, body)

    @get(
        "/ocsp/{encoded:path}",
        media_type=OCSP_RESPONSE,
        sync_to_thread=True,
        opt=bucket("ocsp"),
        summary="OCSP (RFC 6960) request in the URL",
    )
    def ocsp_get(self, encoded: str, request: Request[object, object, State], state: State) -> bytes:
        # RFC 6960 A.1: base64 of the DER, URL-encoded. Read the raw path: the router's normalised one
        # folds "//" and drops a trailing "/", both legal in base64 (about 2% of requests).
        raw = request.scope.get("raw_path") or b""
        prefix = b"/v1/ca/ocsp/"
        text = (
            unquote(raw[raw.index(prefix) + len(prefix) :].decode("latin-1")) if prefix in raw else encoded.lstrip("/")
        )
        try:
            der = base64.b64decode(
                text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None
            )
        except (binascii.Error, ValueError) as exc:
            raise OcspRequestMalformed("not base64") from exc
        return ocsp_answer(state, der)


TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"


def tsa_answer(state: State, der: bytes) -> bytes:
    return service.timestamp_reply(ca(state), der, now=utcnow())


class TsaController(Controller):
    """``/v1/tsa``: the CA's time-stamping authority (RFC 3161 over HTTP, section 3.4)."""

    path = "/v1/tsa"
    tags = ["ca"]

    @post(
        "/",
        media_type=TIMESTAMP_REPLY,
        status_code=200,
        opt={**bucket("tsa"), **authenticated_by("no token: a public service, rate-limited per client")},
        summary="Time-stamp a hash (RFC 3161): TimeStampReq in, TimeStampResp out",
        description=(
            "Body: a DER TimeStampReq (`Content-Type: application/timestamp-query`), e.g. from "
            "`openssl ts -query -data FILE -sha256 -cert`. Answer: a DER TimeStampResp. Policy "
            f"{tsa.TSA_POLICY} (ETSI EN 319 421 best practices), accuracy 1 s, nonces echoed; a query "
            "that cannot be granted (SHA-1, another policy, extensions, malformed) gets a rejection "
            "status in the reply, not an HTTP error. Verify with `openssl ts -verify -in reply.tsr "
            "-data FILE -CAfile root.pem -untrusted issuing.pem`."
        ),
    )
    async def stamp(self, request: Request[object, object, State], state: State) -> bytes:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != TIMESTAMP_QUERY:
            raise UnsupportedMediaType(f"send a DER TimeStampReq as {TIMESTAMP_QUERY}")
        body = await request.body()  # raw DER
        return await anyio.to_thread.run_sync(tsa_answer, state, body[: tsa.MAX_QUERY_BYTES + 1])

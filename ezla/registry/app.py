"""The registry as its own Litestar app (``ezla registry serve``), with its own database."""

from __future__ import annotations

import functools
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Controller, Litestar, Request, Response, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezla.bearer import bearer_token
from ezla.db import make_engine, make_sessionmaker, transaction, utcnow
from ezla.document.model import passport_key
from ezla.errors import BadRequest, EzlaError, Forbidden, NotFound, Unauthenticated
from ezla.events import EzlaId
from ezla.log import configure_logging, get_logger, request_context
from ezla.problems import EXCEPTION_HANDLERS
from ezla.registry import evidence, service
from ezla.settings import Settings, get_settings

log = get_logger("ezla.registry")
MAX_BATCH = 50  # e-ZLA per batch ingest: with their signed originals, well under the body cap


def _refusal(exc: EzlaError) -> dict[str, Any]:
    """One refused item of a batch, as its problem document would say it."""
    return {"status": exc.status, "code": exc.code, "detail": exc.detail}


def _token_guard(setting: str) -> Any:
    """Writing (the nodes) and reading (ZUS staff, tests) are separate credentials."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        expected = getattr(connection.app.state.settings, setting)
        given = bearer_token(connection)
        if given is None:
            raise Unauthenticated("a registry token is required")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("this token may not do that here")

    return guard


may_write = _token_guard("registry_token")
may_read = _token_guard("registry_read_token")


def _ingest_one(session: Session, item: service.Item, *, now: datetime) -> service.Ingested | EzlaError:
    try:
        with session.begin_nested():
            return service.ingest(session, item.ezla_id, item.event, item.key, item.evidence, now=now)
    except EzlaError as exc:
        return exc


class RegistryController(Controller):
    path = "/v1/registry"
    tags = ["registry"]

    @put(
        "/ezla/{ezla_id:str}",
        guards=[may_write],
        sync_to_thread=True,
        summary="Ingest an e-ZLA or its cancellation (idempotent); only the signed parts are believed",
    )
    def ingest(self, ezla_id: str, data: dict[str, Any], state: State) -> Response[dict[str, Any]]:
        now = utcnow()
        proof = evidence.read(data, state.trust(), now=now)  # CPU: outside the transaction
        with transaction(state.sessionmaker) as session:
            result = service.ingest(
                session, EzlaId(ezla_id), str(data.get("event")), str(data.get("idempotency_key") or ""), proof, now=now
            )
        log.info("registry_ingested", ezla_id=ezla_id, duplicate=result.duplicate, status=result.status)
        return Response(
            {"id": result.ezla_id, "status": result.status, "duplicate": result.duplicate},
            status_code=201 if result.created else 200,
        )

    @post(
        "/batch",
        guards=[may_write],
        sync_to_thread=True,
        status_code=200,
        summary="Ingest many e-ZLA or cancellations in one request; a result per item, in order",
    )
    def ingest_batch(self, data: dict[str, Any], state: State) -> dict[str, Any]:
        """Each item is what ``PUT /ezla/{id}`` takes, plus its ``ezla_id``. Every item is verified
        first (CPU, outside the transaction); then one transaction stores the good ones with two
        reads and one flush (``service.ingest_many``), a refused item costing only itself. The nodes
        send the registry's deliveries this way: one request and one commit for many e-ZLA."""
        items = data.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise BadRequest(f"items must be a list of 1 to {MAX_BATCH} ingests", field="items")
        now = utcnow()
        results: list[dict[str, Any]] = [{} for _ in items]
        proven: list[tuple[int, dict[str, Any], evidence.Evidence]] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict) or not isinstance(item.get("ezla_id"), str):
                    raise BadRequest("each item needs its ezla_id", field="ezla_id")
                proven.append((i, item, evidence.read(item, state.trust(), now=now)))
            except EzlaError as exc:
                results[i] = _refusal(exc)
        batch = [
            service.Item(EzlaId(item["ezla_id"]), str(item.get("event")), str(item.get("idempotency_key") or ""), proof)
            for _, item, proof in proven
        ]
        try:
            with transaction(state.sessionmaker) as session:
                outcomes = service.ingest_many(session, batch, now=now) if batch else []
        except IntegrityError:  # a concurrent ingest of the same e-ZLA: item by item, each in a savepoint
            with transaction(state.sessionmaker) as session:
                outcomes = [_ingest_one(session, entry, now=now) for entry in batch]
        for (i, _, _), outcome in zip(proven, outcomes, strict=True):
            if isinstance(outcome, EzlaError):
                results[i] = _refusal(outcome)
            else:
                results[i] = {
                    "status": 201 if outcome.created else 200,
                    "id": outcome.ezla_id,
                    "state": outcome.status,
                    "duplicate": outcome.duplicate,
                }
        stored = sum(1 for r in results if r.get("status") in (200, 201))
        log.info("registry_batch_ingested", items=len(items), stored=stored)
        return {"results": results}

    @get("/ezla", sync_to_thread=True, guards=[may_read])
    def query(
        self,
        state: State,
        pesel: str | None = None,
        passport: str | None = None,
        nip: str | None = None,
        series: str | None = None,
        number: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """``passport`` finds a patient without a PESEL: ``CC:NUMBER`` (country, number)."""
        if passport is not None:
            country, _, passport_number = passport.partition(":")
            pesel = passport_key(country, passport_number)
        with transaction(state.sessionmaker) as session:
            return {"items": service.query(session, pesel=pesel, nip=nip, series=series, number=number, limit=limit)}

    @get("/ezla/{ezla_id:str}", sync_to_thread=True, guards=[may_read])
    def read(self, ezla_id: str, request: Request[Any, Any, State], state: State) -> Response[Any]:
        with transaction(state.sessionmaker) as session:
            record = service.get(session, EzlaId(ezla_id))
            if "xml" in request.headers.get("accept", ""):
                return Response(record.signed_xml, media_type="application/xml")
            return Response(service.as_json(record))

    @get(
        "/ezla/{ezla_id:str}/long-term",
        sync_to_thread=True,
        media_type="application/xml",
        summary="The archived e-ZLA as XAdES-LT: verifiable offline with `ezla verify --at` and the root",
        guards=[may_read],
    )
    def long_term(self, ezla_id: str, state: State) -> Response[bytes]:
        with transaction(state.sessionmaker) as session:
            record = service.get(session, EzlaId(ezla_id))
            if record.evidence_xml is None:
                raise NotFound("this e-ZLA was archived before long-term evidence existed")
            return Response(record.evidence_xml, media_type="application/xml")

    @get(
        "/ezla/{ezla_id:str}/verification",
        sync_to_thread=True,
        summary="Re-verify the stored e-ZLA: from its long-term evidence when it has it",
        guards=[may_read],
    )
    def verify(self, ezla_id: str, state: State, at: datetime | None = None) -> dict[str, Any]:
        """With XAdES-LT evidence the check needs nothing but the trust anchors, at any ``at`` (default
        now), however long after the doctor's certificate expired; records archived before the
        evidence existed are judged as at their acceptance."""
        with transaction(state.sessionmaker) as session:
            record = service.get(session, EzlaId(ezla_id))
            signed, long_term, accepted_at = record.signed_xml, record.evidence_xml, record.accepted_at
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if long_term is not None:
            result = evidence.verify_long_term_form(long_term, state.trust(), at=when)
            basis, judged_at = "long-term-evidence", result.existed_at
        else:
            result = evidence.verify_sick_leave(signed, state.trust(), at=accepted_at)
            basis, judged_at = "acceptance-time", accepted_at
        return {
            "id": ezla_id,
            "valid": True,
            "basis": basis,
            "signer": result.signer.subject.rfc4514_string(),
            "verified_at_time": judged_at.isoformat() if judged_at else None,
            "validated_at": when.isoformat(),
            "report": result.report.as_dict(),
        }

    @get("/ingest-log", sync_to_thread=True, include_in_schema=False, guards=[may_read])
    def ingest_log(self, state: State) -> dict[str, Any]:
        with transaction(state.sessionmaker) as session:
            return {"counts": service.ingest_counts(session)}


class Health(Controller):
    path = "/health"

    @get("/live", sync_to_thread=False)
    def live(self) -> dict[str, str]:
        return {"status": "ok", "service": "registry"}

    @get("/ready", sync_to_thread=True)
    def ready(self, state: State) -> Response[dict[str, str]]:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means not ready
            return Response({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return Response({"status": "ok", "service": "registry"})


def _trust_loader(published: Path) -> Callable[[], evidence.Trust]:
    marker = published / "current-issuing"  # ezla.ca.keystore.CURRENT_FILE (the registry imports no CA code)

    @functools.lru_cache(maxsize=1)
    def load(_version: int) -> evidence.Trust:
        return evidence.Trust.load(published)

    def current() -> evidence.Trust:
        try:
            return load(marker.stat().st_mtime_ns)
        except FileNotFoundError:
            return load(0)

    return current


def create_registry_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json, node_id="registry")
    engine = make_engine(settings.registry_database_url)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if not settings.registry_token:
            log.warning("registry_token_missing")
        yield
        engine.dispose()

    return Litestar(
        route_handlers=[RegistryController, Health],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_context],
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "sessionmaker": make_sessionmaker(engine),
                # Loaded on first use, so a registry started before `ezla pki init` still serves,
                # and again after `ezla pki rollover` adds an issuing CA.
                "trust": _trust_loader(settings.published_dir),
            }
        ),
        lifespan=[lifespan],
        logging_config=None,  # ezla.log configures structlog JSON for every logger
        request_max_body_size=4_000_000,
    )

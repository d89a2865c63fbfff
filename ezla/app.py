"""The app factory: one Litestar app per node, wired from ``Settings``."""

from __future__ import annotations

import fcntl
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ezla import __version__
from ezla.auth.routes import AccountsController, AuthController
from ezla.ca import keystore
from ezla.ca.routes import CaController, DoctorLoginController, TsaController
from ezla.ca.scheduler import AuditKeeper, CrlRefresher
from ezla.ca.service import CaContext, register_pki_certificates
from ezla.db import is_sqlite, make_engine, make_sessionmaker, transaction, utcnow
from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.channels import Channels
from ezla.distribution.routes import EmployerController, OpsController, PatientController, metrics
from ezla.distribution.worker import Worker
from ezla.errors import EzlaError
from ezla.health import HealthController
from ezla.idempotency import idempotency_middleware
from ezla.insurance.routes import ROUTES as INSURANCE_ROUTES
from ezla.issuance.printouts import printout_key
from ezla.issuance.routes import DoctorController, DraftsController, EzlaController
from ezla.log import configure_logging, get_logger, request_context
from ezla.problems import EXCEPTION_HANDLERS
from ezla.ratelimit import rate_limit_middleware
from ezla.reference import openapi
from ezla.reference.routes import ROUTES as REFERENCE_ROUTES
from ezla.settings import Settings, get_settings
from ezla.web.format import FILTERS as WEB_FILTERS
from ezla.web.operator import ROUTES as OPERATOR_PAGES
from ezla.web.routes import ROUTES as WEB_ROUTES

log = get_logger("ezla.app")
API_DESCRIPTION = """The open e-ZLA service: doctors submit XAdES-signed sick-leave certificates (e-ZLA) and
cancellations; payers, patients and the ZUS registry receive them; a certificate authority issues
the doctors' document-signing certificates, with CRL and OCSP.

Errors are RFC 9457 problem documents (`application/problem+json`); clients switch on `code`, and
GET /v1/rules lists every code in Polish and English. The e-ZLA XML schema is GET
/v1/xsd/sickleave.xsd; the dictionaries are under /v1/dictionaries. Writes accept an
`Idempotency-Key` header. The SDK is `ezla.client.EzlaClient`; the CLI is `ezla`."""
MAX_BODY = 2_000_000


def _ca_loader(settings: Settings) -> Callable[[], Any]:
    """Load the CA keys on first use; a node without PKI still answers health checks. (A failed
    load is not cached, so ``ezla pki init`` takes effect without a restart.) Loaded again when
    ``ezla pki rollover`` has made a new issuing CA current: both twins switch within a request,
    without a restart, and keep the older CAs for what those issued."""
    marker = settings.pki_dir / "issued" / keystore.CURRENT_FILE

    @functools.lru_cache(maxsize=1)
    def load(_version: int) -> Any:
        return CaContext.from_settings(settings)

    def current() -> Any:
        try:
            version = marker.stat().st_mtime_ns  # a stat per call: about a microsecond
        except FileNotFoundError:
            version = 0
        return load(version)

    return current


def claim_sqlite_node(url: str) -> Any:
    """SQLite is single-node: a second node on the same file would split the outbox and the
    numbering lock across processes that can't see each other's leases. Refuse it."""
    if not is_sqlite(url) or ":memory:" in url:
        return None
    path = Path(url.split("///", 1)[1] + ".node-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        log.error("sqlite_second_node_refused", database=str(path.with_suffix("")))
        raise SystemExit(
            "another ezla node already serves this SQLite database; use PostgreSQL for two nodes"
        ) from None
    return handle


def make_worker(settings: Settings, sessionmaker: Any) -> Worker:
    channels = Channels(
        registry_url=settings.registry_url,
        registry_token=settings.registry_token,
        deadline=settings.delivery_deadline_seconds,
        factory=sessionmaker,
        webhook_policy=WebhookPolicy.from_settings(settings),
    )
    return Worker(
        sessionmaker,
        channels,
        node_id=settings.node_id,
        lease=timedelta(seconds=settings.lease_seconds),
        poll=settings.worker_poll_seconds,
        dead_after=timedelta(seconds=settings.dead_letter_after_seconds),
        retry_cap=settings.retry_cap_seconds,
        concurrency=settings.delivery_concurrency,
        per_destination=settings.delivery_per_destination,
    )


def _template_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(WEB_FILTERS)


def create_app(settings: Settings | None = None) -> Litestar:
    """Handlers open their own short transactions (``ezla.db.transaction``) or hand the
    sessionmaker to a service that does. Deliberately not Litestar's SQLAlchemy plugin: its
    request-long session would hold a transaction (on SQLite, the write lock) across the CPU work
    of verification and signing, and its autocommit hook waits on the same thread pool."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json, node_id=settings.node_id)
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)

    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessionmaker": sessionmaker,
            "draining": False,
            "ca_context": _ca_loader(settings),
            # Called after a transaction that wrote outbox rows: this node's worker starts at once.
            "outbox_committed": lambda: None,
        }
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        node_lock = claim_sqlite_node(settings.database_url)
        try:
            ctx = app.state.ca_context()
            with transaction(sessionmaker) as session:
                register_pki_certificates(session, ctx, now=utcnow())
        except EzlaError as exc:
            log.warning("ca_not_loaded", code=exc.code)
        except IntegrityError:
            log.info("pki_certificates_recorded_by_twin")  # both nodes started at once; the twin won
        try:
            with transaction(sessionmaker) as session:
                printout_key(session, create=True)  # for the codes printed on e-ZLA (issuance.printouts)
        except (SQLAlchemyError, EzlaError) as exc:  # pages show no code until a later start makes it
            log.warning("printout_key_not_made", error=type(exc).__name__)
        worker = make_worker(settings, sessionmaker) if settings.worker_enabled else None
        if worker is not None:
            worker.start()
            app.state.outbox_committed = worker.wake
        crl_refresher = CrlRefresher(
            sessionmaker, app.state.ca_context, refresh=timedelta(hours=settings.crl_refresh_hours)
        )
        audit_keeper = AuditKeeper(sessionmaker, app.state.ca_context)
        if settings.worker_enabled:
            crl_refresher.start()
            audit_keeper.start()
        app.state.worker = worker
        log.info("node_started", version=__version__, worker=worker is not None)
        try:
            yield
        finally:
            app.state.draining = True
            log.info("node_stopping")
            crl_refresher.stop()
            audit_keeper.stop()
            if worker is not None:
                worker.stop()
            engine.dispose()
            if node_lock is not None:
                node_lock.close()

    app = Litestar(
        route_handlers=[
            HealthController,
            CaController,
            TsaController,
            AuthController,
            AccountsController,
            DoctorLoginController,
            EzlaController,
            DoctorController,
            DraftsController,
            EmployerController,
            PatientController,
            OpsController,
            metrics,
            *WEB_ROUTES,
            *OPERATOR_PAGES,
            *REFERENCE_ROUTES,
            openapi.docs_asset,
            *INSURANCE_ROUTES,
        ],
        template_config=TemplateConfig(
            directory=[Path(str(files(package) / "templates")) for package in ("ezla.reference", "ezla.web")],
            engine=JinjaTemplateEngine,
            engine_callback=_template_filters,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_context, *rate_limit_middleware(settings), idempotency_middleware],
        state=state,
        lifespan=[lifespan],
        logging_config=None,  # ezla.log configures structlog JSON for every logger
        request_max_body_size=MAX_BODY,
        openapi_config=OpenAPIConfig(
            title="ezla",
            version=__version__,
            description=API_DESCRIPTION,
            render_plugins=[openapi.DOCS],
        ),
        before_request=openapi.refuse_unknown_query,
        debug=False,
    )
    openapi.complete(app)
    return app

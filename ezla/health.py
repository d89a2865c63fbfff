"""Liveness, readiness (database reachable, CA keys loaded, not draining) and Prometheus text."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy import text

from ezla.errors import EzlaError


class Live(msgspec.Struct, frozen=True):
    status: str
    node: str


class Ready(msgspec.Struct, frozen=True):
    status: str  # ok | unavailable (then the answer is 503)
    node: str
    draining: bool
    database: str  # ok, or the driver's error class
    ca: str  # ok, or the problem code (pki-not-initialised, pki-passphrase-wrong)


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]
    include_in_schema = True

    @get("/live", sync_to_thread=False, summary="Liveness: the process answers")
    def live(self, state: State) -> Live:
        return Live("ok", state.settings.node_id)

    @get(
        "/ready",
        sync_to_thread=True,
        summary="Readiness: the database answers and the node is not draining",
        responses={
            503: ResponseSpec(
                data_container=Ready, generate_examples=False, description="Not ready: the checks say why"
            )
        },
    )
    def ready(self, state: State) -> Response[Ready]:
        database, ca = "ok", "ok"
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means not ready
            database = type(exc).__name__
        try:
            state.ca_context()
        except EzlaError as exc:
            ca = exc.code
        ok = database == "ok" and ca == "ok" and not state.draining
        answer = Ready("ok" if ok else "unavailable", state.settings.node_id, bool(state.draining), database, ca)
        return Response(answer, status_code=200 if ok else 503)

"""Liveness, readiness (database reachable, CA keys loaded, not draining) and Prometheus text."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State
from sqlalchemy import text

from ezla.errors import EzlaError


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]
    include_in_schema = True

    @get("/live", sync_to_thread=False, summary="Liveness: the process answers")
    def live(self, state: State) -> dict[str, str]:
        return {"status": "ok", "node": state.settings.node_id}

    @get("/ready", sync_to_thread=True, summary="Readiness: the database answers and the node is not draining")
    def ready(self, state: State) -> Response[dict[str, object]]:
        checks: dict[str, object] = {"draining": state.draining}
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means not ready
            checks["database"] = type(exc).__name__
        try:
            state.ca_context()
            checks["ca"] = "ok"
        except EzlaError as exc:
            checks["ca"] = exc.code
        ok = checks["database"] == "ok" and checks["ca"] == "ok" and not state.draining
        return Response(
            {"status": "ok" if ok else "unavailable", "node": state.settings.node_id, **checks},
            status_code=200 if ok else 503,
        )

"""Run a node under uvicorn with a draining shutdown.

SIGTERM (or SIGINT): readiness turns 503 at once, so the load balancer stops sending new work; after
``EZLA_DRAIN_SECONDS`` uvicorn stops accepting, finishes in-flight requests, then the lifespan
shutdown stops workers and releases their delivery leases. A second signal exits immediately.
"""

from __future__ import annotations

import contextlib
import os
import threading
from types import FrameType

import click
import uvicorn

from ezla.app import create_app
from ezla.clikit import json_option
from ezla.log import get_logger
from ezla.settings import Settings

log = get_logger("ezla.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.loaded_app
        state = getattr(getattr(app, "app", app), "state", None)
        if self._draining or state is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        state.draining = True
        timer = threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
        # Logged after the exit is scheduled: a broken log pipe must never keep a node from stopping.
        with contextlib.suppress(OSError):
            log.info("node_draining", seconds=self.drain_seconds)


def run_node(*, host: str, port: int, node_id: str | None, workers: bool) -> None:
    settings = Settings.from_env()
    if node_id:
        settings = settings.with_(node_id=node_id)
    settings = settings.with_(worker_enabled=workers and settings.worker_enabled)
    app = create_app(settings)
    # proxy_headers off: which X-Forwarded-For to believe is ezla.ratelimit's one decision
    # (EZLA_TRUSTED_PROXIES), not also uvicorn's (FORWARDED_ALLOW_IPS).
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        lifespan="on",
        proxy_headers=False,
    )
    server = DrainingServer(config, float(os.environ.get("EZLA_DRAIN_SECONDS", "3")))
    log.info("node_listening", url=f"http://{host}:{port}", node=settings.node_id)
    server.run()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--node-id", default=None, help="Overrides EZLA_NODE_ID.")
@click.option("--workers/--no-workers", default=True, help="Run delivery workers in this node.")
@json_option
def serve(host: str, port: int, node_id: str | None, workers: bool, as_json: bool) -> None:
    """Run one node (logs are JSON lines; --json is accepted for symmetry with every verb)."""
    run_node(host=host, port=port, node_id=node_id, workers=workers)

"""``ezla registry serve`` and ``ezla registry db-upgrade``."""

from __future__ import annotations

import click
import uvicorn

from ezla.clikit import emit_upgrade, json_option, settings
from ezla.log import get_logger
from ezla.migrate import upgrade_registry
from ezla.registry.app import create_registry_app


@click.group("registry")
def registry() -> None:
    """The ZUS registry service (its own process and database)."""


@registry.command("db-upgrade")
@click.option("--contract", is_flag=True, help="Also apply contract migrations (see `ezla db upgrade`).")
@json_option
def db_upgrade(contract: bool, as_json: bool) -> None:
    """Apply the registry's expand migrations (all of them on a new database)."""

    url = settings().registry_database_url
    emit_upgrade(as_json, upgrade_registry(url, contract=contract), url)


@registry.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@json_option
def serve(host: str, port: int, as_json: bool) -> None:
    """Run the registry."""

    get_logger("ezla.registry").info("registry_listening", url=f"http://{host}:{port}")
    uvicorn.run(create_registry_app(settings()), host=host, port=port, log_config=None, access_log=False)

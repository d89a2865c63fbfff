"""Run alembic programmatically: ``ezla db upgrade`` and the test fixtures use this."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from ezla.db import normalise_url


def alembic_config(url: str, *, script_location: str = "ezla:migrations") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def upgrade_registry(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, script_location="ezla.registry:migrations"), revision)

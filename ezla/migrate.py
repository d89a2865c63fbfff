"""Databases and their schemas: create a missing PostgreSQL database, run alembic (``ezla db
upgrade``, ``ezla registry db-upgrade``, the cluster tool and the test fixtures use this)."""

from __future__ import annotations

import re

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ezla.db import normalise_url


class DatabaseCreationFailed(RuntimeError):
    """The PostgreSQL database named in a URL is missing and cannot be created."""


def alembic_config(url: str, *, script_location: str = "ezla:migrations") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def upgrade_registry(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, script_location="ezla.registry:migrations"), revision)


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in ``url`` if it is missing; True when created.

    Connects to the ``postgres`` maintenance database of the same server through the same URL
    handling as the nodes (``ezla.db.normalise_url``), so a multi-host URL with
    ``target_session_attrs=read-write`` reaches the primary (docs/postgres-ha.md).
    """

    target = make_url(normalise_url(url))
    dbname = target.database
    if not dbname:
        raise DatabaseCreationFailed(f"no database name in {redact(url)}")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    quoted = '"' + dbname.replace('"', '""') + '"'
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).first():
                return False
            conn.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42P04":  # duplicate_database: a concurrent start won
            return False
        raise DatabaseCreationFailed(f"cannot create database {dbname} at {redact(url)}: {exc.orig}") from exc
    finally:
        admin.dispose()


def redact(url: str) -> str:
    """A URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

"""Databases and their schemas: create a missing PostgreSQL database, run alembic (``ezla db
upgrade``, ``ezla registry db-upgrade``, the cluster tool and the test fixtures use this).

Migrations are expand/contract (docs/postgres-ha.md). An *expand* migration only adds, so the
release before keeps working on the new schema while the twins are upgraded one at a time. A
*contract* migration (its docstring says "Contract:") requires or removes something the release
before still relies on; it must wait until no node of that release is left. ``upgrade`` therefore
stops before the first contract migration of an existing database unless asked (``--contract``);
a new, empty database has no older node and gets everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ezla.db import make_engine, normalise_url

NODE_MIGRATIONS = "ezla:migrations"
REGISTRY_MIGRATIONS = "ezla.registry:migrations"


class DatabaseCreationFailed(RuntimeError):
    """The PostgreSQL database named in a URL is missing and cannot be created."""


def alembic_config(url: str, *, script_location: str = NODE_MIGRATIONS) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


@dataclass(frozen=True)
class Upgraded:
    """Where an upgrade left the schema, and the contract migrations it held back."""

    before: str | None
    after: str | None
    held_back: list[str] = field(default_factory=list)


def is_contract(script: Script) -> bool:
    return "Contract:" in (script.module.__doc__ or "")


def current_revision(url: str) -> str | None:
    # make_engine, not a bare create_engine: on SQLite it also creates the file's directory (a
    # new ``var/``), which the upgrade that follows needs.
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, *, contract: bool = False, script_location: str = NODE_MIGRATIONS) -> Upgraded:
    """Migrate to head, except that on an existing database the first pending contract migration
    and everything after it wait for ``contract=True``."""
    cfg = alembic_config(url, script_location=script_location)
    before = current_revision(url)
    scripts = ScriptDirectory.from_config(cfg)
    # iterate_revisions walks down from head; pending is oldest first.
    pending = list(reversed(list(scripts.iterate_revisions("heads", before or "base"))))
    target = "heads"
    held_back: list[str] = []
    if before is not None and not contract:
        first = next((i for i, s in enumerate(pending) if is_contract(s)), None)
        if first is not None:
            held_back = [s.revision for s in pending[first:]]
            if first == 0:
                return Upgraded(before, before, held_back)
            target = pending[first - 1].revision
    command.upgrade(cfg, target)
    return Upgraded(before, current_revision(url), held_back)


def upgrade_registry(url: str, *, contract: bool = False) -> Upgraded:
    return upgrade(url, contract=contract, script_location=REGISTRY_MIGRATIONS)


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

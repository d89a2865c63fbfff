"""Database plumbing shared by every domain: one declarative base, engine and session factory.

Domains own their tables (``<domain>/models.py``); this module only knows how to connect.
SQLite is the embedded single-node default; PostgreSQL is the engine for two nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# SQLite autoincrements only INTEGER keys; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both engines (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (psycopg 3), including libpq's multi-host form
    ``postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`` that pg_autoctl prints,
    which SQLAlchemy's URL parser refuses: the hosts move into repeated ``host=`` query parameters."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        rest = url.split("://", 1)[1]
        userinfo, _, hostpart = rest.rpartition("@")
        hosts, _, tail = hostpart.partition("/")
        if "," in hosts:
            path, _, query = tail.partition("?")
            params = "&".join(f"host={h}" for h in hosts.split(","))
            rest = f"{userinfo}@/{path}?{params}" + (f"&{query}" if query else "")
            rest = rest.removeprefix("@")
        else:
            rest = f"{userinfo}@{hostpart}" if userinfo else hostpart
        return "postgresql+psycopg://" + rest
    return url


_READ_ONLY = "ezla_read_only"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _: Any) -> None:
            # Let SQLAlchemy drive transactions; WAL keeps readers off the writer's back.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # The busy timeout first, and WAL set only when it is not set yet: switching the journal
            # mode wants a lock, and a burst of new pool connections beside a writer could get
            # "database is locked" (a 503) from the pragma itself.
            cur.execute("PRAGMA busy_timeout=30000")
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: read-then-write transactions (numbering,
            # audit chain, lease claims) cannot interleave, which is what SKIP LOCKED gives on PG.
            # Reads (``reading``) begin deferred: under WAL they never wait for a writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    # hide_parameters: statement parameters (PESELs, names, secrets) never reach an exception text or a log.
    # No pool_pre_ping: a ping is a round trip on every checkout (a third of a submission's). A
    # connection the server dropped (restart, failover) fails its first statement instead; the
    # dialect recognises the disconnect and empties the pool, the request answers 503 (problems.py)
    # and the SDK or HAProxy repeats it, idempotently (SQLAlchemy's "optimistic" disconnect handling).
    engine = create_engine(url, pool_size=pool_size, max_overflow=10, hide_parameters=True)

    @event.listens_for(engine, "handle_error")
    def _read_only_is_a_disconnect(context: Any) -> None:
        # 25006: the server turned read-only under us (a primary fenced for a switchover, or
        # demoted). Treat it as a lost connection: the pool is emptied, the request answers 503, and
        # the next connection's target_session_attrs=read-write finds the writable node.
        if getattr(context.original_exception, "sqlstate", None) == "25006":
            context.is_disconnect = True

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: on SQLite it never takes (or waits for) the write lock."""
    with factory() as session, session.begin():
        session.connection(execution_options={_READ_ONLY: True})
        yield session

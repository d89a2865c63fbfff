"""A PostgreSQL server that turns read-only under a node (a primary fenced for a switchover, or
demoted) is treated like a lost connection: the pool is emptied so the next connection finds the
writable twin, and the request answers 503 (retry), not 500."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ezla.db import make_engine
from tests.conftest import pg_create, pg_drop


def test_read_only_transaction_invalidates_the_connection() -> None:
    name = f"ezla_ro_{secrets.token_hex(4)}"
    engine = make_engine(pg_create(name))
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (x int)"))
            conn.commit()
            conn.execute(text("SET default_transaction_read_only = on"))  # what the fence does server-wide
            conn.commit()
            with pytest.raises(DBAPIError) as raised:
                conn.execute(text("INSERT INTO t VALUES (1)"))
        assert raised.value.connection_invalidated
        assert getattr(raised.value.orig, "sqlstate", None) == "25006"
        with engine.connect() as conn:  # a fresh connection, read-write again
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.commit()
    finally:
        engine.dispose()
        pg_drop(name)

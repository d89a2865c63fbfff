"""Small helpers every CLI verb shares: ``--json`` output, settings, a database session."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import make_engine, make_sessionmaker, transaction
from ezla.errors import EzlaError
from ezla.migrate import Upgraded, redact
from ezla.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def _default(o: object) -> object:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.decode()
    raise TypeError(type(o).__name__)


def emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, default=_default, ensure_ascii=False))
    else:
        click.echo(human)


def emit_upgrade(as_json: bool, done: Upgraded, url: str) -> None:
    data = {"database": redact(url), "from": done.before, "to": done.after, "held_back": done.held_back}
    human = f"database at {done.after} (was {done.before or 'empty'})"
    if done.held_back:
        human += (
            f"; contract migration(s) {', '.join(done.held_back)} held back: run again with --contract once "
            "every node runs this release"
        )
    emit(as_json, data, human)


def fail(as_json: bool, exc: EzlaError | Exception) -> NoReturn:
    code = getattr(exc, "code", "error")
    detail = getattr(exc, "detail", str(exc))
    report = getattr(exc, "extra", {}).get("report")  # a signature verification's findings
    if as_json:
        click.echo(json.dumps({"error": code, "detail": detail} | ({"report": report} if report else {})))
    else:
        click.echo(f"error: {code}: {detail}", err=True)
    sys.exit(1)


def settings() -> Settings:
    return Settings.from_env()


@contextmanager
def db_sessions(s: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """A sessionmaker for services that run their own short transactions (CRL publication)."""
    s = s or settings()
    engine = make_engine(s.database_url, pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def db_session(s: Settings | None = None) -> Iterator[Session]:
    s = s or settings()
    engine = make_engine(s.database_url, pool_size=2)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()

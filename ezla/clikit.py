"""Small helpers every CLI verb shares: ``--json`` output, settings, a database session."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.orm import Session, sessionmaker

from ezla.db import is_sqlite, make_engine, make_sessionmaker, transaction
from ezla.errors import BadRequest, EzlaError
from ezla.migrate import Upgraded, redact
from ezla.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


DEFAULT_URL = "http://127.0.0.1:8000"

# Exit codes, the same for every verb (README "The command line"): scripts tell "fix the input"
# from "you may not" from "retry later" without reading the message.
EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_FORBIDDEN, EXIT_UNAVAILABLE = 1, 2, 3, 4, 5
EXIT_CODES_HELP = (
    "Exit codes: 0 done; 2 usage; 3 refused, fix the input; 4 not allowed (token, role, key); "
    "5 unavailable, retry later; 1 anything else."
)


def exit_code(exc: BaseException) -> int:
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        return EXIT_ERROR
    if status in (401, 403):
        return EXIT_FORBIDDEN
    if status in (408, 409, 429) and getattr(exc, "code", "") in (
        "idempotency-in-flight",
        "rate-limited",
        "too-many-requests",
    ):
        return EXIT_UNAVAILABLE
    if 400 <= status < 500:
        return EXIT_REFUSED
    if status in (502, 503, 504):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def url_option(f: F) -> F:
    return click.option(
        "--url",
        "urls",
        envvar="EZLA_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Node URL(s), comma-separated: the client fails over between them. Also EZLA_URL, or "
        "`url` in the config file (EZLA_CONFIG, default ~/.config/ezla/config.toml).",
    )(f)


def config_defaults() -> None:
    """Settings from the config file become environment defaults (the environment still wins):
    ``url = "https://ezla.example"`` gives every network verb its node URL."""
    path = Path(os.environ.get("EZLA_CONFIG") or Path.home() / ".config" / "ezla" / "config.toml")
    if not path.is_file():
        return
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.UsageError(f"config file {path}: {exc}") from None
    for key, env in (("url", "EZLA_URL"), ("var_dir", "EZLA_VAR_DIR"), ("database_url", "EZLA_DATABASE_URL")):
        if isinstance(config.get(key), str):
            os.environ.setdefault(env, config[key])


def read_secret(value: str | None, file: Path | None, *, prompt: str | None, what: str) -> str | None:
    """A secret from --x-file, then the option/environment value, then a hidden prompt when a
    person is at the terminal. Flags alone would leave it in the shell history and ``ps``."""
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    if value:
        return value
    if prompt and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True))
    if prompt:
        raise BadRequest(f"{what} is needed: give it with a file option or the environment")
    return None


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
    sys.exit(exit_code(exc))


def settings() -> Settings:
    return Settings.from_env()


def _database(s: Settings) -> str:
    """The node database of a local verb, refused clearly when there is none (instead of SQLite
    making an empty file in the current directory and a traceback about a missing table)."""
    url = s.database_url
    if is_sqlite(url) and ":memory:" not in url and not Path(url.split("///", 1)[1]).is_file():
        click.echo(
            f"error: no-database: no node database at {url.split('///', 1)[1]}. Run this where the node "
            "runs (its checkout, or with EZLA_VAR_DIR / EZLA_DATABASE_URL / the config file), after "
            "`ezla db upgrade`.",
            err=True,
        )
        sys.exit(EXIT_UNAVAILABLE)
    return url


@contextmanager
def db_sessions(s: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """A sessionmaker for services that run their own short transactions (CRL publication)."""
    s = s or settings()
    engine = make_engine(_database(s), pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def db_session(s: Settings | None = None) -> Iterator[Session]:
    s = s or settings()
    engine = make_engine(_database(s), pool_size=2)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()

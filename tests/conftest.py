"""Shared fixtures: a real PKI made once per session, a real database per test (SQLite and
PostgreSQL), the app under Litestar's TestClient. Nothing here is mocked but the clock."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ezla.settings import Settings

PASSPHRASE = "test-passphrase-not-secret"
PUBLIC_URL = "http://ezla.127.0.0.1.nip.io:8000"
PG_ADMIN = os.environ.get("EZLA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ezla.ca.ceremony import init_pki
    from tests.softhsm import new_token

    path = tmp_path_factory.mktemp("pki")
    # EZLA_TEST_PKCS11=1 (a phase of make test): the same suites with every CA key in a SoftHSM2 token.
    token = new_token() if os.environ.get("EZLA_TEST_PKCS11") == "1" else None
    # A CA older than the doctors' certificates, as in life: documents signed days ago (within the
    # submission delay) are validated at their SigningTime, when the issuing CA must already exist.
    init_pki(path, PASSPHRASE, PUBLIC_URL, datetime.now(UTC) - timedelta(days=60), token=token)
    return path


def _pg_admin(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def pg_create(name: str, *, template: str | None = None) -> str:
    """A new PostgreSQL database (a copy of ``template`` if given); returns its URL."""
    copy = f' TEMPLATE "{template}"' if template else ""
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"{copy}')
    return _pg_url(name)


def pg_drop(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated database per engine for the whole session; each test gets a copy (a file copy
    for SQLite, ``CREATE DATABASE ... TEMPLATE`` for PostgreSQL) instead of running every migration
    again. The migrations themselves are tested in tests/integration/platform."""
    from ezla.migrate import upgrade

    sqlite_file = tmp_path_factory.mktemp("template") / "ezla.sqlite3"
    upgrade(f"sqlite:///{sqlite_file}")
    name = f"ezla_tpl_{secrets.token_hex(4)}"
    upgrade(pg_create(name))
    yield {"sqlite": str(sqlite_file), "postgresql": name}
    pg_drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_templates: dict[str, str]) -> Iterator[str]:
    """A fresh, migrated database. PostgreSQL must be reachable: no skip hides it."""
    if request.param == "sqlite":
        path = tmp_path / "ezla.sqlite3"
        shutil.copyfile(migrated_templates["sqlite"], path)
        yield f"sqlite:///{path}"
        return
    name = f"ezla_t_{secrets.token_hex(4)}"
    yield pg_create(name, template=migrated_templates["postgresql"])
    pg_drop(name)


@pytest.fixture
def settings(db_url: str, pki_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=db_url,
        registry_database_url=f"sqlite:///{tmp_path}/registry.sqlite3",
        pki_dir=pki_dir,
        ca_key_passphrase=PASSPHRASE,
        public_url=PUBLIC_URL,
        log_json=True,
        worker_enabled=False,
        webhook_allow_insecure=True,
        registry_token="registry-test-token",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    from ezla.app import create_app

    with TestClient(app=create_app(settings)) as c:
        yield c


@pytest.fixture
def session_factory(client: TestClient):  # type: ignore[no-untyped-def,type-arg]
    return client.app.state.sessionmaker


@pytest.fixture
def operator_token(session_factory) -> str:  # type: ignore[no-untyped-def]
    from ezla.auth.service import Role, create_account
    from ezla.db import transaction

    with transaction(session_factory) as s:
        _, token = create_account(s, Role.OPERATOR, now=datetime.now(UTC))
    return token


@pytest.fixture
def twins(
    pki_dir: Path, tmp_path: Path, migrated_templates: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, TestClient]]:  # type: ignore[type-arg]
    """Two nodes (A and B) on one PostgreSQL database, as behind HAProxy."""
    from ezla.app import create_app

    name = f"ezla_twins_{secrets.token_hex(4)}"
    url = pg_create(name, template=migrated_templates["postgresql"])
    settings = Settings(
        var_dir=tmp_path,
        database_url=url,
        pki_dir=pki_dir,
        ca_key_passphrase=PASSPHRASE,
        public_url=PUBLIC_URL,
        worker_enabled=False,
        **getattr(request, "param", {}),
    )
    try:
        with (
            TestClient(app=create_app(settings.with_(node_id="A"))) as a,
            TestClient(app=create_app(settings.with_(node_id="B"))) as b,
        ):
            yield a, b
    finally:
        pg_drop(name)


def openssl(*args: str, input_bytes: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=input_bytes, capture_output=True, check=check, timeout=30)


REGISTRY_TOKEN = "registry-test-token"  # the nodes write with it
REGISTRY_READ_TOKEN = "registry-test-read-token"  # tests read with it


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Iterator[str]:
    """A real registry process on a free loopback port, with its own SQLite database."""
    from tests.e2e.procs import EZLA, Proc, base_env, free_port

    tmp = tmp_path_factory.mktemp("registry")
    env = base_env(
        EZLA_REGISTRY_DATABASE_URL=f"sqlite:///{tmp}/registry.sqlite3",
        EZLA_REGISTRY_TOKEN=REGISTRY_TOKEN,
        EZLA_REGISTRY_READ_TOKEN=REGISTRY_READ_TOKEN,
        EZLA_PKI_DIR=str(pki_dir),
        EZLA_VAR_DIR=str(tmp),
    )
    subprocess.run([EZLA, "registry", "db-upgrade"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = Proc(
        "registry",
        [EZLA, "registry", "serve", "--port", str(port)],
        env,
        tmp / "registry.log",
        f"http://127.0.0.1:{port}/health/ready",
    ).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()

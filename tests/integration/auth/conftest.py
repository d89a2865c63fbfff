"""Two nodes on one PostgreSQL database, for what must hold across the twins."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ezla.settings import Settings
from tests.conftest import PASSPHRASE, PUBLIC_URL, pg_create, pg_drop


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

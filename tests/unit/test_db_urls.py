from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from ezla.db import normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/ezla", "postgresql+psycopg://postgres@127.0.0.1:5432/ezla"),
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("sqlite:///var/ezla.sqlite3", "sqlite:///var/ezla.sqlite3"),
        (
            "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
            "postgresql+psycopg://u@/db?host=h1:5432&host=h2:5433&target_session_attrs=read-write",
        ),
    ],
)
def test_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_multi_host_url_parses_for_sqlalchemy() -> None:
    url = make_url(normalise_url("postgresql://u:p@a:1,b:2/db?target_session_attrs=read-write"))
    assert url.query["host"] == ("a:1", "b:2") and url.username == "u" and url.database == "db"

"""Health, OpenAPI, problem documents, metrics, web pages, migrations, CRL schedule."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography import x509

from ezla.db import Base
from ezla.models import import_all


def test_health_and_openapi(client):
    assert client.get("/health/live").json()["status"] == "ok"
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["ca"] == "ok"
    schema = client.get("/schema/openapi.json").json()
    assert "/v1/ezla" in schema["paths"] and "/v1/ca/enrollments" in schema["paths"]


def test_draining_node_is_not_ready(client):
    client.app.state.draining = True
    try:
        assert client.get("/health/ready").status_code == 503
    finally:
        client.app.state.draining = False


def test_unknown_route_and_method_are_problems(client):
    r = client.get("/v1/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = client.delete("/v1/ca/crl")
    assert r.status_code == 405 and r.json()["code"] == "method-not-allowed"
    assert client.get("/health/live").headers["x-request-id"]


def test_web_pages_are_locked_down(client):
    """No script at all, no framing, no referrer; the old paths lead to the server-rendered pages."""
    for path in ("/web/sign-in", "/verify"):
        r = client.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in r.text
    for old in ("/employer", "/patient"):
        r = client.get(old, follow_redirects=False)
        assert r.status_code == 301 and r.headers["location"] == f"/web{old}"


def test_migrations_match_models(db_url):
    from ezla.db import make_engine

    import_all()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_crl_is_refreshed_on_schedule(client, session_factory):
    from ezla.ca.scheduler import CrlRefresher

    refresher = CrlRefresher(session_factory, client.app.state.ca_context, refresh=timedelta(hours=1))
    assert refresher.run_once() is True  # no CRL yet
    assert refresher.run_once() is False  # fresh enough
    first = x509.load_der_x509_crl(client.get("/v1/ca/crl").content)
    stale = CrlRefresher(session_factory, client.app.state.ca_context, refresh=timedelta(0))
    assert stale.run_once() is True
    second = x509.load_der_x509_crl(client.get("/v1/ca/crl").content)
    number = x509.CRLNumber
    assert (
        second.extensions.get_extension_for_class(number).value.crl_number
        > first.extensions.get_extension_for_class(number).value.crl_number
    )
    assert second.next_update_utc > second.last_update_utc

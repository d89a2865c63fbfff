"""The API reference integrators generate clients from: security per operation, the real
problem+json shape with its codes, Idempotency-Key, docs without a CDN, and the contract enforced
(unknown query parameters refused, 401 with WWW-Authenticate)."""

from __future__ import annotations

import re
from typing import Any


def _schema(client: Any) -> dict[str, Any]:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]


def test_every_guarded_operation_names_its_bearer_scheme_and_documents_401_and_403(client: Any) -> None:
    schema = _schema(client)
    assert set(schema["components"]["securitySchemes"]) == {"doctorToken", "accountToken"}
    ops = {(m, p): op for m, p, op in _operations(schema)}
    assert ops[("POST", "/v1/ezla/validation")]["security"] == [{"doctorToken": []}]
    assert ops[("POST", "/v1/ezla")]["security"] == []  # the signature on the document is the credential
    assert "XAdES signature" in ops[("POST", "/v1/ezla")]["description"]
    assert ops[("GET", "/v1/employer/ezla")]["security"] == [{"accountToken": []}]
    assert "security" not in ops[("GET", "/v1/ca/crl")]  # public
    for (method, path), op in ops.items():
        if op.get("security"):
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]


def test_errors_are_documented_as_the_problem_documents_the_service_sends(client: Any) -> None:
    schema = _schema(client)
    assert "Problem" in schema["components"]["schemas"]
    submit = schema["paths"]["/v1/ezla"]["post"]["responses"]
    for status in ("400", "413", "415", "422", "429", "503"):
        content = submit[status]["content"]["application/problem+json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
        example = next(iter(content["examples"].values()))["value"]
        assert example["status"] == int(status) and example["type"] == f"/problems/{example['code']}"
    assert "`pesel-invalid`" in submit["422"]["description"]
    assert "`signature-invalid`" in submit["422"]["description"]
    # Each operation's examples are real: the service answers a known code with that very shape.
    r = client.post("/v1/ezla", content=b"<x", headers={"content-type": "application/xml"})
    assert r.status_code in (400, 401)
    body = r.json()
    assert (
        set(body) >= {"type", "title", "status", "code"}
        and f"`{body['code']}`" in submit[str(r.status_code)]["description"]
    )


def test_writes_document_the_idempotency_key(client: Any) -> None:
    schema = _schema(client)
    for method, path, op in _operations(schema):
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        if method in ("PUT", "DELETE") or (method == "POST" and path in ("/v1/accounts", "/v1/ca/doctors")):
            assert "Idempotency-Key" in names, (method, path)
    assert "Idempotency-Key" not in {p["name"] for p in schema["paths"]["/v1/ezla"]["post"].get("parameters", [])}


def test_every_operation_has_a_summary_written_for_people(client: Any) -> None:
    for method, path, op in _operations(_schema(client)):
        summary = op.get("summary", "")
        assert " " in summary, f"{method} {path}: {summary!r} reads like a handler name"


def test_the_docs_ui_loads_nothing_from_outside(client: Any) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert urls and all(u.startswith("/") or u.startswith("data:") for u in urls), urls
    for url in urls:
        if url.startswith("/"):
            assert client.get(url).status_code == 200, url
    assert client.get("/schema/assets/../../etc/passwd").status_code == 404


def test_unknown_query_parameters_are_refused(client: Any, operator_token: str) -> None:
    auth = {"Authorization": f"Bearer {operator_token}"}
    r = client.get("/v1/ops/deliveries", params={"statuss": "dead"}, headers=auth)
    assert r.status_code == 400 and r.json()["code"] == "bad-request" and "statuss" in r.json()["detail"]
    assert client.get("/v1/ops/deliveries", params={"status": "dead"}, headers=auth).status_code == 200
    assert client.get("/v1/ca/crl", params={"x": "1"}).status_code == 400


def test_a_401_says_how_to_authenticate(client: Any) -> None:
    bare = client.get("/v1/patient/ezla")
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == 'Bearer realm="ezla"'
    wrong = client.get("/v1/patient/ezla", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


def test_a_huge_id_is_a_400_not_a_database_overflow(client: Any, operator_token: str) -> None:
    """Found by schemathesis: a path id beyond 64 bits overflowed in the SQLite driver (500)."""
    auth = {"Authorization": f"Bearer {operator_token}"}
    r = client.delete(f"/v1/accounts/{2**70}", headers=auth)
    assert r.status_code == 400 and r.json()["code"] == "validation-failed"
    assert client.delete("/v1/accounts/424242", headers=auth).status_code == 404


def test_every_json_answer_is_a_typed_model(client: Any) -> None:
    """No free-form objects: a client generated from /schema gets a type for every JSON answer."""
    import json

    loose = [
        f"{method} {path} {status}"
        for method, path, op in _operations(_schema(client))
        for status, response in op["responses"].items()
        if status.startswith("2")
        for media, content in (response.get("content") or {}).items()
        if "json" in media and "$ref" not in json.dumps(content.get("schema", {}))
    ]
    assert loose == []

"""Outbox delivery to registry, employer and patient; fencing; dead letters; webhooks; metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
from lxml import etree
from sqlalchemy import select

from ezla.auth.service import Role, create_account
from ezla.db import transaction
from ezla.distribution.models import Delivery, EmployerInboxItem, PatientInboxItem
from ezla.distribution.outbox import claim, complete
from tests.conftest import REGISTRY_READ_TOKEN
from tests.e2e.procs import free_port
from tests.factories import XML, enroll, signed_cancellation, signed_sick_leave
from tests.integration.distribution.conftest import drain

NIP_A, NIP_B = "5260250274", "1234563218"
PESEL_A, PESEL_B = "44051401359", "02070803628"


def _token(session_factory, role: Role, **kw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        _, token = create_account(s, role, now=datetime.now(UTC), **kw)
    return {"Authorization": f"Bearer {token}"}


def _statuses(session_factory) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        return list(s.scalars(select(Delivery.status)))


def _submit(client, doctor, **overrides):  # type: ignore[no-untyped-def]
    xml = signed_sick_leave(doctor, **overrides)
    r = client.post("/v1/ezla", content=xml, headers=XML)
    assert r.status_code == 201, r.text
    return r.json(), etree.fromstring(xml).get("DocumentId")


def _registry(ezla_id: str) -> httpx.Response:
    return httpx.get(
        f"{REGISTRY}/v1/registry/ezla/{ezla_id}", headers={"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}
    )


REGISTRY = ""


def test_issue_and_cancel_reach_all_three_once(client, operator_token, session_factory, make_worker, registry):
    global REGISTRY  # noqa: PLW0603 - module-level handle for the helper above
    REGISTRY = registry
    doctor = enroll(client, operator_token)
    (first, doc_id), (second, _) = _submit(client, doctor), _submit(client, doctor)
    worker = make_worker()
    drain(worker)
    assert set(_statuses(session_factory)) == {"delivered"}
    c = signed_cancellation(doctor, document_id=doc_id, series=first["series"], number=first["number"])
    assert client.post(f"/v1/ezla/{first['id']}/cancellation", content=c, headers=XML).status_code == 200
    drain(worker)
    drain(worker)  # nothing left: a second pass delivers nothing twice
    statuses = _statuses(session_factory)
    assert statuses.count("delivered") == 9 and set(statuses) == {"delivered"}
    with transaction(session_factory) as s:
        assert len(s.scalars(select(EmployerInboxItem)).all()) == 3
        assert len(s.scalars(select(PatientInboxItem)).all()) == 3
    assert _registry(first["id"]).json()["status"] == "cancelled"
    assert _registry(second["id"]).json()["status"] == "issued"
    log = httpx.get(f"{registry}/v1/registry/ingest-log", headers={"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"})
    mine = {k: v for k, v in log.json()["counts"].items() if first["id"] in k or second["id"] in k}
    assert sorted(mine.values()) == [1, 1, 1]
    # Registry queries and re-verification of the stored signed original.
    q = httpx.get(
        f"{registry}/v1/registry/ezla",
        params={"series": first["series"], "number": first["number"]},
        headers={"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"},
    )
    # The registry outlives this test (module scope), so other runs may share series and number.
    assert first["id"] in [i["id"] for i in q.json()["items"]]
    assert all((i["series"], i["number"]) == (first["series"], first["number"]) for i in q.json()["items"])
    v = httpx.get(
        f"{registry}/v1/registry/ezla/{first['id']}/verification",
        headers={"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"},
    )
    assert v.status_code == 200 and v.json()["valid"] is True
    assert httpx.get(f"{registry}/v1/registry/ezla/{first['id']}").status_code == 401


def test_authorization_matrix(client, operator_token, session_factory, make_worker):
    doctor = enroll(client, operator_token)
    mine, _ = _submit(client, doctor)
    drain(make_worker())
    emp_a = _token(session_factory, Role.EMPLOYER, nip=NIP_A)
    emp_b = _token(session_factory, Role.EMPLOYER, nip=NIP_B)
    pat_a = _token(session_factory, Role.PATIENT, pesel=PESEL_A)
    pat_b = _token(session_factory, Role.PATIENT, pesel=PESEL_B)
    op = {"Authorization": f"Bearer {operator_token}"}

    a = client.get("/v1/employer/ezla", headers=emp_a)
    assert a.status_code == 200 and [i["ezla_id"] for i in a.json()["items"]] == [mine["id"]]
    assert "icd10" not in a.text and "J06.9" not in a.text and "diagnosis" not in a.text
    assert client.get("/v1/employer/ezla", headers=emp_b).json()["items"] == []
    p = client.get("/v1/patient/ezla", headers=pat_a)
    assert p.status_code == 200 and p.json()["items"][0]["document"]["icd10"] == "J06.9"
    assert client.get("/v1/patient/ezla", headers=pat_b).json()["items"] == []
    for path in ("/v1/employer/ezla", "/v1/patient/ezla"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer forged"}).status_code == 401
        assert client.get(path, headers=op).status_code == 403
    assert client.get("/v1/employer/ezla", headers=pat_a).status_code == 403
    assert client.get("/v1/patient/ezla", headers=emp_a).status_code == 403
    assert client.post(f"/v1/employer/ezla/{mine['id']}/ack", headers=emp_b).status_code == 404
    assert client.post(f"/v1/employer/ezla/{mine['id']}/ack", headers=emp_a).status_code == 200
    assert client.post(f"/v1/employer/ezla/{mine['id']}/ack", headers=emp_a).status_code == 200  # idempotent
    assert client.get("/v1/employer/ezla", headers=emp_a).json()["items"][0]["acknowledged_at"]
    assert client.get("/v1/ops/deliveries", headers=emp_a).status_code == 403


def test_cursor_paging(client, operator_token, session_factory, make_worker):
    doctor = enroll(client, operator_token)
    ids = [_submit(client, doctor)[0]["id"] for _ in range(5)]
    drain(make_worker())
    emp = _token(session_factory, Role.EMPLOYER, nip=NIP_A)
    seen, after = [], None
    for _ in range(10):
        page = client.get(
            "/v1/employer/ezla", params={"limit": 2, **({"after": after} if after else {})}, headers=emp
        ).json()
        if not page["items"]:
            break
        seen += [i["ezla_id"] for i in page["items"]]
        after = page["next_cursor"]
    assert seen == ids
    assert client.get("/v1/employer/ezla", params={"after": "x"}, headers=emp).json()["code"] == "bad-request"


def test_stale_worker_cannot_finish(client, operator_token, session_factory):
    doctor = enroll(client, operator_token)
    _submit(client, doctor)
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        stale = claim(s, "stale", now=now, lease=timedelta(seconds=1), limit=1)[0]
    later = now + timedelta(seconds=2)
    with transaction(session_factory) as s:
        fresh = next(c for c in claim(s, "fresh", now=later, lease=timedelta(seconds=30)) if c.id == stale.id)
    assert fresh.fence == stale.fence + 1
    with transaction(session_factory) as s:
        assert complete(s, stale, now=later) is False  # expired lease and old fence
    with transaction(session_factory) as s:
        assert complete(s, fresh, now=later) is True


def test_unreachable_registry_dead_letters_then_operator_retries(
    client, operator_token, session_factory, make_worker, registry
):
    doctor = enroll(client, operator_token)
    _submit(client, doctor)
    broken = make_worker(registry_url=f"http://127.0.0.1:{free_port()}", dead_after=timedelta(0))
    drain(broken)
    op = {"Authorization": f"Bearer {operator_token}"}
    dead = client.get("/v1/ops/deliveries", params={"status": "dead"}, headers=op).json()["items"]
    assert [d["recipient"] for d in dead] == ["registry"] and "unreachable" in dead[0]["last_error"]
    metrics = client.get("/metrics").text
    assert 'ezla_outbox_deliveries{state="dead",recipient="registry"} 1' in metrics
    assert client.post("/v1/ops/deliveries/retry", headers=op).json()["requeued"] == 1
    drain(make_worker())
    assert set(_statuses(session_factory)) == {"delivered"}


class _Receiver(BaseHTTPRequestHandler):
    calls: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append((dict(self.headers), body))
        status = 500 if type(self).fail_first > 0 else 204
        type(self).fail_first -= 1
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_is_signed_and_retried(client, operator_token, session_factory, make_worker):
    _Receiver.calls, _Receiver.fail_first = [], 1
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        emp = _token(session_factory, Role.EMPLOYER, nip=NIP_A)
        secret = "s3cret-s3cret-s3cret"
        r = client.put(
            "/v1/employer/webhook", json={"url": f"http://127.0.0.1:{port}/hook", "secret": secret}, headers=emp
        )
        assert r.status_code == 200
        bad = client.put("/v1/employer/webhook", json={"url": "ftp://x", "secret": secret}, headers=emp)
        assert bad.status_code == 400
        doctor = enroll(client, operator_token)
        sub, _ = _submit(client, doctor)
        worker = make_worker(retry_cap=0.2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and set(_statuses(session_factory)) != {"delivered"}:
            worker.run_once()
            time.sleep(0.1)
        assert set(_statuses(session_factory)) == {"delivered"}
        assert len(_Receiver.calls) == 2  # one failure, one success
        (h1, b1), (h2, b2) = _Receiver.calls
        assert b1 == b2 and h1["Idempotency-Key"] == h2["Idempotency-Key"]
        ts = h2["X-Ezla-Timestamp"]
        expected = hmac.new(secret.encode(), ts.encode() + b"." + b2, hashlib.sha256).hexdigest()
        assert h2["X-Ezla-Signature"] == f"sha256={expected}"
        payload = json.loads(b2)
        assert payload["ezla"]["id"] == sub["id"] and "icd10" not in b2.decode()
    finally:
        server.shutdown()

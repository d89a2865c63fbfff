"""The registry believes only what is signed: forged or mismatched ingests are refused with a code
and store nothing; the JSON beside the signed parts is never what gets stored; writing and reading
are separate credentials."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ezla.db import reading
from ezla.distribution.models import Delivery
from tests.conftest import REGISTRY_READ_TOKEN, REGISTRY_TOKEN
from tests.factories import XML, enroll, signed_cancellation, signed_sick_leave

WRITE = {"Authorization": f"Bearer {REGISTRY_TOKEN}"}
READ = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}


def _announced(session_factory, ezla_id: str, event: str = "issued") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The body a node would PUT: the registry delivery row's payload with its envelope."""
    with reading(session_factory) as s:
        row = s.scalar(
            select(Delivery).where(
                Delivery.ezla_id == ezla_id, Delivery.recipient == "registry", Delivery.event == event
            )
        )
        assert row is not None and row.payload
        return {"event": event, "idempotency_key": row.idempotency_key, **json.loads(row.payload)}


def _put(registry: str, ezla_id: str, body: dict[str, Any], headers: dict[str, str] = WRITE) -> httpx.Response:
    return httpx.put(f"{registry}/v1/registry/ezla/{ezla_id}", json=body, headers=headers, timeout=30)


def _absent(registry: str, ezla_id: str) -> bool:
    return httpx.get(f"{registry}/v1/registry/ezla/{ezla_id}", headers=READ).status_code == 404


def _cancellation(doctor, body: dict[str, Any]) -> bytes:  # type: ignore[no-untyped-def]
    return signed_cancellation(
        doctor, document_id=body["document"]["document_id"], series=body["series"], number=body["number"]
    )


@pytest.fixture
def accepted(client, operator_token, session_factory):  # type: ignore[no-untyped-def]
    doctor = enroll(client, operator_token)
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    assert r.status_code == 201, r.text
    return doctor, r.json(), _announced(session_factory, r.json()["id"])


def test_what_is_stored_comes_from_the_signed_document(registry, accepted) -> None:  # type: ignore[no-untyped-def]
    _, sub, body = accepted
    signed_pesel = body["patient_pesel"]
    forged = {**body, "patient_pesel": "02070803628", "status": "cancelled", "series": "XX", "number": "0000001"}
    forged["document"] = {**body["document"], "icd10": "Z00"}
    r = _put(registry, sub["id"], forged)
    assert r.status_code == 201, r.text
    stored = httpx.get(f"{registry}/v1/registry/ezla/{sub['id']}", headers=READ).json()
    assert stored["status"] == "issued"  # no signed Cancellation, no cancellation
    assert (stored["series"], stored["number"]) == (sub["series"], sub["number"])
    assert stored["document"]["patient"]["pesel"] == signed_pesel and stored["document"]["icd10"] != "Z00"


@pytest.mark.parametrize(
    ("forge", "status", "code"),
    [
        (
            lambda b: {
                **b,
                "signed_xml": base64.b64encode(
                    base64.b64decode(b["signed_xml"]).replace(b"<Icd10>", b"<Icd10>Z")
                ).decode(),
            },
            422,
            "signature-invalid",
        ),
        (lambda b: {k: v for k, v in b.items() if k != "receipt_xml"}, 400, "bad-request"),
        (lambda b: {**b, "receipt_xml": "not base64!"}, 400, "bad-request"),
        (lambda b: {**b, "event": "cancelled"}, 400, "bad-request"),  # no signed Cancellation
        (lambda b: {**b, "receipt_xml": b["signed_xml"]}, 422, "evidence-mismatch"),  # the doctor is no seal
        (lambda b: {**b, "signed_xml": 12}, 400, "bad-request"),
    ],
    ids=["tampered-document", "no-receipt", "receipt-not-base64", "cancel-unsigned", "doctor-as-receipt", "wrong-type"],
)
def test_forged_ingest_is_refused_and_stores_nothing(registry, accepted, forge, status, code) -> None:  # type: ignore[no-untyped-def]
    _, sub, body = accepted
    r = _put(registry, sub["id"], forge(body))
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert _absent(registry, sub["id"])


def test_receipt_of_another_document_is_refused(client, operator_token, session_factory, registry, accepted) -> None:  # type: ignore[no-untyped-def]
    doctor, sub, body = accepted
    other = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    other_body = _announced(session_factory, other["id"])
    r = _put(registry, sub["id"], {**body, "receipt_xml": other_body["receipt_xml"]})
    assert (r.status_code, r.json()["code"]) == (422, "evidence-mismatch")
    assert _absent(registry, sub["id"])


def test_cancellation_must_be_the_doctors_for_this_ezla(client, session_factory, registry, accepted) -> None:  # type: ignore[no-untyped-def]
    doctor, sub, body = accepted
    assert _put(registry, sub["id"], body).status_code == 201
    other = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    wrong = _cancellation(doctor, _announced(session_factory, other["id"]))  # signed, for another e-ZLA
    r = _put(
        registry,
        sub["id"],
        {**body, "event": "cancelled", "cancellation_xml": base64.b64encode(wrong).decode()},
    )
    assert (r.status_code, r.json()["code"]) == (422, "evidence-mismatch")
    right = client.post(f"/v1/ezla/{sub['id']}/cancellation", content=_cancellation(doctor, body), headers=XML)
    assert right.status_code == 200, right.text
    r = _put(registry, sub["id"], _announced(session_factory, sub["id"], "cancelled"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_write_and_read_are_separate_credentials(registry, accepted) -> None:  # type: ignore[no-untyped-def]
    _, sub, body = accepted
    assert _put(registry, sub["id"], body, headers=READ).status_code == 403
    assert _put(registry, sub["id"], body).status_code == 201
    assert httpx.get(f"{registry}/v1/registry/ezla/{sub['id']}", headers=WRITE).status_code == 403
    assert httpx.get(f"{registry}/v1/registry/ezla/{sub['id']}", headers=READ).status_code == 200
    assert _absent(registry, str(uuid.uuid4()))


def test_a_batch_stores_each_good_item_and_refuses_each_forged_one(  # type: ignore[no-untyped-def]
    client, session_factory, registry, accepted
) -> None:
    """The nodes' batch ingest: one result per item, in order; a forged item costs only itself, a
    repeated one is answered as a repeat; a batch beyond the limit, or of the wrong shape, is a 400."""
    doctor, sub, body = accepted
    other = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    other_body = _announced(session_factory, other["id"])
    tampered = {
        **other_body,
        "signed_xml": base64.b64encode(
            base64.b64decode(other_body["signed_xml"]).replace(b"<Icd10>", b"<Icd10>Z")
        ).decode(),
    }
    items = [{"ezla_id": sub["id"], **body}, {"ezla_id": other["id"], **tampered}, {"ezla_id": sub["id"], **body}]
    r = httpx.post(f"{registry}/v1/registry/batch", json={"items": items}, headers=WRITE, timeout=30)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 200]
    assert results[1]["code"] == "signature-invalid" and results[2]["duplicate"] is True
    assert not _absent(registry, sub["id"]) and _absent(registry, other["id"])
    for bad in ({"items": []}, {"items": [{"ezla_id": sub["id"], **body}] * 51}, {"items": "x"}, {}):
        r = httpx.post(f"{registry}/v1/registry/batch", json=bad, headers=WRITE, timeout=30)
        assert (r.status_code, r.json()["code"]) == (400, "bad-request"), r.text
    assert httpx.post(f"{registry}/v1/registry/batch", json={"items": items}, headers=READ).status_code == 403


def test_a_batch_conflicting_with_what_is_stored_falls_back_item_by_item(  # type: ignore[no-untyped-def]
    client, session_factory, registry, accepted
) -> None:
    """A DocumentId already stored under another e-ZLA id fails the batch's single flush; the
    registry then stores item by item: the conflicting item is refused, the good one stored."""
    doctor, sub, body = accepted
    assert _put(registry, sub["id"], body).status_code == 201
    other = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    other_body = _announced(session_factory, other["id"])
    impostor = str(uuid.uuid4())
    items = [{"ezla_id": impostor, **body}, {"ezla_id": other["id"], **other_body}]
    r = httpx.post(f"{registry}/v1/registry/batch", json={"items": items}, headers=WRITE, timeout=30)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [400, 201], results
    assert _absent(registry, impostor) and not _absent(registry, other["id"])

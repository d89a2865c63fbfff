"""Submissions, receipts, idempotency and cancellation through the HTTP API."""

from __future__ import annotations

import threading

from lxml import etree
from sqlalchemy import func, select

from ezla.db import transaction
from ezla.distribution.models import Delivery
from ezla.issuance.models import SickLeaveRecord
from ezla.xades import verify_enveloped
from tests.factories import XML, enroll, signed_cancellation, signed_sick_leave

NS = "urn:ezla:sick-leave:1"


def _count(session_factory, model) -> int:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _login(client, doctor) -> dict[str, str]:  # type: ignore[no-untyped-def]
    import base64

    from cryptography.hazmat.primitives import serialization

    from ezla.proof import login_message, sign_proof

    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    r = client.post(
        "/v1/auth/doctor-token",
        json={
            "certificate_pem": doctor.cert.public_bytes(serialization.Encoding.PEM).decode(),
            "challenge": challenge,
            "signature": base64.b64encode(sign_proof(doctor.key, login_message(challenge))).decode(),
        },
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_accept_number_receipt_and_repeat(client, operator_token, session_factory, pki_dir):
    doctor = enroll(client, operator_token)
    xml = signed_sick_leave(doctor)
    r = client.post("/v1/ezla", content=xml, headers=XML)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/ezla/{body['id']}"
    assert len(body["series"]) == 2 and body["series"].isalpha() and len(body["number"]) == 7
    assert body["status"] == "issued"
    # Same bytes again: the same answer, 200, nothing new stored.
    again = client.post("/v1/ezla", content=xml, headers=XML)
    assert again.status_code == 200 and again.json() == body
    assert _count(session_factory, SickLeaveRecord) == 1
    assert _count(session_factory, Delivery) == 3  # registry, employer, patient: same transaction
    # Receipt: only with the issuing doctor's token; signed by the service seal, verifiable.
    assert client.get(f"/v1/ezla/{body['id']}/receipt").status_code == 401
    auth = _login(client, doctor)
    rec = client.get(f"/v1/ezla/{body['id']}/receipt", headers=auth)
    assert rec.status_code == 200 and rec.headers["content-type"].startswith("application/xml")
    from datetime import UTC, datetime

    from cryptography import x509

    from ezla.ca.keystore import load_cert

    v = verify_enveloped(
        rec.content,
        trust_roots=[load_cert(pki_dir, "root")],
        intermediates=[load_cert(pki_dir, "issuing")],
        at=datetime.now(UTC),
    )
    assert v.signer.subject == load_cert(pki_dir, "service").subject
    import hashlib

    assert v.signed_root.findtext(f"{{{NS}}}DocumentSha256") == hashlib.sha256(xml).hexdigest()
    assert v.signed_root.findtext(f"{{{NS}}}Series") == body["series"]
    # The doctor reads the e-ZLA (JSON, and the signed original).
    full = client.get(f"/v1/ezla/{body['id']}", headers=auth).json()
    assert full["document"]["diagnosis"] if "diagnosis" in full["document"] else full["document"]["icd10"]
    orig = client.get(f"/v1/ezla/{body['id']}", headers={**auth, "Accept": "application/xml"})
    assert orig.content == xml
    _ = x509


def test_same_document_id_with_other_content_is_refused(client, operator_token, session_factory):
    doctor = enroll(client, operator_token)
    first = signed_sick_leave(doctor, document_id="11111111-2222-4333-8444-555555555555")
    other = signed_sick_leave(doctor, document_id="11111111-2222-4333-8444-555555555555", icd10="A09")
    assert client.post("/v1/ezla", content=first, headers=XML).status_code == 201
    r = client.post("/v1/ezla", content=other, headers=XML)
    assert r.status_code == 422 and r.json()["code"] == "document-id-conflict"
    assert _count(session_factory, SickLeaveRecord) == 1


def test_concurrent_duplicates_create_one_ezla(client, operator_token, session_factory):
    doctor = enroll(client, operator_token)
    xml = signed_sick_leave(doctor)
    answers: list[tuple[int, dict]] = []  # type: ignore[type-arg]

    def post() -> None:
        r = client.post("/v1/ezla", content=xml, headers=XML)
        answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(c for c, _ in answers)
    assert codes.count(201) == 1 and codes.count(200) == 5, answers
    assert len({a["id"] for _, a in answers}) == 1
    assert _count(session_factory, SickLeaveRecord) == 1
    assert _count(session_factory, Delivery) == 3


def test_numbers_are_unique_and_increasing(client, operator_token):
    doctor = enroll(client, operator_token)
    numbers = []
    for _ in range(5):
        r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
        assert r.status_code == 201
        numbers.append((r.json()["series"], r.json()["number"]))
    assert len(set(numbers)) == 5 and numbers == sorted(numbers)


def test_cancellation_by_the_issuer_once(client, operator_token, session_factory):
    doctor = enroll(client, operator_token)
    other = enroll(client, operator_token)
    xml = signed_sick_leave(doctor)
    body = client.post("/v1/ezla", content=xml, headers=XML).json()
    doc_id = etree.fromstring(xml).get("DocumentId")
    # Another doctor may not cancel it, even naming themselves.
    foreign = signed_cancellation(other, document_id=doc_id, series=body["series"], number=body["number"])
    r = client.post(f"/v1/ezla/{body['id']}/cancellation", content=foreign, headers=XML)
    assert r.status_code == 403 and r.json()["code"] == "signer-not-doctor"
    # Naming another e-ZLA is refused.
    wrong = signed_cancellation(doctor, document_id=doc_id, series=body["series"], number="9999999")
    r = client.post(f"/v1/ezla/{body['id']}/cancellation", content=wrong, headers=XML)
    assert r.status_code == 422 and r.json()["code"] == "cancellation-mismatch"
    good = signed_cancellation(doctor, document_id=doc_id, series=body["series"], number=body["number"])
    r = client.post(f"/v1/ezla/{body['id']}/cancellation", content=good, headers=XML)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.post(f"/v1/ezla/{body['id']}/cancellation", content=good, headers=XML).status_code == 200
    second = signed_cancellation(
        doctor, document_id=doc_id, series=body["series"], number=body["number"], reason="Inny powód"
    )
    r = client.post(f"/v1/ezla/{body['id']}/cancellation", content=second, headers=XML)
    assert r.status_code == 409 and r.json()["code"] == "already-cancelled"
    assert _count(session_factory, Delivery) == 6


def test_reads_need_the_issuing_doctor(client, operator_token):
    doctor = enroll(client, operator_token)
    other = enroll(client, operator_token)
    body = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    assert client.get(f"/v1/ezla/{body['id']}").status_code == 401
    r = client.get(f"/v1/ezla/{body['id']}", headers=_login(client, other))
    assert r.status_code == 403 and "icd10" not in r.text and "J06" not in r.text
    assert (
        client.get(f"/v1/ezla/{body['id']}", headers={"Authorization": f"Bearer {operator_token}"}).status_code == 200
    )
    assert client.get("/v1/ezla/not-a-uuid", headers={"Authorization": f"Bearer {operator_token}"}).status_code == 404

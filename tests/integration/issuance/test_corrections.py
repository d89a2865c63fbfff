"""Corrections: a SickLeave naming the e-ZLA it replaces is accepted and the replaced one cancelled
("correction") in the same transaction; every recipient hears of both; the registry takes the
signed replacement as the cancellation's evidence and refuses one that does not correct it."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select

from ezla.db import reading
from ezla.distribution.models import Delivery
from ezla.document.model import ReservedNumber
from ezla.issuance.samples import FEMALE_PATIENT
from tests.conftest import REGISTRY_READ_TOKEN, REGISTRY_TOKEN
from tests.factories import XML, EnrolledDoctor, enroll, log_in, signed_sick_leave
from tests.integration.issuance.kit import stored

WRITE = {"Authorization": f"Bearer {REGISTRY_TOKEN}"}
READ = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}


def _submit(client: Any, body: bytes, status: int = 201) -> dict[str, Any]:
    r = client.post("/v1/ezla", content=body, headers=XML)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _number(accepted: dict[str, Any]) -> ReservedNumber:
    return ReservedNumber(series=accepted["series"], number=accepted["number"])


def _registry_body(session_factory: Any, ezla_id: str, event: str) -> dict[str, Any]:
    with reading(session_factory) as s:
        row = s.scalar(
            select(Delivery).where(
                Delivery.ezla_id == ezla_id, Delivery.recipient == "registry", Delivery.event == event
            )
        )
        assert row is not None and row.payload
        return {"event": event, "idempotency_key": row.idempotency_key, **json.loads(row.payload)}


def test_a_correction_replaces_and_cancels_in_one_go(client: Any, session_factory: Any, doctor: EnrolledDoctor) -> None:
    old = _submit(client, signed_sick_leave(doctor, icd10="J06.9"))
    new = _submit(client, signed_sick_leave(doctor, icd10="J10", replaces=_number(old)))
    auth = {"Authorization": f"Bearer {log_in(client, doctor).json()['token']}"}
    was = client.get(f"/v1/ezla/{old['id']}", headers=auth).json()
    assert (was["status"], was["cancellation_reason"]) == ("cancelled", "correction")
    now = client.get(f"/v1/ezla/{new['id']}", headers=auth).json()
    assert now["status"] == "issued" and now["document"]["replaces"] == {
        "series": old["series"],
        "number": old["number"],
    }
    # Every recipient hears of the cancellation, the employer without the diagnosis.
    with reading(session_factory) as s:
        events = {
            (d.recipient.split(":")[0], d.event)
            for d in s.scalars(select(Delivery).where(Delivery.ezla_id == old["id"]))
        }
    assert {("registry", "cancelled"), ("employer", "cancelled"), ("patient", "cancelled")} <= events
    # Correcting it again, or cancelling it, is refused: it is no longer valid.
    again = _submit(client, signed_sick_leave(doctor, replaces=_number(old)), 409)
    assert (again["code"], again["field"]) == ("already-cancelled", "Replaces")


def test_who_may_correct_what(client: Any, operator_token: str, session_factory: Any, doctor: EnrolledDoctor) -> None:
    old = _submit(client, signed_sick_leave(doctor))
    other = enroll(client, operator_token)
    before = stored(session_factory)
    r = _submit(client, signed_sick_leave(other, replaces=_number(old)), 403)
    assert (r["code"], r["field"]) == ("signer-not-doctor", "Replaces")
    r = _submit(client, signed_sick_leave(doctor, replaces=_number(old), patient=FEMALE_PATIENT), 422)
    assert r["code"] == "correction-patient-mismatch"
    r = _submit(client, signed_sick_leave(doctor, replaces=ReservedNumber(series="AA", number="0000001")), 422)
    assert r["code"] == "replaced-ezla-not-found"
    assert stored(session_factory) == before  # nothing written by any refusal
    # The dry run says so too.
    auth = {"Authorization": f"Bearer {log_in(client, other).json()['token']}", **XML}
    v = client.post("/v1/ezla/validation", content=signed_sick_leave(other, replaces=_number(old)), headers=auth)
    errors = [(f["code"], f["path"]) for f in v.json()["findings"] if f["severity"] == "error"]
    assert errors == [("signer-not-doctor", "/SickLeave/Replaces")]


def test_two_corrections_racing_for_one_e_zla(client: Any, doctor: EnrolledDoctor) -> None:
    old = _submit(client, signed_sick_leave(doctor))
    bodies = [signed_sick_leave(doctor, replaces=_number(old)) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: client.post("/v1/ezla", content=b, headers=XML), bodies))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]


def test_the_registry_takes_the_signed_replacement_as_evidence(
    client: Any, operator_token: str, session_factory: Any, registry: str, doctor: EnrolledDoctor
) -> None:
    old = _submit(client, signed_sick_leave(doctor))
    issued = _registry_body(session_factory, old["id"], "issued")
    assert (
        httpx.put(f"{registry}/v1/registry/ezla/{old['id']}", json=issued, headers=WRITE, timeout=30).status_code == 201
    )
    _submit(client, signed_sick_leave(doctor, replaces=_number(old)))
    cancelled = _registry_body(session_factory, old["id"], "cancelled")
    # Forged: a replacement of another e-ZLA by the same doctor does not cancel this one.
    unrelated = _submit(client, signed_sick_leave(doctor))
    _submit(client, signed_sick_leave(doctor, replaces=_number(unrelated)))
    foreign = _registry_body(session_factory, unrelated["id"], "cancelled")
    forged = {
        **cancelled,
        "replacement_xml": foreign["replacement_xml"],
        "replacement_receipt_xml": foreign["replacement_receipt_xml"],
    }
    r = httpx.put(f"{registry}/v1/registry/ezla/{old['id']}", json=forged, headers=WRITE, timeout=30)
    assert (r.status_code, r.json()["code"]) == (422, "evidence-mismatch")
    # Forged: the replacement's receipt swapped for another document's.
    swapped = {**cancelled, "replacement_receipt_xml": issued["receipt_xml"]}
    r = httpx.put(f"{registry}/v1/registry/ezla/{old['id']}", json=swapped, headers=WRITE, timeout=30)
    assert (r.status_code, r.json()["code"]) == (422, "evidence-mismatch")
    assert httpx.get(f"{registry}/v1/registry/ezla/{old['id']}", headers=READ).json()["status"] == "issued"
    # The genuine one.
    r = httpx.put(f"{registry}/v1/registry/ezla/{old['id']}", json=cancelled, headers=WRITE, timeout=30)
    assert r.status_code in (200, 201), r.text
    record = httpx.get(f"{registry}/v1/registry/ezla/{old['id']}", headers=READ).json()
    assert record["status"] == "cancelled" and record["cancelled_at"]
    assert base64.b64decode(cancelled["replacement_xml"])  # the evidence travelled as sent
    # A plain cancellation still needs the doctor's signed Cancellation.
    plain = {**cancelled}
    plain.pop("replacement_xml")
    plain.pop("replacement_receipt_xml")
    r = httpx.put(f"{registry}/v1/registry/ezla/{old['id']}", json=plain, headers=WRITE, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "bad-request"

"""Medical assistants: authorised by the doctor's signature, they prepare drafts for that doctor
only; the doctor signs and submits; revocation cuts access at once; an assistant never signs."""

from __future__ import annotations

import base64
from typing import Any

from ezla.proof import holder_message, sign_proof
from ezla.xades import sign_enveloped
from tests.factories import XML, EnrolledDoctor, enroll, log_in, signed_sick_leave
from tests.integration.issuance.kit import unsigned

ASSISTANT_PESEL = "90051402463"


def _assistant(client: Any, operator_token: str) -> tuple[int, dict[str, str]]:
    r = client.post(
        "/v1/accounts",
        json={"role": "assistant", "pesel": ASSISTANT_PESEL, "label": "rejestracja"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 201, r.text
    return r.json()["account"]["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def _doctor(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(client, doctor).json()['token']}"}


def _authorisation(client: Any, doctor: EnrolledDoctor, assistant_id: int, *, key: Any = None) -> dict[str, Any]:
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    message = holder_message("authorise-assistant", doctor.serial, challenge, str(assistant_id))
    signature = base64.b64encode(sign_proof(key or doctor.key, message)).decode()
    return {"assistant_id": assistant_id, "serial": doctor.serial, "challenge": challenge, "signature": signature}


def _authorise(client: Any, doctor: EnrolledDoctor, assistant_id: int) -> None:
    r = client.post(
        "/v1/doctor/assistants", json=_authorisation(client, doctor, assistant_id), headers=_doctor(client, doctor)
    )
    assert r.status_code == 201, r.text


def test_an_assistant_prepares_and_the_doctor_signs(client: Any, operator_token: str, doctor: EnrolledDoctor) -> None:
    assistant_id, assistant = _assistant(client, operator_token)
    _authorise(client, doctor, assistant_id)
    dr = _doctor(client, doctor)
    listed = client.get("/v1/doctor/assistants", headers=dr).json()["items"]
    assert [(a["assistant_id"], a["revoked_at"]) for a in listed] == [(assistant_id, None)]

    draft_xml = unsigned(doctor)
    r = client.post("/v1/drafts", params={"doctor": doctor.npwz}, content=draft_xml, headers={**assistant, **XML})
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["valid"] is True and draft["doctor_npwz"] == doctor.npwz and draft["created_by"] == assistant_id
    # A draft with mistakes is kept, with its findings.
    broken = unsigned(doctor, icd10="Z99.ZZZZ")
    r = client.post("/v1/drafts", params={"doctor": doctor.npwz}, content=broken, headers={**assistant, **XML})
    assert r.json()["valid"] is False and [f["code"] for f in r.json()["findings"]] == ["diagnosis-unknown"]
    fixed = client.put(f"/v1/drafts/{r.json()['id']}", content=unsigned(doctor), headers={**assistant, **XML}).json()
    assert fixed["valid"] is True

    # The doctor sees both, fetches one, signs it and submits it.
    assert {d["id"] for d in client.get("/v1/drafts", headers=dr).json()["items"]} == {draft["id"], fixed["id"]}
    xml = client.get(f"/v1/drafts/{draft['id']}", headers={**dr, "Accept": "application/xml"}).content
    assert xml == draft_xml
    signed = sign_enveloped(xml, doctor.key, doctor.cert)
    accepted = client.post("/v1/ezla", content=signed, headers=XML)
    assert accepted.status_code == 201, accepted.text
    assert client.get(f"/v1/drafts/{draft['id']}", headers=dr).json()["submitted_ezla_id"] == accepted.json()["id"]
    assert client.put(f"/v1/drafts/{draft['id']}", content=draft_xml, headers={**assistant, **XML}).status_code == 400

    # Revoked: the assistant loses the drafts and cannot write new ones, at once.
    assert client.delete(f"/v1/doctor/assistants/{assistant_id}", headers=dr).status_code == 204
    assert client.get(f"/v1/drafts/{fixed['id']}", headers=assistant).status_code == 403
    assert client.get("/v1/drafts", headers=assistant).json()["items"] == []
    r = client.post("/v1/drafts", params={"doctor": doctor.npwz}, content=draft_xml, headers={**assistant, **XML})
    assert r.status_code == 403
    assert client.get(f"/v1/drafts/{fixed['id']}", headers=dr).status_code == 200  # still the doctor's


def test_an_assistant_never_sees_another_doctors_drafts_and_never_signs(
    client: Any, operator_token: str, doctor: EnrolledDoctor
) -> None:
    assistant_id, assistant = _assistant(client, operator_token)
    _authorise(client, doctor, assistant_id)
    other = enroll(client, operator_token)
    other_auth = _doctor(client, other)
    theirs = client.post("/v1/drafts", content=unsigned(other), headers={**other_auth, **XML}).json()
    assert client.get(f"/v1/drafts/{theirs['id']}", headers=assistant).status_code == 403
    assert client.get(f"/v1/drafts/{theirs['id']}", headers=_doctor(client, doctor)).status_code == 403
    r = client.post("/v1/drafts", params={"doctor": other.npwz}, content=unsigned(other), headers={**assistant, **XML})
    assert r.status_code == 403  # not authorised by that doctor
    r = client.post("/v1/drafts", content=unsigned(doctor), headers={**assistant, **XML})
    assert r.status_code == 400  # an assistant names the doctor
    # Doctor-only operations are closed to an assistant.
    for method, path in (
        ("POST", "/v1/ezla/validation"),
        ("GET", "/v1/doctor/ezla"),
        ("POST", "/v1/ezla/number-reservations"),
        ("GET", "/v1/insured/44051401359/payers?purpose=issuing"),
    ):
        r = client.request(method, path, headers={**assistant, **XML}, content=b"<x/>")
        assert r.status_code == 403, (path, r.text)
    # A draft is unsigned: a signed document is not one.
    r = client.post(
        "/v1/drafts", params={"doctor": doctor.npwz}, content=signed_sick_leave(doctor), headers={**assistant, **XML}
    )
    assert r.status_code == 400
    assert client.post("/v1/drafts", content=b"<not-xml", headers={**assistant, **XML}).status_code == 400


def test_the_authorisation_is_the_doctors_own_signature(
    client: Any, operator_token: str, doctor: EnrolledDoctor
) -> None:
    assistant_id, _ = _assistant(client, operator_token)
    dr = _doctor(client, doctor)
    other = enroll(client, operator_token)
    forged = _authorisation(client, doctor, assistant_id, key=other.key)
    r = client.post("/v1/doctor/assistants", json=forged, headers=dr)
    assert (r.status_code, r.json()["code"]) == (401, "proof-invalid")
    someone_elses = {**_authorisation(client, other, assistant_id)}
    r = client.post("/v1/doctor/assistants", json=someone_elses, headers=dr)
    assert r.status_code == 403  # another doctor's certificate
    body = _authorisation(client, doctor, assistant_id)
    assert client.post("/v1/doctor/assistants", json=body, headers=dr).status_code == 201
    r = client.post("/v1/doctor/assistants", json=body, headers=dr)  # the challenge is spent
    assert (r.status_code, r.json()["code"]) == (401, "challenge-invalid")
    # Only an assistant's account can be authorised; an assistant cannot authorise anyone.
    not_assistant = _authorisation(client, doctor, 1)
    assert client.post("/v1/doctor/assistants", json=not_assistant, headers=dr).status_code == 404
    assert client.delete("/v1/doctor/assistants/999999", headers=dr).status_code == 404

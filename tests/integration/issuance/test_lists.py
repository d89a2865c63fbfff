"""A doctor's list of e-ZLA and the e-ZLA related to one: filters, keyset paging, who may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ezla.document.model import Incapacity
from ezla.issuance.samples import FEMALE_PATIENT
from tests.factories import XML, EnrolledDoctor, enroll, log_in, signed_cancellation, signed_sick_leave
from tests.integration.issuance.kit import today


def _auth(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(client, doctor).json()['token']}"}


def _submit(client: Any, doctor: EnrolledDoctor, **overrides: Any) -> dict[str, Any]:
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, **overrides), headers=XML)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_doctor_pages_through_their_own_e_zla_newest_first(
    client: Any, operator_token: str, doctor: EnrolledDoctor
) -> None:
    mine = [_submit(client, doctor)["id"] for _ in range(5)]
    other = enroll(client, operator_token)
    _submit(client, other)
    auth = _auth(client, doctor)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"after": cursor} if cursor else {})}
        page = client.get("/v1/doctor/ezla", params=params, headers=auth).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(mine) and len(seen) == 5  # every one once, nobody else's
    first = client.get("/v1/doctor/ezla", headers=auth).json()["items"][0]
    assert set(first) >= {"series", "number", "status", "issue_date", "incapacity", "patient", "codes", "icd10"}


def test_filters_by_status_and_date_of_issue(client: Any, doctor: EnrolledDoctor) -> None:
    auth = _auth(client, doctor)
    a = _submit(client, doctor)
    _submit(client, doctor, today=today() - timedelta(days=2))
    info = client.get(f"/v1/ezla/{a['id']}", headers=auth).json()
    cancel = signed_cancellation(
        doctor, document_id=info["document"]["document_id"], series=a["series"], number=a["number"]
    )
    assert client.post(f"/v1/ezla/{a['id']}/cancellation", content=cancel, headers=XML).status_code == 200

    def ids(**params: Any) -> list[str]:
        r = client.get("/v1/doctor/ezla", params=params, headers=auth)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(status="cancelled") == [a["id"]]
    assert len(ids(status="issued")) == 1
    assert ids(**{"from": today().isoformat()}) == [a["id"]]
    assert len(ids(to=(today() - timedelta(days=1)).isoformat())) == 1
    for bad in ({"status": "deleted"}, {"statuss": "issued"}, {"after": "!!"}, {"limit": 0}, {"from": "yesterday"}):
        r = client.get("/v1/doctor/ezla", params=bad, headers=auth)
        assert r.status_code == 400, (bad, r.text)


def test_only_doctors_have_a_list(client: Any, operator_token: str) -> None:
    assert client.get("/v1/doctor/ezla").status_code == 401
    r = client.get("/v1/doctor/ezla", headers={"Authorization": f"Bearer {operator_token}"})
    assert r.status_code == 403


def test_related_e_zla_of_the_same_patient(client: Any, operator_token: str, doctor: EnrolledDoctor) -> None:
    t = today()
    first = _submit(client, doctor, incapacity=Incapacity(start=t - timedelta(days=3), end=t - timedelta(days=1)))
    # Continuing without a break, another illness.
    second = _submit(client, doctor, incapacity=Incapacity(start=t, end=t + timedelta(days=4)), icd10="M54.5")
    # Same illness as the first, 10 days after the second ends; by another doctor.
    other = enroll(client, operator_token)
    third = _submit(
        client, other, incapacity=Incapacity(start=t + timedelta(days=15), end=t + timedelta(days=20)), codes=("A",)
    )
    # Another patient: never related.
    _submit(client, doctor, patient=FEMALE_PATIENT)
    auth = _auth(client, doctor)
    r = client.get(f"/v1/ezla/{first['id']}/related", headers=auth)
    assert r.status_code == 200, r.text
    items = {i["id"]: i for i in r.json()["items"]}
    assert set(items) == {second["id"], third["id"]}
    s = items[second["id"]]
    assert (s["relation"], s["days_between"], s["same_diagnosis"]) == ("continuous", 0, False)
    assert (items[third["id"]]["relation"], items[third["id"]]["days_between"]) == ("within-60-days", 15)
    assert items[third["id"]]["same_diagnosis"] is True and items[third["id"]]["codes"] == ["A"]
    assert "icd10" not in items[third["id"]]  # another doctor's diagnosis is not shown
    # Only the issuing doctor (or an operator) may ask about this e-ZLA.
    assert client.get(f"/v1/ezla/{first['id']}/related", headers=_auth(client, other)).status_code == 403
    op = {"Authorization": f"Bearer {operator_token}"}
    assert client.get(f"/v1/ezla/{first['id']}/related", headers=op).status_code == 200

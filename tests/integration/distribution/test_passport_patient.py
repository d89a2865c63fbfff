"""A patient without a PESEL, identified by passport (number, country, birth date, sex): written,
checked, and delivered to all three recipients; found in the registry by passport."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from ezla.auth.service import Role, create_account
from ezla.db import transaction, utcnow
from ezla.document.model import Passport, Patient
from ezla.issuance.samples import PATIENT_ADDRESS
from tests.conftest import REGISTRY_READ_TOKEN
from tests.factories import XML, EnrolledDoctor, enroll, signed_sick_leave
from tests.integration.distribution.conftest import drain
from tests.integration.issuance.kit import today

READ = {"Authorization": f"Bearer {REGISTRY_READ_TOKEN}"}
GRETA = Patient(
    given_name="Greta",
    family_name="Müller",
    address=PATIENT_ADDRESS,
    passport=Passport(number="C01X00T47", country="DE", birth_date=date(1991, 4, 2), sex="F"),
)


def _submit(client: Any, doctor: EnrolledDoctor, status: int = 201, **overrides: Any) -> dict[str, Any]:
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, patient=GRETA, **overrides), headers=XML)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_passport_patient_reaches_all_three_recipients(
    client: Any, operator_token: str, session_factory: Any, make_worker: Any, registry: str
) -> None:
    doctor = enroll(client, operator_token)
    accepted = _submit(client, doctor, codes=("B",))  # the passport's sex counts for code B
    r = client.post(
        "/v1/accounts",
        json={"role": "patient", "passport": "DE:C01X00T47"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 201, r.text
    patient = {"Authorization": f"Bearer {r.json()['token']}"}
    with transaction(session_factory) as s:
        _, employer_token = create_account(s, Role.EMPLOYER, now=utcnow(), nip="5260250274")
    drain(make_worker())

    mine = client.get("/v1/patient/ezla", headers=patient).json()["items"]
    assert [i["ezla_id"] for i in mine] == [accepted["id"]]
    document = mine[0]["document"]
    assert document["patient"]["pesel"] is None
    assert document["patient"]["passport"] == {
        "number": "C01X00T47",
        "country": "DE",
        "birth_date": "1991-04-02",
        "sex": "F",
    }
    inbox = client.get("/v1/employer/ezla", headers={"Authorization": f"Bearer {employer_token}"}).json()["items"]
    payer_view = next(i["ezla"] for i in inbox if i["ezla"]["id"] == accepted["id"])
    assert payer_view["document"]["patient"]["passport"]["number"] == "C01X00T47"
    assert "icd10" not in payer_view["document"]
    record = httpx.get(f"{registry}/v1/registry/ezla/{accepted['id']}", headers=READ, timeout=30).json()
    assert record["status"] == "issued" and record["document"]["patient"]["passport"]["country"] == "DE"
    found = httpx.get(f"{registry}/v1/registry/ezla", params={"passport": "DE:C01X00T47"}, headers=READ, timeout=30)
    assert accepted["id"] in [i["id"] for i in found.json()["items"]]
    # A PESEL patient's token never sees it, and the passport account sees nothing else.
    assert len(mine) == 1


def test_passport_rules(client: Any, operator_token: str) -> None:
    doctor = enroll(client, operator_token)
    unborn = Patient(
        given_name="A",
        family_name="B",
        address=PATIENT_ADDRESS,
        passport=Passport(number="X1234567", country="FR", birth_date=today() + timedelta(days=1), sex="M"),
    )
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, patient=unborn, codes=("B",)), headers=XML)
    problem = r.json()
    assert (r.status_code, problem["code"]) == (422, "patient-birth-date-invalid")
    assert [f["code"] for f in problem["findings"]] == ["patient-birth-date-invalid", "pregnancy-code-not-female"]
    bad_country = signed_sick_leave(doctor, patient=GRETA).replace(b"<Country>DE<", b"<Country>de<")
    assert client.post("/v1/ezla", content=bad_country, headers=XML).json()["code"] in (
        "schema-invalid",
        "signature-invalid",
    )
    for passport in ("de:C01X00T47", "DE:c0", "C01X00T47"):
        r = client.post(
            "/v1/accounts",
            json={"role": "patient", "passport": passport},
            headers={"Authorization": f"Bearer {operator_token}"},
        )
        assert r.status_code == 400, (passport, r.text)

"""Insurance relations: payers report employees and family members; doctors look up only what
issuing needs, each look-up audited with the doctor and the purpose; the authorization matrix."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from ezla.db import reading
from ezla.insurance.service import pseudonym
from ezla.issuance.samples import sample_sick_leave
from tests.factories import XML, EnrolledDoctor, log_in
from tests.integration.issuance.kit import today, unsigned

PATIENT = "44051401359"  # the sample e-ZLA's patient


def _account(client: Any, operator_token: str, **payload: str) -> dict[str, str]:
    r = client.post("/v1/accounts", json=payload, headers={"Authorization": f"Bearer {operator_token}"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _doctor(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(client, doctor).json()['token']}"}


def _audit_events(session_factory: Any) -> list[tuple[str, str, dict[str, Any]]]:
    with reading(session_factory) as s:
        rows = [
            *s.execute(text("SELECT action, subject, details FROM ca_audit_events ORDER BY seq")).all(),
            *s.execute(text("SELECT action, subject, details FROM audit_pending ORDER BY id")).all(),
        ]
    return [(a, subj, json.loads(d)) for a, subj, d in rows]


def test_payers_report_and_doctors_look_up(
    client: Any, operator_token: str, session_factory: Any, doctor: EnrolledDoctor
) -> None:
    payer = _account(client, operator_token, role="employer", nip="5260250274")
    t = today()
    r = client.put(
        f"/v1/employer/employees/{PATIENT}",
        json={"payer_name": "Zakład Przykładowy S.A.", "from": (t - timedelta(days=400)).isoformat()},
        headers=payer,
    )
    assert r.status_code == 200 and r.json()["created"] is True, r.text
    other = _account(client, operator_token, role="employer", nip="1132853869")
    ended = {
        "payer_name": "Dawny Pracodawca sp. z o.o.",
        "from": "2020-01-01",
        "to": (t - timedelta(days=30)).isoformat(),
    }
    assert client.put(f"/v1/employer/employees/{PATIENT}", json=ended, headers=other).status_code == 200
    family = {
        "members": [
            {"given_name": "Zosia", "family_name": "Kowalska", "birth_date": "2016-03-05", "relationship": 1},
            {"given_name": "Ewa", "family_name": "Kowalska", "birth_date": "1950-01-01", "relationship": 3},
        ]
    }
    r = client.put(f"/v1/employer/employees/{PATIENT}/family", json=family, headers=payer)
    assert (r.status_code, r.json()["members"]) == (200, 2), r.text

    auth = _doctor(client, doctor)
    payers = client.get(f"/v1/insured/{PATIENT}/payers", params={"purpose": "issuing"}, headers=auth)
    assert payers.status_code == 200, payers.text
    assert payers.json()["payers"] == [
        {
            "nip": "5260250274",
            "name": "Zakład Przykładowy S.A.",
            "from": (t - timedelta(days=400)).isoformat(),
            "to": None,
        }
    ]
    back_then = client.get(
        f"/v1/insured/{PATIENT}/payers",
        params={"purpose": "correction", "on": (t - timedelta(days=60)).isoformat()},
        headers=auth,
    ).json()["payers"]
    assert {p["nip"] for p in back_then} == {"5260250274", "1132853869"}
    members = client.get(f"/v1/insured/{PATIENT}/family", params={"purpose": "family-care"}, headers=auth).json()[
        "members"
    ]
    assert members == [
        {"given_name": "Ewa", "family_name": "Kowalska", "birth_date": "1950-01-01", "relationship": 3},
        {"given_name": "Zosia", "family_name": "Kowalska", "birth_date": "2016-03-05", "relationship": 1},
    ]
    # Audited: who, why, whom (as a pseudonym), how much was found; no PESEL or name in the trail.
    lookups = [(a, s, d) for a, s, d in _audit_events(session_factory) if a.startswith("lookup_")]
    assert lookups == [
        ("lookup_payers", pseudonym(PATIENT), {"npwz": doctor.npwz, "purpose": "issuing", "found": 1}),
        ("lookup_payers", pseudonym(PATIENT), {"npwz": doctor.npwz, "purpose": "correction", "found": 2}),
        ("lookup_family", pseudonym(PATIENT), {"npwz": doctor.npwz, "purpose": "family-care", "found": 2}),
    ]
    assert PATIENT not in json.dumps(_audit_events(session_factory)) and "Kowalska" not in json.dumps(
        _audit_events(session_factory)
    )
    # Withdrawing the relation takes the family reported with it.
    assert client.delete(f"/v1/employer/employees/{PATIENT}", headers=payer).status_code == 204
    assert (
        client.get(f"/v1/insured/{PATIENT}/family", params={"purpose": "issuing"}, headers=auth).json()["members"] == []
    )
    assert client.delete(f"/v1/employer/employees/{PATIENT}", headers=payer).status_code == 404


def test_bad_reports_and_look_ups_are_refused(client: Any, operator_token: str, doctor: EnrolledDoctor) -> None:
    payer = _account(client, operator_token, role="employer", nip="5260250274")
    for pesel, body in (
        ("44051401358", {"payer_name": "X", "from": "2020-01-01"}),  # check digit
        (PATIENT, {"payer_name": "X", "from": "2020-01-01", "to": "2019-01-01"}),
        (PATIENT, {"payer_name": "", "from": "2020-01-01"}),
        (PATIENT, {"payer_name": "X", "from": "2020-01-01", "salary": 1}),
    ):
        r = client.put(f"/v1/employer/employees/{pesel}", json=body, headers=payer)
        assert r.status_code == 400, (body, r.text)
    r = client.put(f"/v1/employer/employees/{PATIENT}/family", json={"members": []}, headers=payer)
    assert r.status_code == 404  # report the employee first
    client.put(f"/v1/employer/employees/{PATIENT}", json={"payer_name": "X", "from": "2020-01-01"}, headers=payer)
    bad_member = {"members": [{"given_name": "A", "family_name": "B", "relationship": 5, "birth_date": "2010-01-01"}]}
    assert client.put(f"/v1/employer/employees/{PATIENT}/family", json=bad_member, headers=payer).status_code == 400
    no_birth = {"members": [{"given_name": "A", "family_name": "B", "relationship": 1}]}
    assert client.put(f"/v1/employer/employees/{PATIENT}/family", json=no_birth, headers=payer).status_code == 400
    auth = _doctor(client, doctor)
    for params in ({}, {"purpose": "curiosity"}, {"purpose": "issuing", "pesel": PATIENT}):
        r = client.get(f"/v1/insured/{PATIENT}/payers", params=params, headers=auth)
        assert r.status_code == 400, (params, r.text)
    assert client.get("/v1/insured/44051401358/payers", params={"purpose": "issuing"}, headers=auth).status_code == 400


def test_who_may_report_and_who_may_look_up(client: Any, operator_token: str, doctor: EnrolledDoctor) -> None:
    employer = _account(client, operator_token, role="employer", nip="5260250274")
    patient = _account(client, operator_token, role="patient", pesel=PATIENT)
    operator = {"Authorization": f"Bearer {operator_token}"}
    dr = _doctor(client, doctor)
    body = {"payer_name": "X", "from": "2020-01-01"}
    for who, expected in ((None, 401), (patient, 403), (operator, 403), (dr, 403), (employer, 200)):
        r = client.put(f"/v1/employer/employees/{PATIENT}", json=body, headers=who or {})
        assert r.status_code == expected, (who, r.text)
    for who, expected in ((None, 401), (patient, 403), (operator, 403), (employer, 403), (dr, 200)):
        r = client.get(f"/v1/insured/{PATIENT}/payers", params={"purpose": "issuing"}, headers=who or {})
        assert r.status_code == expected, (who, r.text)


def test_the_dry_run_questions_a_payer_that_does_not_insure_the_patient(
    client: Any, operator_token: str, doctor: EnrolledDoctor
) -> None:
    auth = {**_doctor(client, doctor), **XML}

    def warnings() -> list[str]:
        r = client.post("/v1/ezla/validation", content=unsigned(doctor), headers=auth)
        return [f["code"] for f in r.json()["findings"] if f["severity"] == "warning"]

    assert warnings() == []  # nobody reported anything of this patient: nothing to judge by
    other = _account(client, operator_token, role="employer", nip="1132853869")
    client.put(f"/v1/employer/employees/{PATIENT}", json={"payer_name": "Inny", "from": "2020-01-01"}, headers=other)
    assert warnings() == ["payer-not-registered"]
    payer = _account(client, operator_token, role="employer", nip=sample_sick_leave(today=today()).payer.nip or "")
    client.put(f"/v1/employer/employees/{PATIENT}", json={"payer_name": "Zakład", "from": "2020-01-01"}, headers=payer)
    assert warnings() == []

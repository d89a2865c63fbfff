"""POST /v1/ezla/validation: every finding at once, signed or unsigned, storing nothing; and
submission refusals that list every finding too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ezla.document.model import Clinic, Incapacity
from ezla.issuance.samples import sample_sick_leave
from tests.factories import XML, EnrolledDoctor, enroll, log_in, signed_cancellation, signed_sick_leave
from tests.integration.issuance.kit import refused, stored, today, unsigned


@pytest.fixture
def doctor_auth(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    token = log_in(client, doctor).json()["token"]
    return {"Authorization": f"Bearer {token}", **XML}


def validate(client: Any, auth: dict[str, str], body: bytes) -> dict[str, Any]:
    r = client.post("/v1/ezla/validation", content=body, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def codes(result: dict[str, Any], severity: str = "error") -> list[tuple[str, str]]:
    return [(f["code"], f["path"]) for f in result["findings"] if f["severity"] == severity]


def test_a_genuine_signed_e_zla_is_valid_and_nothing_is_stored(
    client: Any, session_factory: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    before = stored(session_factory)
    result = validate(client, doctor_auth, signed_sick_leave(doctor))
    assert result["valid"] is True and result["signed"] is True and result["kind"] == "SickLeave"
    assert codes(result) == []
    assert result["report"]["indication"] == "TOTAL-PASSED"
    assert stored(session_factory) == before


def test_every_broken_rule_of_an_unsigned_draft_at_once(
    client: Any, session_factory: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    clinic = sample_sick_leave(today=today()).clinic
    body = unsigned(
        doctor,
        codes=("B",),
        icd10="Z99.ZZZZ",
        clinic=Clinic(regon="123456786", name=clinic.name, address=clinic.address),
        incapacity=Incapacity(start=today() - timedelta(days=5), end=today() + timedelta(days=2)),
    )
    before = stored(session_factory)
    result = validate(client, doctor_auth, body)
    assert result["valid"] is False and result["signed"] is False and result["report"] is None
    assert codes(result) == [
        ("regon-invalid", "/SickLeave/Clinic/Regon"),
        ("pregnancy-code-not-female", "/SickLeave/Codes"),
        ("diagnosis-unknown", "/SickLeave/Diagnosis/Icd10"),
        ("incapacity-backdated", "/SickLeave/Incapacity/From"),
    ]
    assert stored(session_factory) == before
    # The same document signed and submitted: refused with the first, listing all four.
    problem = refused(
        client,
        session_factory,
        signed_sick_leave(
            doctor,
            codes=("B",),
            icd10="Z99.ZZZZ",
            clinic=Clinic(regon="123456786", name=clinic.name, address=clinic.address),
            incapacity=Incapacity(start=today() - timedelta(days=5), end=today() + timedelta(days=2)),
        ),
        422,
        "regon-invalid",
    )
    assert [(f["code"], f["path"]) for f in problem["findings"]] == codes(result)


def test_schema_errors_are_all_listed_with_their_elements(
    client: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    body = unsigned(doctor).replace(b"<Indication>2</Indication>", b"<Indication>7</Indication>")
    body = body.replace(b"<PostalCode>30-001</PostalCode>", b"<PostalCode>30001</PostalCode>")
    result = validate(client, doctor_auth, body)
    paths = [p for c, p in codes(result) if c == "schema-invalid"]
    assert "/SickLeave/Indication" in paths and "/SickLeave/Patient/Address/PostalCode" in paths
    assert not any("30001" in f["message"] for f in result["findings"])  # values are never quoted


def test_a_broken_signature_is_reported_and_the_content_still_judged(
    client: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    body = signed_sick_leave(doctor, icd10="Z99.ZZZZ").replace(b"<Indication>2<", b"<Indication>1<")
    result = validate(client, doctor_auth, body)
    assert result["valid"] is False and result["signed"] is True
    assert codes(result) == [
        ("signature-invalid", "/SickLeave/Signature"),
        ("diagnosis-unknown", "/SickLeave/Diagnosis/Icd10"),
    ]
    assert result["report"]["indication"] == "TOTAL-FAILED"


def test_an_unsigned_document_is_judged_as_the_calling_doctors(
    client: Any, operator_token: str, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    other = enroll(client, operator_token)
    result = validate(client, doctor_auth, unsigned(other))
    assert codes(result) == [("signer-not-doctor", "/SickLeave/Doctor/Npwz")]


def test_malformed_xml_is_a_finding_not_a_failure(client: Any, doctor_auth: dict[str, str]) -> None:
    result = validate(client, doctor_auth, b"<SickLeave")
    assert result == {
        "valid": False,
        "kind": "unknown",
        "signed": False,
        "findings": [result["findings"][0]],
        "report": None,
    }
    assert result["findings"][0]["code"] == "xml-malformed"
    attack = b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    assert codes(validate(client, doctor_auth, attack))[0][0] == "xml-forbidden-construct"


def test_code_a_and_overlaps_are_checked_against_the_patients_other_e_zla(
    client: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    t = today()
    first = Incapacity(start=t - timedelta(days=2), end=t + timedelta(days=2))
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, incapacity=first), headers=XML)
    assert r.status_code == 201, r.text
    accepted = r.json()
    # Same illness (J06), 7 days after the first ended: code A is due.
    later = Incapacity(start=t + timedelta(days=10), end=t + timedelta(days=14))
    result = validate(client, doctor_auth, unsigned(doctor, incapacity=later))
    assert result["valid"] is True
    (code_a,) = [f for f in result["findings"] if f["code"] == "code-a-missing"]
    assert code_a["severity"] == "warning" and code_a["path"] == "/SickLeave/Codes"
    assert f"{accepted['series']} {accepted['number']}" in code_a["message"]
    assert codes(validate(client, doctor_auth, unsigned(doctor, incapacity=later, codes=("A",))), "warning") == []
    # Another illness: no code A either way; claiming it is questioned.
    other = validate(client, doctor_auth, unsigned(doctor, incapacity=later, icd10="M54.5", codes=("A",)))
    assert codes(other, "warning") == [("code-a-without-earlier-leave", "/SickLeave/Codes")]
    # 61 days of break is too long for code A.
    far = Incapacity(start=first.end + timedelta(days=62), end=first.end + timedelta(days=64))
    assert codes(validate(client, doctor_auth, unsigned(doctor, incapacity=far)), "warning") == []
    # An overlapping period.
    overlap = Incapacity(start=t, end=t + timedelta(days=3))
    assert ("overlaps-active-leave", "/SickLeave/Incapacity") in codes(
        validate(client, doctor_auth, unsigned(doctor, incapacity=overlap)), "warning"
    )
    # Once the first is cancelled, it no longer counts.
    info = client.get(f"/v1/ezla/{accepted['id']}", headers=doctor_auth).json()
    cancellation = signed_cancellation(
        doctor,
        document_id=info["document"]["document_id"],
        series=accepted["series"],
        number=accepted["number"],
    )
    assert client.post(f"/v1/ezla/{accepted['id']}/cancellation", content=cancellation, headers=XML).status_code == 200
    assert codes(validate(client, doctor_auth, unsigned(doctor, incapacity=later)), "warning") == []


def test_a_long_period_for_a_cold_is_questioned(
    client: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    long = Incapacity(start=today(), end=today() + timedelta(days=20))
    result = validate(client, doctor_auth, unsigned(doctor, incapacity=long))
    assert result["valid"] is True
    assert codes(result, "warning") == [("period-longer-than-usual", "/SickLeave/Incapacity")]


def test_cancellations_are_validated_against_the_e_zla_they_name(
    client: Any, doctor: EnrolledDoctor, doctor_auth: dict[str, str]
) -> None:
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    accepted = r.json()
    document_id = client.get(f"/v1/ezla/{accepted['id']}", headers=doctor_auth).json()["document"]["document_id"]
    good = signed_cancellation(doctor, document_id=document_id, series=accepted["series"], number=accepted["number"])
    result = validate(client, doctor_auth, good)
    assert (result["valid"], result["kind"], codes(result)) == (True, "Cancellation", [])
    wrong = signed_cancellation(doctor, document_id=document_id, series=accepted["series"], number="0000000")
    assert codes(validate(client, doctor_auth, wrong)) == [("cancellation-mismatch", "/Cancellation/Number")]
    unknown = signed_cancellation(
        doctor, document_id="00000000-0000-4000-8000-000000000000", series="ZA", number="0000001"
    )
    assert codes(validate(client, doctor_auth, unknown)) == [("ezla-not-found", "/Cancellation/@DocumentId")]


def test_only_doctors_may_validate(client: Any, operator_token: str, doctor: EnrolledDoctor) -> None:
    body = signed_sick_leave(doctor)
    assert client.post("/v1/ezla/validation", content=body, headers=XML).status_code == 401
    for role, extra in (
        ("operator", []),
        ("employer", ["--nip", "5260250274"]),
        ("patient", ["--pesel", "44051401359"]),
    ):
        token = operator_token if role == "operator" else _account(client, operator_token, role, extra)
        r = client.post("/v1/ezla/validation", content=body, headers={"Authorization": f"Bearer {token}", **XML})
        assert r.status_code == 403, (role, r.text)


def _account(client: Any, operator_token: str, role: str, extra: list[str]) -> str:
    payload: dict[str, str] = {"role": role}
    if extra:
        payload[extra[0].lstrip("-")] = extra[1]
    r = client.post("/v1/accounts", json=payload, headers={"Authorization": f"Bearer {operator_token}"})
    assert r.status_code == 201, r.text
    return r.json()["token"]  # type: ignore[no-any-return]

"""Number pools for offline work: reserved on either node, claimed once, never reused, expiring."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from ezla.db import transaction, utcnow
from ezla.document.model import ReservedNumber
from ezla.issuance.models import NumberReservation
from tests.factories import XML, EnrolledDoctor, enroll, log_in, signed_sick_leave
from tests.integration.issuance.kit import stored, today, unsigned


def _doctor_on(node: Any) -> EnrolledDoctor:
    from ezla.auth.service import Role, create_account

    with transaction(node.app.state.sessionmaker) as s:
        _, operator = create_account(s, Role.OPERATOR, now=utcnow())
    return enroll(node, operator)


def _auth(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(client, doctor).json()['token']}"}


def _reserve(client: Any, auth: dict[str, str], count: int) -> list[ReservedNumber]:
    r = client.post("/v1/ezla/number-reservations", json={"count": count}, headers=auth)
    assert r.status_code == 201, r.text
    return [ReservedNumber(series=x["series"], number=x["number"]) for x in r.json()["reservations"]]


def test_a_paper_e_zla_is_accepted_under_its_reserved_number_once(twins: tuple[Any, Any]) -> None:
    """Two nodes (PostgreSQL) sharing the pool."""
    client, twin = twins
    session_factory = client.app.state.sessionmaker
    doctor = _doctor_on(client)
    auth = _auth(client, doctor)
    on_a = _reserve(client, auth, 3)
    on_b = _reserve(twin, auth, 2)
    numbers = [(r.series, r.number) for r in on_a + on_b]
    assert len(set(numbers)) == 5  # one counter for both nodes
    listed = client.get("/v1/ezla/number-reservations", headers=auth).json()["reservations"]
    assert [(x["series"], x["number"]) for x in listed] == numbers

    body = signed_sick_leave(doctor, reserved_number=on_a[1])
    r = twin.post("/v1/ezla", content=body, headers=XML)
    assert r.status_code == 201, r.text
    assert (r.json()["series"], r.json()["number"]) == (on_a[1].series, on_a[1].number)
    receipt = client.get(f"/v1/ezla/{r.json()['id']}/receipt", headers=auth).text
    assert f"<Number>{on_a[1].number}</Number>" in receipt
    # The same document again: the same answer, on either node.
    again = client.post("/v1/ezla", content=body, headers=XML)
    assert (again.status_code, again.json()) == (200, r.json())
    # Another document with the same number: refused, nothing stored.
    before = stored(session_factory)
    r2 = client.post("/v1/ezla", content=signed_sick_leave(doctor, reserved_number=on_a[1]), headers=XML)
    assert (r2.status_code, r2.json()["code"]) == (409, "reserved-number-used")
    assert stored(session_factory) == before
    left = client.get("/v1/ezla/number-reservations", headers=auth).json()["reservations"]
    assert len(left) == 4
    # Numbers assigned later never repeat a reserved one.
    plain = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML).json()
    assert (plain["series"], plain["number"]) not in numbers


def test_two_nodes_racing_for_one_reserved_number(twins: tuple[Any, Any]) -> None:
    client, twin = twins
    doctor = _doctor_on(client)
    (reserved,) = _reserve(client, _auth(client, doctor), 1)
    bodies = [signed_sick_leave(doctor, reserved_number=reserved) for _ in range(6)]  # six DocumentIds
    nodes = [client, twin] * 3
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: nodes[i].post("/v1/ezla", content=bodies[i], headers=XML), range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]


def test_one_node_pool(client: Any, session_factory: Any, doctor: EnrolledDoctor) -> None:
    """SQLite (make run's single node) and PostgreSQL alike."""
    auth = _auth(client, doctor)
    reserved = _reserve(client, auth, 2)
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, reserved_number=reserved[0]), headers=XML)
    assert (r.status_code, r.json()["number"]) == (201, reserved[0].number)
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, reserved_number=reserved[0]), headers=XML)
    assert (r.status_code, r.json()["code"]) == (409, "reserved-number-used")
    assert len(client.get("/v1/ezla/number-reservations", headers=auth).json()["reservations"]) == 1


def test_who_may_use_a_reserved_number_and_until_when(
    client: Any, operator_token: str, session_factory: Any, doctor: EnrolledDoctor
) -> None:
    (mine,) = _reserve(client, _auth(client, doctor), 1)
    other = enroll(client, operator_token)
    r = client.post("/v1/ezla", content=signed_sick_leave(other, reserved_number=mine), headers=XML)
    assert (r.status_code, r.json()["code"]) == (422, "reserved-number-unknown")
    never = ReservedNumber(series="AA", number="9999999")
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, reserved_number=never), headers=XML)
    assert (r.status_code, r.json()["code"]) == (422, "reserved-number-unknown")
    # Expired before the date of issue.
    with transaction(session_factory) as s:
        s.execute(
            update(NumberReservation)
            .where(NumberReservation.number == int(mine.number), NumberReservation.series == mine.series)
            .values(reserved_at=utcnow() - timedelta(days=40), expires_at=utcnow() - timedelta(days=10))
        )
    r = client.post("/v1/ezla", content=signed_sick_leave(doctor, reserved_number=mine), headers=XML)
    assert (r.status_code, r.json()["code"]) == (422, "reserved-number-expired")
    assert client.get("/v1/ezla/number-reservations", headers=_auth(client, doctor)).json()["reservations"] == []
    # The dry run says the same, as a finding.
    v = client.post(
        "/v1/ezla/validation", content=unsigned(doctor, reserved_number=mine), headers={**_auth(client, doctor), **XML}
    ).json()
    assert [(f["code"], f["path"]) for f in v["findings"]] == [("reserved-number-expired", "/SickLeave/Number")]
    assert today()  # dates are Warsaw's


def test_reservation_requests_are_bounded_and_for_doctors_only(
    client: Any, operator_token: str, doctor: EnrolledDoctor
) -> None:
    auth = _auth(client, doctor)
    for bad in ({"count": 0}, {"count": 101}, {"count": "three"}, {"count": 1, "series": "ZZ"}, {}):
        r = client.post("/v1/ezla/number-reservations", json=bad, headers=auth)
        assert r.status_code == 400, (bad, r.text)
    assert client.post("/v1/ezla/number-reservations", json={"count": 1}).status_code == 401
    op = {"Authorization": f"Bearer {operator_token}"}
    assert client.post("/v1/ezla/number-reservations", json={"count": 1}, headers=op).status_code == 403

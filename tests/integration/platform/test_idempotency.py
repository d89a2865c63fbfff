"""Idempotency-Key on state-changing requests (IETF httpapi draft), shared through the database."""

from __future__ import annotations

from datetime import UTC, datetime

from ezla.db import transaction
from ezla.idempotency import IdempotencyRecord
from tests.factories import enroll


def test_same_key_same_body_replays_the_answer(client, operator_token):
    doctor = enroll(client, operator_token)
    headers = {"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "rev-1"}
    first = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "superseded"}, headers=headers
    )
    assert first.status_code == 200
    again = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "superseded"}, headers=headers
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    # Without the key the second revocation is a plain conflict.
    plain = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "superseded"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert plain.status_code == 409 and plain.json()["code"] == "certificate-already-revoked"


def test_same_key_other_body_is_422(client, operator_token):
    doctor = enroll(client, operator_token)
    headers = {"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "rev-2"}
    path = f"/v1/ca/certificates/{doctor.serial}/revocation"
    assert client.post(path, json={"reason": "superseded"}, headers=headers).status_code == 200
    other = client.post(path, json={"reason": "keyCompromise"}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"


def test_key_still_in_flight_is_409(client, operator_token, session_factory):
    import hashlib

    body = b'{"npwz":"1","pesel":"1","given_name":"a","family_name":"b"}'
    auth = f"Bearer {operator_token}".encode()
    scope = hashlib.sha256(b"\0".join([b"busy", auth, b"POST", b"/v1/ca/doctors", b""])).hexdigest()
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        s.add(
            IdempotencyRecord(
                scope_hash=scope,
                request_hash=hashlib.sha256(body).hexdigest(),
                state="in_flight",
                created_at=now,
                expires_at=now.replace(year=now.year + 1),
            )
        )
    r = client.post(
        "/v1/ca/doctors",
        content=body,
        headers={
            "Authorization": f"Bearer {operator_token}",
            "Idempotency-Key": "busy",
            "content-type": "application/json",
        },
    )
    assert r.status_code == 409 and r.json()["code"] == "idempotency-in-flight"


def test_keys_are_scoped_by_credential(client, operator_token, session_factory):
    from ezla.auth.service import Role, create_account

    with transaction(session_factory) as s:
        _, other = create_account(s, Role.OPERATOR, now=datetime.now(UTC))
    first, second = enroll(client, operator_token), enroll(client, operator_token)
    a = client.post(
        f"/v1/ca/certificates/{first.serial}/revocation",
        json={"reason": "superseded"},
        headers={"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "k"},
    )
    b = client.post(
        f"/v1/ca/certificates/{second.serial}/revocation",
        json={"reason": "superseded"},
        headers={"Authorization": f"Bearer {other}", "Idempotency-Key": "k"},
    )
    assert a.status_code == 200 and b.status_code == 200 and a.json()["serial"] != b.json()["serial"]
    assert "idempotency-replayed" not in b.headers


def test_anonymous_errors_leave_no_record(client, session_factory):
    """A flood of bad anonymous requests, each with its own key, stores nothing."""
    from sqlalchemy import func, select

    from ezla.db import reading
    from ezla.idempotency import IdempotencyRecord

    for i in range(5):
        r = client.post(
            "/v1/ezla", content=b"<junk/>", headers={"content-type": "application/xml", "Idempotency-Key": f"k-{i}"}
        )
        assert 400 <= r.status_code < 500
    with reading(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_submissions_are_idempotent_by_their_content_not_the_key(client, operator_token, session_factory):
    """A signed e-ZLA carries its own key (DocumentId): the Idempotency-Key layer steps aside (no row,
    no two extra commits), and a repeat under any key gets the first e-ZLA back."""
    from sqlalchemy import func, select

    from ezla.db import reading
    from ezla.idempotency import IdempotencyRecord
    from tests.factories import enroll, signed_sick_leave

    doctor = enroll(client, operator_token)
    xml = signed_sick_leave(doctor)
    xml_headers = {"content-type": "application/xml"}
    first = client.post("/v1/ezla", content=xml, headers={**xml_headers, "Idempotency-Key": "s-1"})
    again = client.post("/v1/ezla", content=xml, headers={**xml_headers, "Idempotency-Key": "s-1"})
    other_key = client.post("/v1/ezla", content=xml, headers={**xml_headers, "Idempotency-Key": "s-2"})
    assert first.status_code == 201 and again.status_code == 200 and other_key.status_code == 200
    assert first.json()["id"] == again.json()["id"] == other_key.json()["id"]
    assert "idempotency-replayed" not in again.headers
    with reading(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0

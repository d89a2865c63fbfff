"""Anonymous work has limits (issue: trust lifecycle): floods get 429 with Retry-After and leave no
rows; wrong activation codes are counted where both nodes see them and lock a doctor's codes; the
small input rules (OCSP nonce, PKCS#12 password, RSA exponent) each have their own code."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from litestar import Request
from litestar.testing import TestClient
from sqlalchemy import func, select

from ezla.auth.models import SpentChallenge, Throttle
from ezla.auth.service import Role, create_account
from ezla.client import make_csr
from ezla.db import reading, transaction
from ezla.ratelimit import client_address
from ezla.settings import Settings
from tests.factories import enroll, log_in, register


def _spent(client: TestClient) -> int:  # type: ignore[type-arg]
    with reading(client.app.state.sessionmaker) as s:
        return s.scalar(select(func.count()).select_from(SpentChallenge)) or 0


def test_a_challenge_flood_gets_429_and_stores_nothing(settings: Settings):
    from ezla.app import create_app

    limited = settings.with_(rate_limits=(("challenge", 30),))
    with TestClient(app=create_app(limited)) as client:
        answers = [client.get("/v1/auth/challenge") for _ in range(40)]
        assert [r.status_code for r in answers] == [200] * 30 + [429] * 10
        refused = answers[-1]
        assert refused.json()["code"] == "rate-limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert _spent(client) == 0  # issuing a challenge writes nothing
        # Other endpoints are not in the bucket.
        assert client.get("/health/live").status_code == 200


def test_a_challenge_works_once_and_its_row_goes_when_it_would_have_expired(client, operator_token):
    from ezla.auth import service

    doctor = enroll(client, operator_token)
    assert log_in(client, doctor).status_code == 200
    assert _spent(client) == 1  # a challenge costs a row only once it is used
    sm, now = client.app.state.sessionmaker, datetime.now(UTC)
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    with transaction(sm) as s:
        service.consume_challenge(s, challenge, now=now)
    for bad, when in (
        (challenge, now),  # spent
        (challenge[:-4] + ("AAAA" if not challenge.endswith("AAAA") else "BBBB"), now),  # forged MAC
        ("not-a-challenge", now),
        # expired: issued just now (later than ``now`` on a slow machine), judged past its lifetime
        (
            client.get("/v1/auth/challenge").json()["challenge"],
            datetime.now(UTC) + service.CHALLENGE_TTL + timedelta(seconds=2),
        ),
    ):
        with pytest.raises(service.ChallengeInvalid), transaction(sm) as s:
            service.consume_challenge(s, bad, now=when)
    assert _spent(client) == 2
    # Spending one later sweeps the rows of challenges that have expired meanwhile.
    later = datetime.now(UTC) + service.CHALLENGE_TTL + timedelta(seconds=2)  # past every one issued above
    with transaction(sm) as s:
        future, _ = service.challenge_with(service.ensure_challenge_key(s), now=later)
        service.consume_challenge(s, future, now=later)
    assert _spent(client) == 1


def test_wrong_codes_are_counted_across_both_nodes(twins):
    a, b = twins
    for i in range(10):
        node = (a, b)[i % 2]
        r = node.post("/v1/ca/enrollments", json={"activation_code": f"WRONG-{i}", "csr_pem": make_csr_key()})
        assert r.json()["code"] == "activation-code-invalid", r.text
    with transaction(a.app.state.sessionmaker) as s:
        _, operator = create_account(s, Role.OPERATOR, now=datetime.now(UTC))
    reg = register(a, operator)
    for node in (a, b):  # even the right code waits now: the address has failed ten times
        r = node.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": make_csr_key()})
        assert (r.status_code, r.json()["code"]) == (429, "rate-limited"), r.text
        assert int(r.headers["retry-after"]) > 0
    with reading(a.app.state.sessionmaker) as s:
        assert s.scalar(select(Throttle.failures)) == 10


def make_csr_key() -> str:
    from ezla.client import new_key

    return make_csr(new_key("ec"))


def test_wrong_codes_naming_a_doctor_lock_its_codes(client, operator_token):
    op = {"Authorization": f"Bearer {operator_token}"}
    reg = register(client, operator_token)
    for i in range(5):
        r = client.post(
            "/v1/ca/enrollments",
            json={"activation_code": f"GUESS-{i}", "csr_pem": make_csr_key(), "npwz": reg["npwz"]},
        )
        assert r.json()["code"] == "activation-code-invalid"
    r = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": make_csr_key()})
    assert (r.status_code, r.json()["code"]) == (403, "activation-code-locked")
    shown = client.get(f"/v1/ca/doctors/{reg['npwz']}", headers=op).json()
    assert shown["activation_codes"][0]["locked"] and shown["activation_codes"][0]["failed_attempts"] == 5
    fresh = client.post(f"/v1/ca/doctors/{reg['npwz']}/activation-codes", headers=op).json()
    r = client.post("/v1/ca/enrollments", json={"activation_code": fresh["activation_code"], "csr_pem": make_csr_key()})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "password", ["        ", "12345678", "123456789012", "aaaaaaaaaaaaaa", "qwertyuiopasdf", "Password1234", "short1!"]
)
def test_weak_pkcs12_passwords_are_refused(client, operator_token, password):
    reg = register(client, operator_token)
    r = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "pkcs12_password": password})
    assert (r.status_code, r.json()["code"]) == (400, "pkcs12-password-weak"), r.text
    # The code was not spent: a good password still works.
    r = client.post(
        "/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "pkcs12_password": "kot Filemon 2026"}
    )
    assert r.status_code == 201


def test_rsa_exponent_3_is_refused(client, operator_token):
    reg = register(client, operator_token)
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    r = client.post("/v1/ca/enrollments", json={"activation_code": reg["activation_code"], "csr_pem": make_csr(key)})
    assert (r.status_code, r.json()["code"]) == (422, "key-exponent-not-allowed"), r.text


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (32, ocsp.OCSPResponseStatus.SUCCESSFUL),
        (33, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        (4000, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
    ],
)
def test_ocsp_nonces_longer_than_32_bytes_are_refused(client, operator_token, size, expected):
    doctor = enroll(client, operator_token)
    issuing = x509.load_pem_x509_certificates(client.get("/v1/ca/chain").content)[0]
    nonce = os.urandom(size)
    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(doctor.cert, issuing, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    r = client.post(
        "/v1/ca/ocsp",
        content=req.public_bytes(serialization.Encoding.DER),
        headers={"content-type": "application/ocsp-request"},
    )
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == expected
    if expected == ocsp.OCSPResponseStatus.SUCCESSFUL:
        assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def _request(peer: str, forwarded: str | list[str] | None) -> Request:  # type: ignore[type-arg]
    lines = [forwarded] if isinstance(forwarded, str) else (forwarded or [])
    headers = [(b"x-forwarded-for", line.encode()) for line in lines]
    return Request(scope={"type": "http", "client": (peer, 5555), "headers": headers, "path": "/", "query_string": b""})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy: its header is the client's own claim
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the leftmost entry is client-written
        ("10.1.2.3", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # a chain of trusted proxies
        ("127.0.0.1", None, "127.0.0.1"),
        # HAProxy adds its own line after the client's: the client's line is not believed.
        ("127.0.0.1", ["203.0.113.1", "198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "junk, 198.51.100.7", "198.51.100.7"),
    ],
)
def test_client_address_trusts_only_configured_proxies(peer, forwarded, expected):
    assert client_address(_request(peer, forwarded), ("127.0.0.1", "10.0.0.0/8")) == expected


def test_a_challenge_has_one_spelling(client):
    """base64 decoding is lenient; only the canonical string is a challenge, so no variant of a
    spent challenge spends again."""
    from ezla.auth import service

    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    sm = client.app.state.sessionmaker
    variants = [challenge[:-1] + c for c in "BCDRhx" if c != challenge[-1]] + [challenge + "=", challenge + "AAAA"]
    for variant in variants:
        with pytest.raises(service.ChallengeInvalid), transaction(sm) as s:
            service.consume_challenge(s, variant, now=datetime.now(UTC))
    with transaction(sm) as s:
        service.consume_challenge(s, challenge, now=datetime.now(UTC))


def test_odd_ids_and_ocsp_requests_are_4xx(client, operator_token):
    op = {"Authorization": f"Bearer {operator_token}"}
    r = client.delete("/v1/accounts/99999999999999999999", headers=op)
    assert r.status_code in (400, 404), r.text
    doctor = enroll(client, operator_token)
    issuing = x509.load_pem_x509_certificates(client.get("/v1/ca/chain").content)[0]
    from asn1crypto import ocsp as asn1_ocsp

    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(doctor.cert, issuing, hashes.SHA256())
        .add_extension(x509.OCSPNonce(b"1234"), critical=False)
        .build()
    )
    parsed = asn1_ocsp.OCSPRequest.load(req.public_bytes(serialization.Encoding.DER))
    exts = parsed["tbs_request"]["request_extensions"]
    exts.append(exts[0])  # the nonce twice
    r = client.post(
        "/v1/ca/ocsp", content=parsed.dump(force=True), headers={"content-type": "application/ocsp-request"}
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST

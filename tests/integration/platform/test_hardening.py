"""Edges found in review: login signatures, idempotency storage, OCSP GET encoding, odd inputs."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from lxml import etree

from ezla.auth.service import Role, create_account
from ezla.db import transaction
from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.service import check_webhook_url
from ezla.errors import BadRequest, ProofInvalid
from ezla.proof import check_challenge, sign_proof
from ezla.xades import sign_enveloped
from tests.factories import XML, doctor_payload, enroll, signed_sick_leave


def test_login_signature_is_bound_to_its_context(client, operator_token):
    doctor = enroll(client, operator_token)
    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    raw = base64.b64encode(sign_proof(doctor.key, challenge.encode())).decode()  # no context prefix
    r = client.post(
        "/v1/auth/doctor-token",
        json={
            "certificate_pem": doctor.cert.public_bytes(serialization.Encoding.PEM).decode(),
            "challenge": challenge,
            "signature": raw,
        },
    )
    assert r.status_code == 401 and r.json()["code"] == "proof-invalid"


def test_client_refuses_to_sign_a_foreign_challenge():
    assert check_challenge("A" * 53 + "w") == "A" * 53 + "w"
    for bad in ("<ds:SignedInfo xmlns:ds=...>", "A" * 43, "A" * 55, "A" * 53 + "B", "", "A" * 53 + "="):
        with pytest.raises(ProofInvalid):
            check_challenge(bad)


def test_oversized_body_with_idempotency_key_is_refused_early(client):
    r = client.post("/v1/ezla", content=b"<a/>" * 600_000, headers={**XML, "Idempotency-Key": "big"})
    assert r.status_code == 413 and r.json()["code"] == "payload-too-large"


def test_credentials_are_never_kept_for_replay(client, operator_token, session_factory):
    from sqlalchemy import func, select

    from ezla.idempotency import IdempotencyRecord

    headers = {"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "reg"}
    payload = doctor_payload()
    first = client.post("/v1/ca/doctors", json=payload, headers=headers)
    assert first.status_code == 201 and "no-store" in first.headers["cache-control"]
    with transaction(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    # Not replayed: the retry runs again and meets the natural key.
    assert client.post("/v1/ca/doctors", json=payload, headers=headers).json()["code"] == "doctor-exists"


def test_idempotency_key_scope_includes_the_query(client, operator_token):
    headers = {"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "q"}
    a = client.post("/v1/ops/deliveries/retry", params={"delivery_id": 1}, headers=headers)
    b = client.post("/v1/ops/deliveries/retry", params={"delivery_id": 2}, headers=headers)
    assert a.status_code == b.status_code == 200 and "idempotency-replayed" not in b.headers
    big = client.post(
        "/v1/ops/deliveries/retry", params={"delivery_id": 2**70}, headers={"Authorization": f"Bearer {operator_token}"}
    )
    assert big.status_code == 400


def test_resigned_copy_of_the_same_content_gets_the_first_answer(client, operator_token):
    doctor = enroll(client, operator_token)
    first_xml = signed_sick_leave(doctor)
    root = etree.fromstring(first_xml)
    root.remove(root[-1])  # drop the signature, sign the same content again (new ECDSA nonce, time)
    again_xml = sign_enveloped(etree.tostring(root), doctor.key, doctor.cert)
    assert again_xml != first_xml
    first = client.post("/v1/ezla", content=first_xml, headers=XML)
    again = client.post("/v1/ezla", content=again_xml, headers=XML)
    assert first.status_code == 201 and again.status_code == 200 and again.json() == first.json()


def test_ocsp_get_survives_slashes_in_base64(client, operator_token, pki_dir):
    from ezla.ca.keystore import load_cert

    doctor = enroll(client, operator_token)
    issuing = load_cert(pki_dir, "issuing")
    for _ in range(2000):  # about 2 % of requests carry "//" or a trailing "/" in their base64
        req = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(doctor.cert, issuing, hashes.SHA1())
            .add_extension(ocsp.x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
            .build()
        )
        b64 = base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode()
        if "//" in b64 or b64.endswith("/"):
            break
    else:
        pytest.fail("no request with '//' found")
    from urllib.parse import quote

    r = client.get("/v1/ca/ocsp/" + quote(b64, safe=""))
    assert r.status_code == 200, r.text
    assert ocsp.load_der_ocsp_response(r.content).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_odd_inputs_are_4xx(client, operator_token, session_factory):
    op = {"Authorization": f"Bearer {operator_token}"}
    assert client.post("/v1/ca/doctors", json=doctor_payload(given_name="A\x00n"), headers=op).status_code == 400
    long_names = doctor_payload(given_name="A" * 40, family_name="B" * 40)
    assert client.post("/v1/ca/doctors", json=long_names, headers=op).status_code == 400
    with transaction(session_factory) as s:
        _, token = create_account(s, Role.EMPLOYER, now=datetime.now(UTC), nip="5260250274")
    emp = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/employer/ezla", params={"after": "²"}, headers=emp).status_code == 400
    long_url = {"url": "https://example.com/" + "a" * 600, "secret": "s" * 20}
    assert client.put("/v1/employer/webhook", json=long_url, headers=emp).status_code == 400


def test_webhook_targets_must_be_public_https():
    strict, dev = WebhookPolicy(), WebhookPolicy(insecure=True)
    for url in (
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/x",
        "https://[::1]/x",
        "ftp://example.com",
    ):
        with pytest.raises(BadRequest):
            check_webhook_url(url, strict)
    check_webhook_url("https://93.184.216.34/hook", strict)
    check_webhook_url("http://127.0.0.1:9000/hook", dev)

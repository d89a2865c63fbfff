"""A stolen key does not survive its revocation (issue: trust lifecycle).

The thief holds a doctor's key, renews onto a key of its own and logs in with the renewal. When the
operator revokes the original with keyCompromise, the renewal goes with it: e-ZLA signed with it are
refused, CRL and OCSP list both, and every token either certificate obtained stops working.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.factories import XML, enroll, log_in, renew, signed_sick_leave


def _op(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ocsp_status(client, cert: x509.Certificate) -> ocsp.OCSPCertStatus:  # type: ignore[no-untyped-def]
    issuing = x509.load_pem_x509_certificates(client.get("/v1/ca/chain").content)[0]
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuing, hashes.SHA256()).build()
    resp = client.post(
        "/v1/ca/ocsp",
        content=req.public_bytes(serialization.Encoding.DER),
        headers={"content-type": "application/ocsp-request"},
    )
    return ocsp.load_der_ocsp_response(resp.content).certificate_status


def test_the_thief_scenario(client, operator_token):
    doctor = enroll(client, operator_token)
    accepted = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    assert accepted.status_code == 201, accepted.text
    ezla_id = accepted.json()["id"]

    # The thief, holding the doctor's key, renews onto its own and logs in with both certificates.
    stolen = renew(client, doctor)
    thief_token = log_in(client, stolen).json()["token"]
    original_token = log_in(client, doctor).json()["token"]
    for token in (thief_token, original_token):
        assert client.get(f"/v1/ezla/{ezla_id}", headers=_op(token)).status_code == 200
    assert client.post("/v1/ezla", content=signed_sick_leave(stolen), headers=XML).status_code == 201

    revoked = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "keyCompromise"}, headers=_op(operator_token)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["lineage_revoked"] == [stolen.serial]
    assert revoked.json()["tokens_revoked"] == 2

    # Nothing signed with the stolen key or its renewal is accepted any more.
    for signer in (doctor, stolen):
        refused = client.post("/v1/ezla", content=signed_sick_leave(signer), headers=XML)
        assert (refused.status_code, refused.json()["code"]) == (422, "certificate-revoked"), refused.text
    # No token either obtained works, and neither certificate can log in or renew again.
    for token in (thief_token, original_token):
        r = client.get(f"/v1/ezla/{ezla_id}", headers=_op(token))
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    assert log_in(client, stolen).status_code == 403
    # CRL and OCSP say so at once.
    crl = x509.load_der_x509_crl(client.get("/v1/ca/crl").content)
    listed = {e.serial_number: e for e in crl}
    for cert in (doctor.cert, stolen.cert):
        entry = listed[cert.serial_number]
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
        assert _ocsp_status(client, cert) == ocsp.OCSPCertStatus.REVOKED
    invalid_since = listed[stolen.cert.serial_number].extensions.get_extension_for_class(x509.InvalidityDate)
    assert invalid_since.value.invalidity_date_utc <= datetime.now(UTC)

    # The operator sees the lineage.
    shown = client.get(f"/v1/ca/doctors/{doctor.npwz}", headers=_op(operator_token))
    assert shown.status_code == 200, shown.text
    certs = {c["serial"]: c for c in shown.json()["certificates"]}
    assert certs[stolen.serial]["renewed_from"] == doctor.serial
    assert {c["status"] for c in certs.values()} == {"revoked"}
    assert shown.json()["activation_codes"][0]["used_at"] is not None


def test_a_renewal_made_before_the_compromise_date_stands(client, operator_token):
    doctor = enroll(client, operator_token)
    renewed = renew(client, doctor)  # the doctor's own renewal
    later = renew(client, renewed)  # and the next one, from the renewed key
    compromised_at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    import time

    time.sleep(1.2)
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "keyCompromise", "compromised_at": compromised_at.isoformat()},
        headers=_op(operator_token),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["lineage_revoked"] == []
    assert client.post("/v1/ezla", content=signed_sick_leave(later), headers=XML).status_code == 201


def test_a_compromised_renewal_takes_its_own_renewals_with_it(client, operator_token):
    doctor = enroll(client, operator_token)
    first = renew(client, doctor)
    second = renew(client, first)
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "unspecified"}, headers=_op(operator_token)
    )
    assert sorted(resp.json()["lineage_revoked"]) == sorted([first.serial, second.serial])


def test_superseded_does_not_reach_renewals_but_still_ends_tokens(client, operator_token):
    doctor = enroll(client, operator_token)
    renewed = renew(client, doctor)
    token = log_in(client, doctor).json()["token"]
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "superseded"}, headers=_op(operator_token)
    )
    assert resp.json()["lineage_revoked"] == [] and resp.json()["tokens_revoked"] == 1
    assert client.get("/v1/ezla/00000000-0000-0000-0000-000000000000", headers=_op(token)).status_code == 401
    assert client.post("/v1/ezla", content=signed_sick_leave(renewed), headers=XML).status_code == 201


def test_compromise_date_is_checked(client, operator_token):
    doctor = enroll(client, operator_token)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "keyCompromise", "compromised_at": future},
        headers=_op(operator_token),
    )
    assert (resp.status_code, resp.json()["code"]) == (400, "bad-request")


def test_cli_revoke_with_compromise_date_and_doctor_show(client, operator_token, settings):
    import json

    from click.testing import CliRunner

    from ezla.ca.cli import doctor as doctor_cli
    from ezla.ca.cli import revoke as revoke_cli
    from tests.conftest import PASSPHRASE

    doctor = enroll(client, operator_token)
    stolen = renew(client, doctor)
    env = {
        "EZLA_DATABASE_URL": settings.database_url,
        "EZLA_VAR_DIR": str(settings.var_dir),
        "EZLA_PKI_DIR": str(settings.pki_dir),
        "EZLA_CA_KEY_PASSPHRASE": PASSPHRASE,
        "EZLA_REGISTRY_TOKEN_FILE": None,  # `make test` exports these for the real nodes
        "EZLA_REGISTRY_READ_TOKEN_FILE": None,
    }
    runner = CliRunner()
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    done = runner.invoke(
        revoke_cli, [doctor.serial, "--reason", "keyCompromise", "--compromised-at", since, "--json"], env=env
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["lineage_revoked"] == [stolen.serial]
    shown = runner.invoke(doctor_cli, ["show", "--npwz", doctor.npwz, "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    certs = {c["serial"]: c for c in json.loads(shown.output)["certificates"]}
    assert certs[stolen.serial]["renewed_from"] == doctor.serial
    assert certs[doctor.serial]["invalid_since"].startswith(since)
    human = runner.invoke(doctor_cli, ["show", "--npwz", doctor.npwz], env=env).output
    assert f"renewed from {doctor.serial}" in human


def _holder_revoke(client, doctor, reason: str):  # type: ignore[no-untyped-def]
    import base64

    from ezla.proof import holder_message, sign_proof

    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    proof = sign_proof(doctor.key, holder_message("revoke", doctor.serial, challenge, reason))
    return client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": reason, "challenge": challenge, "signature": base64.b64encode(proof).decode()},
    )


def test_a_thief_who_revokes_first_does_not_shield_the_renewal(client, operator_token):
    """The thief renews, then revokes the original itself as 'superseded'. The operator's later
    keyCompromise changes the reason (RFC 5280 allows it) and still takes the renewal."""
    doctor = enroll(client, operator_token)
    stolen = renew(client, doctor)
    token = log_in(client, stolen).json()["token"]
    assert _holder_revoke(client, doctor, "superseded").status_code == 200
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "keyCompromise"}, headers=_op(operator_token)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["lineage_revoked"] == [stolen.serial]
    assert _ocsp_status(client, stolen.cert) == ocsp.OCSPCertStatus.REVOKED
    assert client.get("/v1/ezla/00000000-0000-0000-0000-000000000000", headers=_op(token)).status_code == 401
    crl = x509.load_der_x509_crl(client.get("/v1/ca/crl").content)
    entry = next(e for e in crl if e.serial_number == doctor.cert.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    # Asked again, nothing changes: 409.
    again = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "keyCompromise"}, headers=_op(operator_token)
    )
    assert again.status_code == 409


def test_a_holders_unspecified_revocation_keeps_the_renewal(client, operator_token):
    doctor = enroll(client, operator_token)
    renewed = renew(client, doctor)
    assert _holder_revoke(client, doctor, "unspecified").json()["lineage_revoked"] == []
    assert client.post("/v1/ezla", content=signed_sick_leave(renewed), headers=XML).status_code == 201


def test_a_compromise_date_without_an_offset_is_400(client, operator_token):
    doctor = enroll(client, operator_token)
    resp = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "keyCompromise", "compromised_at": "2026-01-01T00:00:00"},
        headers=_op(operator_token),
    )
    assert (resp.status_code, resp.json()["code"]) == (400, "bad-request")

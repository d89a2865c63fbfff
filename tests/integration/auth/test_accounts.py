"""Every kind of token expires, can be listed and revoked, and revocation takes effect on the next
request on either node (issue: trust lifecycle)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from ezla.auth.service import Role, create_account
from ezla.db import transaction
from ezla.settings import Settings
from tests.factories import enroll, log_in


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_operator_creates_lists_and_revokes_tokens(client, operator_token):
    op = _bearer(operator_token)
    made = client.post("/v1/accounts", json={"role": "employer", "nip": "5260250274", "label": "payroll"}, headers=op)
    assert made.status_code == 201, made.text
    body = made.json()
    employer, account_id = body["token"], body["account"]["id"]
    assert body["account"]["expires_at"] is not None and body["account"]["active"]
    assert "token" not in json.dumps(client.get("/v1/accounts", headers=op).json())  # never listed

    assert client.get("/v1/employer/ezla", headers=_bearer(employer)).status_code == 200
    listed = {a["id"]: a for a in client.get("/v1/accounts", params={"role": "employer"}, headers=op).json()}
    assert listed[account_id]["label"] == "payroll" and listed[account_id]["last_used_at"] is not None

    revoked = client.delete(f"/v1/accounts/{account_id}", headers=op)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    r = client.get("/v1/employer/ezla", headers=_bearer(employer))
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    assert account_id not in {a["id"] for a in client.get("/v1/accounts", headers=op).json()}
    everything = client.get("/v1/accounts", params={"include_inactive": "true"}, headers=op).json()
    assert account_id in {a["id"] for a in everything}
    assert client.delete("/v1/accounts/999999", headers=op).json()["code"] == "account-not-found"


def test_accounts_api_is_for_operators_only(client, session_factory):
    with transaction(session_factory) as s:
        _, patient = create_account(s, Role.PATIENT, now=datetime.now(UTC), pesel="44051401359")
    assert client.get("/v1/accounts", headers=_bearer(patient)).status_code == 403
    assert client.get("/v1/accounts").status_code == 401


def test_every_token_expires(client, session_factory):
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        account, token = create_account(s, Role.EMPLOYER, now=now, nip="5260250274")
        assert account.expires_at == now + timedelta(days=365)
        _, short = create_account(s, Role.EMPLOYER, now=now, nip="5260250274", expires_at=now + timedelta(seconds=1))
    assert client.get("/v1/employer/ezla", headers=_bearer(short)).status_code == 200
    import time

    time.sleep(1.1)
    assert client.get("/v1/employer/ezla", headers=_bearer(short)).status_code == 401
    assert client.get("/v1/employer/ezla", headers=_bearer(token)).status_code == 200


def test_a_doctor_token_ends_with_its_certificate(client, operator_token):
    doctor = enroll(client, operator_token)
    login = log_in(client, doctor)
    assert login.status_code == 200, login.text
    expires = datetime.fromisoformat(login.json()["expires_at"])
    assert expires <= min(datetime.now(UTC) + timedelta(hours=1), doctor.cert.not_valid_after_utc)
    token = login.json()["token"]
    probe = "/v1/ezla/00000000-0000-0000-0000-000000000000"
    assert client.get(probe, headers=_bearer(token)).status_code == 404  # authenticated, nothing there
    client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "affiliationChanged"},
        headers=_bearer(operator_token),
    )
    assert client.get(probe, headers=_bearer(token)).status_code == 401


def test_cli_adds_lists_and_revokes(settings: Settings, client):
    from ezla.auth.cli import account

    # Only this test's database: `make test` exports token-file variables for the real nodes.
    env = {
        "EZLA_DATABASE_URL": settings.database_url,
        "EZLA_VAR_DIR": str(settings.var_dir),
        "EZLA_REGISTRY_TOKEN_FILE": None,
        "EZLA_REGISTRY_READ_TOKEN_FILE": None,
    }
    runner = CliRunner()
    added = runner.invoke(
        account, ["add", "--role", "patient", "--pesel", "44051401359", "--label", "Jan", "--json"], env=env
    )
    assert added.exit_code == 0, added.output
    made = json.loads(added.output)
    assert client.get("/v1/patient/ezla", headers=_bearer(made["token"])).status_code == 200
    listed = json.loads(runner.invoke(account, ["list", "--json"], env=env).output)["accounts"]
    mine = next(a for a in listed if a["id"] == made["id"])
    assert mine["pesel_hint"] == "*******1359" and "44051401359" not in json.dumps(listed)
    assert runner.invoke(account, ["revoke", str(made["id"])], env=env).exit_code == 0
    assert client.get("/v1/patient/ezla", headers=_bearer(made["token"])).status_code == 401
    assert runner.invoke(account, ["revoke", "424242"], env=env).exit_code == 3  # refused: no such account


def test_revoked_on_one_node_refused_on_the_other_at_once(twins):
    a, b = twins
    with transaction(a.app.state.sessionmaker) as s:
        _, operator = create_account(s, Role.OPERATOR, now=datetime.now(UTC))
    doctor = enroll(a, operator)
    doctor_token = log_in(a, doctor).json()["token"]
    made = a.post("/v1/accounts", json={"role": "employer", "nip": "5260250274"}, headers=_bearer(operator)).json()
    probe = "/v1/ezla/00000000-0000-0000-0000-000000000000"
    assert b.get("/v1/employer/ezla", headers=_bearer(made["token"])).status_code == 200
    assert b.get(probe, headers=_bearer(doctor_token)).status_code == 404

    a.delete(f"/v1/accounts/{made['account']['id']}", headers=_bearer(operator))
    a.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation", json={"reason": "keyCompromise"}, headers=_bearer(operator)
    )
    assert b.get("/v1/employer/ezla", headers=_bearer(made["token"])).status_code == 401
    assert b.get(probe, headers=_bearer(doctor_token)).status_code == 401

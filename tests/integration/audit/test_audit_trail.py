"""An audit trail worth the name (issue: trust lifecycle): every security-relevant event of every
domain is chained, checkpoints are signed with the CA's audit key, and each kind of tampering is
named by the verifier — including a rewrite of the whole chain and its head without the key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from sqlalchemy import delete, select, update

from ezla.audit import export, service
from ezla.audit.models import AuditEvent, AuditHead, Checkpoint
from ezla.ca.keystore import load_cert, load_key
from ezla.db import reading, transaction
from tests.conftest import PASSPHRASE
from tests.factories import XML, enroll, signed_cancellation, signed_sick_leave


@pytest.fixture
def audited(client, operator_token, pki_dir):  # type: ignore[no-untyped-def]
    """A trail with CA, issuance and account events, linked and signed twice."""
    op = {"Authorization": f"Bearer {operator_token}"}
    key, cert = load_key(pki_dir, "audit", PASSPHRASE), load_cert(pki_dir, "audit")
    sm = client.app.state.sessionmaker
    doctor = enroll(client, operator_token)
    with transaction(sm) as s:
        service.checkpoint(s, key, cert, now=datetime.now(UTC))  # type: ignore[arg-type]
    xml = signed_sick_leave(doctor)
    accepted = client.post("/v1/ezla", content=xml, headers=XML).json()
    assert client.get(f"/v1/ezla/{accepted['id']}", headers=op).status_code == 200  # an operator look-up
    cancel = signed_cancellation(
        doctor,
        document_id=etree.fromstring(xml).get("DocumentId"),
        series=accepted["series"],
        number=accepted["number"],
    )
    assert client.post(f"/v1/ezla/{accepted['id']}/cancellation", content=cancel, headers=XML).status_code == 200
    made = client.post("/v1/accounts", json={"role": "employer", "nip": "5260250274"}, headers=op).json()
    client.delete(f"/v1/accounts/{made['account']['id']}", headers=op)
    with transaction(sm) as s:
        service.checkpoint(s, key, cert, now=datetime.now(UTC))  # type: ignore[arg-type]
    return sm, [cert]


def _verify(sm, certs) -> service.AuditReport:  # type: ignore[no-untyped-def]
    with reading(sm) as s:
        return service.verify(s, certs, now=datetime.now(UTC))


def test_every_domain_is_in_the_chain_and_it_verifies(audited):
    sm, certs = audited
    with reading(sm) as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action).order_by(AuditEvent.seq))]
    for action in (
        "doctor_registered",
        "certificate_issued",
        "ezla_accepted",
        "ezla_viewed",
        "ezla_cancelled",
        "account_created",
        "account_revoked",
    ):
        assert action in actions, actions
    report = _verify(sm, certs)
    assert report.ok and report.checkpoints == 2 and report.unsigned_tail == 0, report.problems
    text = json.dumps(actions)
    assert "44051401359" not in text  # no PESEL in the trail


def _rows(sm) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with reading(sm) as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_an_edited_entry_is_named(audited):
    sm, certs = audited
    victim = _rows(sm)[3].seq
    with transaction(sm) as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == victim).values(details='{"npwz":"0000000"}'))
    report = _verify(sm, certs)
    assert not report.ok and report.first_broken == victim
    assert any(f"row {victim}: content does not match" in p for p in report.problems)


def test_a_deleted_entry_is_named(audited):
    sm, certs = audited
    victim = _rows(sm)[2].seq
    with transaction(sm) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq == victim))
    report = _verify(sm, certs)
    assert report.first_broken == victim and any(f"row {victim} missing" in p for p in report.problems)


def _rewrite_from(sm, first: int) -> None:  # type: ignore[no-untyped-def]
    """What a database administrator without the audit key can do: change a row, then recompute
    every later hash and the head so that the links are all consistent again."""
    with transaction(sm) as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.seq >= first).order_by(AuditEvent.seq)))
        prev = s.scalar(select(AuditEvent.hash).where(AuditEvent.seq == first - 1)) or service.GENESIS
        rows[0].details = '{"forged":true}'
        for row in rows:
            row.prev_hash = prev
            row.hash = prev = service._link(prev, row.seq, row.at, row.action, row.subject, row.details)
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))


def test_a_rewritten_chain_and_head_without_the_key_fail(audited):
    sm, certs = audited
    rows = _rows(sm)
    with reading(sm) as s:
        first_cp = min(s.scalars(select(Checkpoint.seq)))
    target = rows[-3].seq  # after the first checkpoint, before the second
    assert target > first_cp
    _rewrite_from(sm, target)
    report = _verify(sm, certs)
    assert not report.ok
    assert report.first_broken == first_cp + 1  # the first row no valid checkpoint vouches for
    assert any("differs from its signed checkpoint" in p for p in report.problems)


def test_a_forged_checkpoint_and_a_cut_tail_are_named(audited):
    sm, certs = audited
    rows = _rows(sm)
    with transaction(sm) as s:
        forged_key = ec.generate_private_key(ec.SECP256R1())
        cp = s.scalars(select(Checkpoint).order_by(Checkpoint.seq)).first()
        assert cp is not None
        cp.signature = forged_key.sign(service.checkpoint_message(cp.seq, cp.hash, cp.at), ec.ECDSA(hashes.SHA256()))
    report = _verify(sm, certs)
    assert any("signature invalid" in p for p in report.problems)
    with transaction(sm) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq >= rows[-2].seq))
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=rows[-3].seq, hash=rows[-3].hash))
    report = _verify(sm, certs)
    assert any("rows deleted at the end" in p for p in report.problems)


def test_an_export_verifies_offline_and_its_tampering_is_named(audited):
    sm, certs = audited
    with reading(sm) as s:
        lines = list(export.export_lines(s, first=3))
    assert export.verify_export("\n".join(lines), certs).ok
    header = json.loads(lines[0])
    assert header["first"] == 3 and len(header["prev_hash"]) == 64
    edited = [json.loads(line) for line in lines]
    edited[2]["subject"] = "someone-else"
    report = export.verify_export("\n".join(json.dumps(e) for e in edited), certs)
    assert not report.ok and report.first_broken == edited[2]["seq"]
    assert not export.verify_export("\n".join(lines), []).ok  # checkpoints need the audit certificate


def test_sequencing_takes_turns_and_keeps_every_event(audited):
    sm, certs = audited
    with transaction(sm) as s:
        for i in range(3):
            service.record(s, "test_event", f"s{i}", {"i": i}, now=datetime.now(UTC))
    with transaction(sm) as s:
        assert service.sequence(s, limit=2) == 2
    with transaction(sm) as s:
        assert service.sequence(s) == 1
        assert service.sequence(s) == 0
    assert _verify(sm, certs).ok


def test_deleting_the_newest_checkpoints_to_hide_a_rewritten_tail_is_caught(audited):
    """Delete the checkpoints after row k, rewrite the rows after it and fix the head: the links all
    agree, but rows older than the signing interval are unsigned, which is itself a finding."""
    sm, certs = audited
    with reading(sm) as s:
        newest = max(s.scalars(select(Checkpoint.seq)))
    with transaction(sm) as s:
        s.execute(delete(Checkpoint).where(Checkpoint.seq == newest))
    _rewrite_from(sm, newest - 1)
    assert _verify(sm, certs).unsigned_tail > 0  # fresh rows: not yet a problem
    with reading(sm) as s:
        late = datetime.now(UTC) + timedelta(hours=2)
        report = service.verify(s, certs, now=late)
    assert not report.ok and report.first_broken is not None and report.first_broken <= newest - 1
    assert any("no checkpoint signs them" in p for p in report.problems)


def test_an_export_without_its_checkpoints_is_not_trusted(audited):
    sm, certs = audited
    with reading(sm) as s:
        lines = list(export.export_lines(s, first=1))
    stripped = [line for line in lines if json.loads(line)["type"] != "checkpoint"]
    report = export.verify_export("\n".join(stripped), certs)
    assert not report.ok and any("not signed by a checkpoint" in p for p in report.problems)

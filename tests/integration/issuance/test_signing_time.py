"""What SigningTime means at submission (domain.md: signed after revocation is invalid, signed before
stays valid), the signer's names, and unsigned properties, through the HTTP API. Refusals follow
the attack tests' shape: status, the exact code, the validation report, and nothing stored."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod

from ezla.document.schema import NS as EZ
from ezla.xades.signer import C14N, Signer
from tests.factories import XML, EnrolledDoctor, signed_sick_leave
from tests.integration.issuance.kit import issue_with_our_ca, record, refused, unsigned

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _revoke(client: Any, operator_token: str, serial: str, reason: str) -> None:
    r = client.post(
        f"/v1/ca/certificates/{serial}/revocation",
        json={"reason": reason},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 200, r.text


def _receipt_notices(client: Any, doctor_token: dict[str, str], ezla_id: str) -> list[str]:
    r = client.get(f"/v1/ezla/{ezla_id}/receipt", headers=doctor_token)
    assert r.status_code == 200, r.text
    return [el.text for el in etree.fromstring(r.content).iter(f"{{{EZ}}}SignerNotice")]


def _issued_and_signed(pki_dir: Any, session_factory: Any, doctor: EnrolledDoctor, *, signed_ago: timedelta) -> Any:
    """A certificate our CA issued ten days ago (recorded), and its signer, signing ``signed_ago``."""
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=_now() - timedelta(days=10))
    record(session_factory, issued.cert)
    return issued, issued.sign(unsigned(doctor), signing_time=_now() - signed_ago)


def _operator(operator_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token}"}


# --- SigningTime bounds -----------------------------------------------------------------------------
def test_signing_time_in_2099_is_refused(client, session_factory, doctor):
    body = signed_sick_leave(doctor, signing_time=datetime(2099, 1, 1, tzinfo=UTC))
    problem = refused(client, session_factory, body, 422, "signing-time-in-future")
    assert problem["report"]["indication"] == "INDETERMINATE"


def test_signing_time_before_the_certificate_existed_is_refused(client, session_factory, doctor):
    body = signed_sick_leave(doctor, signing_time=datetime(1999, 1, 1, tzinfo=UTC))
    problem = refused(client, session_factory, body, 422, "signing-time-before-certificate")
    assert problem["report"]["sub_indication"] == "NOT_YET_VALID"


def test_missing_signing_time_is_refused(client, session_factory, doctor):
    class WithoutSigningTime(Signer):
        def add_signing_time(self, *args: object, **kwargs: object) -> None:
            pass

    signer = WithoutSigningTime(
        _now(),
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=C14N,
    )
    root = signer.sign(
        etree.fromstring(unsigned(doctor)), key=doctor.key, cert=[doctor.cert], always_add_key_value=False
    )
    assert root.find(f".//{{{XADES}}}SigningTime") is None
    refused(client, session_factory, etree.tostring(root), 422, "signing-time-missing")


def test_signing_time_older_than_the_submission_delay_is_refused(client, session_factory, pki_dir, doctor):
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=_now() - timedelta(days=30))
    record(session_factory, issued.cert)
    body = issued.sign(unsigned(doctor), signing_time=_now() - timedelta(days=5))
    refused(client, session_factory, body, 422, "signing-time-too-old")


def test_signing_time_within_the_delay_is_accepted(client, pki_dir, session_factory, doctor):
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=_now() - timedelta(days=30))
    record(session_factory, issued.cert)
    body = issued.sign(unsigned(doctor), signing_time=_now() - timedelta(days=2))
    assert client.post("/v1/ezla", content=body, headers=XML).status_code == 201


# --- revocation and expiry judged against SigningTime ----------------------------------------------
def test_key_compromise_refuses_what_arrives_later_whatever_it_claims(
    client, session_factory, operator_token, pki_dir, doctor
):
    issued, backdated = _issued_and_signed(pki_dir, session_factory, doctor, signed_ago=timedelta(hours=1))
    _revoke(client, operator_token, format(issued.cert.serial_number, "x"), "keyCompromise")
    problem = refused(client, session_factory, backdated, 422, "certificate-revoked")
    assert problem["report"]["sub_indication"] == "REVOKED_NO_POE"


def test_revocation_takes_effect_at_once(client, session_factory, operator_token, doctor):
    signed = signed_sick_leave(doctor)
    _revoke(client, operator_token, doctor.serial, "unspecified")
    refused(client, session_factory, signed, 422, "certificate-revoked")


def test_superseded_keeps_what_was_signed_before_and_the_receipt_says_so(
    client, session_factory, operator_token, pki_dir, doctor
):
    issued, before = _issued_and_signed(pki_dir, session_factory, doctor, signed_ago=timedelta(hours=1))
    _revoke(client, operator_token, format(issued.cert.serial_number, "x"), "superseded")
    r = client.post("/v1/ezla", content=before, headers=XML)
    assert r.status_code == 201, r.text
    assert _receipt_notices(client, _operator(operator_token), r.json()["id"]) == ["signed-before-revocation"]
    after = issued.sign(unsigned(doctor), signing_time=_now() + timedelta(seconds=30))  # signed after it
    refused(client, session_factory, after, 422, "certificate-revoked")


def test_expired_since_signing_is_accepted_within_the_delay(client, session_factory, operator_token, pki_dir, doctor):
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=_now() - timedelta(days=731))
    assert issued.cert.not_valid_after_utc < _now()
    record(session_factory, issued.cert)
    signed_before = issued.sign(unsigned(doctor), signing_time=issued.cert.not_valid_after_utc - timedelta(hours=1))
    r = client.post("/v1/ezla", content=signed_before, headers=XML)
    assert r.status_code == 201, r.text
    assert _receipt_notices(client, _operator(operator_token), r.json()["id"]) == ["signed-before-expiry"]
    signed_after = issued.sign(unsigned(doctor), signing_time=_now())
    refused(client, session_factory, signed_after, 422, "certificate-expired")


# --- the signer is the named doctor, names included ------------------------------------------------
def test_another_doctors_name_with_the_signers_npwz_is_refused(client, session_factory, doctor):
    body = signed_sick_leave(doctor, given_name="Zofia", family_name="Kowalczyk")
    problem = refused(client, session_factory, body, 403, "doctor-name-mismatch")
    checks = {c["check"]: c["outcome"] for c in problem["report"]["checks"]}
    assert checks["signature-value"] == checks["chain"] == "passed"
    assert checks["doctor-identity"] == "failed"


def test_names_match_case_insensitively_and_after_nfc(client, operator_token):
    from tests.factories import enroll

    doctor: EnrolledDoctor = enroll(client, operator_token, given_name="Łucja", family_name="Żółć")
    decomposed = "Z\u0307o\u0301ł\u0107"  # Żółć written with combining accents
    body = signed_sick_leave(doctor, given_name="ŁUCJA", family_name=decomposed)
    assert client.post("/v1/ezla", content=body, headers=XML).status_code == 201


# --- nothing unsigned is stored --------------------------------------------------------------------
def _with_unsigned_property(signed: bytes, child: etree._Element) -> bytes:
    root = etree.fromstring(signed)
    qp = root.find(f"{{{DS}}}Signature/{{{DS}}}Object/{{{XADES}}}QualifyingProperties")
    usp = etree.SubElement(
        etree.SubElement(qp, f"{{{XADES}}}UnsignedProperties"), f"{{{XADES}}}UnsignedSignatureProperties"
    )
    usp.append(child)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_prose_in_unsigned_properties_is_refused(client, session_factory, signed):
    prose = etree.Element(f"{{{XADES}}}UnsignedDataObjectProperty")
    prose.text = "Pacjent widziany na weselu."
    refused(client, session_factory, _with_unsigned_property(signed, prose), 422, "unsigned-properties")


def test_unverifiable_time_stamp_is_refused(client, session_factory, signed):
    ts = etree.Element(f"{{{XADES}}}SignatureTimeStamp")
    etree.SubElement(ts, f"{{{XADES}}}EncapsulatedTimeStamp").text = "MIIBAAAA"
    refused(client, session_factory, _with_unsigned_property(signed, copy.deepcopy(ts)), 422, "timestamp-invalid")


def _stamped_through_our_tsa(client: Any, signed: bytes) -> bytes:
    """What a clinic does for XAdES-T: time-stamp its SignatureValue at POST /v1/tsa (RFC 3161)."""
    import hashlib
    import secrets

    from asn1crypto import tsp

    from ezla.xades.unsigned import add

    def stamp(digest: bytes) -> bytes:
        query = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
                "nonce": secrets.randbits(64),
                "cert_req": True,
            }
        ).dump()
        r = client.post("/v1/tsa", content=query, headers={"Content-Type": "application/timestamp-query"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/timestamp-reply"
        reply = tsp.TimeStampResp.load(r.content)
        assert reply["status"]["status"].native == "granted"
        return bytes(reply["time_stamp_token"].dump())

    stamped = add(signed, stamp=stamp)
    assert hashlib.sha256(stamped).digest() != hashlib.sha256(signed).digest()
    return stamped


def test_a_time_stamp_from_our_tsa_is_verified_and_accepted(client, session_factory, signed):
    stamped = _stamped_through_our_tsa(client, signed)
    r = client.post("/v1/ezla", content=stamped, headers=XML)
    assert r.status_code == 201, r.text
    from sqlalchemy import text

    from ezla.db import reading

    with reading(session_factory) as s:
        stored = s.scalar(text("SELECT signed_xml FROM ezla_sick_leaves WHERE id = :id"), {"id": r.json()["id"]})
    assert bytes(stored) == stamped  # stored as received: its time-stamp was verified first


def test_a_time_stamp_over_another_signature_is_refused(client, session_factory, doctor, signed):
    stamped = etree.fromstring(_stamped_through_our_tsa(client, signed))
    other = etree.fromstring(signed_sick_leave(doctor))
    qp = other.find(f"{{{DS}}}Signature/{{{DS}}}Object/{{{XADES}}}QualifyingProperties")
    qp.append(copy.deepcopy(next(stamped.iter(f"{{{XADES}}}UnsignedProperties"))))
    body = etree.tostring(other, xml_declaration=True, encoding="UTF-8")
    problem = refused(client, session_factory, body, 422, "timestamp-invalid")
    assert "imprint" in problem["detail"]

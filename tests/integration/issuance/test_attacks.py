"""The attack corpus against ``POST /v1/ezla``, through the HTTP API on SQLite and PostgreSQL.

Every attack must be refused with a 4xx, a problem+json document carrying one *specific* ``code``
(clients and auditors switch on it), and leave nothing behind: no e-ZLA row, no outbox row.
Attack documents are signed with real keys (the doctor's, a throwaway CA's, or certificates the
real issuing CA signed with a shifted clock) so that each one isolates the check it targets.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner

from ezla.ca import profile, serials
from ezla.document.codec import build_cancellation_xml, build_sick_leave_xml
from ezla.document.model import Cancellation, Clinic, FamilyMemberCare, Hospital, Incapacity, Patient, Payer
from ezla.issuance.samples import FEMALE_PATIENT, sample_sick_leave
from ezla.xades import MAX_XML_BYTES, sign_enveloped
from tests.conftest import PUBLIC_URL
from tests.factories import XML, EnrolledDoctor, enroll, register, signed_sick_leave
from tests.integration.issuance.kit import (
    PROBLEM,
    Issued,
    issue_with_our_ca,
    record,
    refused,
    stored,
    today,
    unsigned,
)
from tests.pki import Hierarchy

EZ = "urn:ezla:sick-leave:1"
DS = "http://www.w3.org/2000/09/xmldsig#"


# --- helpers ---------------------------------------------------------------------------------
def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _ser(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _sig(root: etree._Element) -> etree._Element:
    sig = root.find(f"{{{DS}}}Signature")
    assert sig is not None
    return sig


def _ez(root: etree._Element, path: str) -> etree._Element:
    el = root.find("/".join(f"{{{EZ}}}{p}" for p in path.split("/")))
    assert el is not None, path
    return el


def _sign(doctor: EnrolledDoctor, xml: bytes | etree._Element) -> bytes:
    return sign_enveloped(xml, doctor.key, doctor.cert)


def _stock_signxml(doctor: EnrolledDoctor, root: etree._Element, reference_uri: str) -> bytes:
    """Stock signxml XAdES (c14n 1.0, so the maths verifies), referencing ``#id`` instead of ''."""
    signer = XAdESSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    out = signer.sign(root, key=doctor.key, cert=[doctor.cert], reference_uri=reference_uri, always_add_key_value=False)
    return _ser(out)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _login(client: Any, doctor: EnrolledDoctor) -> dict[str, str]:
    from ezla.proof import login_message, sign_proof

    challenge = client.get("/v1/auth/challenge").json()["challenge"]
    r = client.post(
        "/v1/auth/doctor-token",
        json={
            "certificate_pem": _pem(doctor.cert),
            "challenge": challenge,
            "signature": base64.b64encode(sign_proof(doctor.key, login_message(challenge))).decode(),
        },
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


# --- the baseline: what a refusal is measured against ----------------------------------------
def test_genuine_document_is_accepted_and_counted(client, session_factory, signed):
    # Proves the row counting in `refused` sees a real submission (1 e-ZLA, 3 outbox rows).
    before = stored(session_factory)
    assert client.post("/v1/ezla", content=signed, headers=XML).status_code == 201
    assert stored(session_factory) == (before[0] + 1, before[1] + 3)


# --- transport and parsing ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded", "application/xml-dtd", None]
)
def test_wrong_content_type(client, session_factory, signed, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    refused(client, session_factory, signed, 415, "unsupported-media-type", headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b'{"DocumentId": "5d0f4a3e-1c2b-4f7a-9e8d-0123456789ab"}',
        b"<SickLeave xmlns='urn:ezla:sick-leave:1'><IssueDate>",
        b"\xff\xfe\x00<\x00r\x00",
    ],
    ids=["empty", "text", "json", "truncated", "garbage-bom"],
)
def test_not_xml(client, session_factory, body):
    refused(client, session_factory, body, 400, "xml-malformed")


def test_xxe_external_entity(client, session_factory):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE SickLeave [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<SickLeave xmlns="urn:ezla:sick-leave:1"><IssueDate>&xxe;</IssueDate></SickLeave>'
    )
    problem = refused(client, session_factory, body, 400, "xml-forbidden-construct")
    assert "root:" not in str(problem)  # nothing from the file leaks back


def test_xxe_in_signed_document(client, session_factory, signed):
    head, _, rest = signed.partition(b"?>")
    body = head + b'?><!DOCTYPE SickLeave [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + rest
    refused(client, session_factory, body.replace(b"J06.9", b"&xxe;"), 400, "xml-forbidden-construct")


def test_billion_laughs(client, session_factory):
    ents = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = f'<?xml version="1.0"?><!DOCTYPE SickLeave [<!ENTITY l0 "lol">{ents}]><SickLeave>&l9;</SickLeave>'
    refused(client, session_factory, body.encode(), 400, "xml-forbidden-construct")


def test_plain_dtd_on_signed_document(client, session_factory, signed):
    head, _, rest = signed.partition(b"?>")
    refused(client, session_factory, head + b"?><!DOCTYPE SickLeave>" + rest, 400, "xml-forbidden-construct")


def test_dtd_in_utf16_document(client, session_factory):
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>'.encode("utf-16")
    refused(client, session_factory, body, 400, "xml-forbidden-construct")


def test_processing_instruction(client, session_factory, signed):
    head, _, rest = signed.partition(b"?>")
    body = head + b'?><?xml-stylesheet href="http://evil.example/x.xsl"?>' + rest
    refused(client, session_factory, body, 400, "xml-forbidden-construct")


@pytest.mark.parametrize("size", [MAX_XML_BYTES + 1_000, 3 * MAX_XML_BYTES], ids=["over-xml-limit", "over-body-limit"])
def test_oversized_body(client, session_factory, signed, size):
    # Padding inside a comment keeps the document otherwise genuine: size alone must refuse it.
    pad = b"<!--" + b"x" * (size - len(signed)) + b"-->"
    body = signed.replace(b"<IssueDate>", pad + b"<IssueDate>", 1)
    assert len(body) > size - 100
    refused(client, session_factory, body, 413, "payload-too-large")


@pytest.mark.parametrize("depth", [40, 300, 100_000])
def test_deeply_nested_body(client, session_factory, depth):
    body = b'<SickLeave xmlns="urn:ezla:sick-leave:1">' + b"<a>" * depth + b"</a>" * depth + b"</SickLeave>"
    refused(client, session_factory, body, 400, "xml-too-deep")


def test_deeply_nested_signed_body(client, session_factory, doctor):
    root = _tree(unsigned(doctor))
    el = _ez(root, "Diagnosis")
    for _ in range(40):
        el = etree.SubElement(el, f"{{{EZ}}}Nest")
    refused(client, session_factory, _sign(doctor, root), 400, "xml-too-deep")


# --- signature wrapping --------------------------------------------------------------------------
def test_unsigned_document(client, session_factory, doctor):
    refused(client, session_factory, unsigned(doctor), 422, "signature-missing")


def test_content_moved_into_ds_object(client, session_factory, signed):
    # Classic XSW: the genuine content is stashed in a ds:Object, the root carries forged content.
    root = _tree(signed)
    original = copy.deepcopy(root)
    original.remove(_sig(original))
    etree.SubElement(_sig(root), f"{{{DS}}}Object").append(original)
    _ez(root, "Diagnosis/Icd10").text = "Z99"
    _ez(root, "Incapacity/To").text = (today() + timedelta(days=60)).isoformat()
    refused(client, session_factory, _ser(root), 422, "signature-scope")


# Both twins below carry a valid signature; they would be stored in `signed_xml` and reach the patient
# and the registry, where a streaming reader keeping the last Icd10/Pesel reads the forged values.
# ezla.xades allows in ds:Signature only SignedInfo, SignatureValue, KeyInfo and one ds:Object
# holding just xades:QualifyingProperties.


def test_content_duplicated_into_ds_object(client, session_factory, signed):
    # The genuine document stays in place; a forged twin rides along, unsigned, in an extra ds:Object.
    root = _tree(signed)
    forged = copy.deepcopy(root)
    forged.remove(_sig(forged))
    _ez(forged, "Diagnosis/Icd10").text = "Z99"
    _ez(forged, "Patient/Pesel").text = "02070803628"
    etree.SubElement(_sig(root), f"{{{DS}}}Object").append(forged)
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_content_duplicated_next_to_qualifying_properties(client, session_factory, signed):
    # The same twin next to QualifyingProperties: only SignedProperties is referenced, not its ds:Object.
    root = _tree(signed)
    forged = copy.deepcopy(root)
    forged.remove(_sig(forged))
    _ez(forged, "Diagnosis/Icd10").text = "Z99"
    _sig(root).find(f"{{{DS}}}Object").append(forged)
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_second_unsigned_sick_leave_wraps_the_signed_one(client, session_factory, doctor, signed):
    # A forged, unsigned SickLeave as the root; the genuinely signed one nested inside it.
    forged = _tree(unsigned(doctor, icd10="Z99"))
    forged.append(_tree(signed))
    refused(client, session_factory, _ser(forged), 422, "signature-scope")


def test_second_unsigned_sick_leave_after_signature(client, session_factory, doctor, signed):
    root = _tree(signed)
    root.append(_tree(unsigned(doctor, icd10="Z99")))
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_second_unsigned_sick_leave_before_signature(client, session_factory, doctor, signed):
    root = _tree(signed)
    _sig(root).addprevious(_tree(unsigned(doctor, icd10="Z99")))
    refused(client, session_factory, _ser(root), 422, "signature-invalid")


def test_reference_to_root_id(client, session_factory, doctor):
    # Stock signxml references "#Id" when the root has one: fine maths, but not URI="".
    root = _tree(unsigned(doctor))
    root.set("Id", "doc")
    refused(client, session_factory, _stock_signxml(doctor, root, "#doc"), 422, "signature-scope")


def test_reference_to_id_elsewhere(client, session_factory, doctor):
    # Only the diagnosis is signed; everything else (the patient, the period) is the attacker's.
    root = _tree(unsigned(doctor))
    _ez(root, "Diagnosis").set("Id", "d1")
    signed = _tree(_stock_signxml(doctor, root, "#d1"))
    _ez(signed, "Incapacity/To").text = (today() + timedelta(days=90)).isoformat()
    refused(client, session_factory, _ser(signed), 422, "signature-scope")


def test_extra_reference_to_document_element(client, session_factory, signed):
    root = _tree(signed)
    _ez(root, "Patient").set("Id", "p1")
    ref = etree.SubElement(_sig(root).find(f"{{{DS}}}SignedInfo"), f"{{{DS}}}Reference", URI="#p1")
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=DigestAlgorithm.SHA256.value)
    etree.SubElement(ref, f"{{{DS}}}DigestValue").text = "AAAA"
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_xpath_transform_narrows_the_scope(client, session_factory, signed):
    root = _tree(signed)
    transforms = _sig(root).find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms")
    xf = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(xf, f"{{{DS}}}XPath").text = "ancestor-or-self::*[local-name()='Doctor']"
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_signature_not_last_child(client, session_factory, signed):
    root = _tree(signed)
    root.insert(0, _sig(root))
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_signature_nested_in_content(client, session_factory, signed):
    root = _tree(signed)
    _ez(root, "Diagnosis").append(_sig(root))
    refused(client, session_factory, _ser(root), 422, "signature-scope")


def test_two_signatures(client, session_factory, operator_token, signed):
    other = enroll(client, operator_token)
    refused(client, session_factory, _sign(other, signed), 422, "signature-scope")


def test_tampered_after_signing(client, session_factory, signed):
    assert b"<Icd10>J06.9</Icd10>" in signed
    refused(client, session_factory, signed.replace(b"<Icd10>J06.9", b"<Icd10>A09"), 422, "signature-invalid")


def test_tampered_signing_time(client, session_factory, signed):
    root = _tree(signed)
    root.find(".//{http://uri.etsi.org/01903/v1.3.2#}SigningTime").text = "2020-01-01T00:00:00Z"
    refused(client, session_factory, _ser(root), 422, "signature-invalid")


def test_sha1_digest(client, session_factory, signed):
    sha1 = b"http://www.w3.org/2000/09/xmldsig#sha1"
    refused(
        client,
        session_factory,
        signed.replace(DigestAlgorithm.SHA256.value.encode(), sha1, 1),
        422,
        "signature-algorithm-weak",
    )


# --- certificates --------------------------------------------------------------------------------
def _ident(doctor: EnrolledDoctor) -> profile.DoctorIdentity:
    return profile.DoctorIdentity(doctor.npwz, "Anna", "Nowak")


def _foreign_ca(doctor: EnrolledDoctor) -> Issued:
    """A throwaway CA with *our* names and profile, but its own keys, issuing for our doctor."""
    return Hierarchy.shaped_like_ours().doctor(doctor.npwz)


def _self_signed(doctor: EnrolledDoctor) -> Issued:
    """The doctor profile, issued by the doctor's own key to the doctor's own name."""
    now, prof = datetime.now(UTC), profile.Profile()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = profile.doctor_subject(_ident(doctor), prof)
    me = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serials.new_serial(1))
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    builder = profile.doctor_builder(
        _ident(doctor), key.public_key(), me, serials.new_serial(1), now, prof, profile.Urls(PUBLIC_URL)
    )
    cert = builder.sign(key, hashes.SHA256())
    assert cert.issuer == cert.subject
    return Issued(key, cert)


def test_directly_issued_and_recorded_certificate_is_accepted(client, session_factory, pki_dir, doctor):
    # The control for the validity tests below: the same recipe with today's clock is accepted.
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=datetime.now(UTC))
    record(session_factory, issued.cert)
    r = client.post("/v1/ezla", content=issued.sign(unsigned(doctor)), headers=XML)
    assert r.status_code == 201, r.text


def test_certificate_from_foreign_ca(client, session_factory, doctor):
    issued = _foreign_ca(doctor)
    refused(client, session_factory, issued.sign(unsigned(doctor)), 422, "certificate-untrusted")


def test_self_signed_doctor_certificate(client, session_factory, doctor):
    issued = _self_signed(doctor)
    refused(client, session_factory, issued.sign(unsigned(doctor)), 422, "certificate-untrusted")


def test_certificate_signed_by_our_ca_but_never_recorded(client, session_factory, pki_dir, doctor):
    # A valid chain is not enough: the exact certificate must be one the CA recorded (a leaked
    # issuing key, or a certificate minted outside the issuance procedure).
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=datetime.now(UTC))
    refused(client, session_factory, issued.sign(unsigned(doctor)), 422, "certificate-untrusted")


def test_expired_certificate(client, session_factory, pki_dir, doctor):
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=datetime.now(UTC) - timedelta(days=800))
    assert issued.cert.not_valid_after_utc < datetime.now(UTC)
    record(session_factory, issued.cert)
    refused(client, session_factory, issued.sign(unsigned(doctor)), 422, "certificate-expired")


def test_not_yet_valid_certificate(client, session_factory, pki_dir, doctor):
    issued = issue_with_our_ca(pki_dir, doctor.npwz, when=datetime.now(UTC) + timedelta(days=10))
    record(session_factory, issued.cert)
    refused(client, session_factory, issued.sign(unsigned(doctor)), 422, "certificate-not-yet-valid")


def test_revoked_certificate(client, session_factory, operator_token, doctor):
    r = client.post(
        f"/v1/ca/certificates/{doctor.serial}/revocation",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 200, r.text
    refused(client, session_factory, signed_sick_leave(doctor), 422, "certificate-revoked")


def test_signer_is_not_the_named_doctor(client, session_factory, operator_token, doctor):
    other = register(client, operator_token)  # a real, registered doctor
    xml = _sign(doctor, build_sick_leave_xml(sample_sick_leave(today=today(), npwz=other["npwz"])))
    assert f"<Npwz>{other['npwz']}</Npwz>".encode() in xml
    refused(client, session_factory, xml, 403, "signer-not-doctor")


def test_foreign_signature_under_another_doctors_name(client, session_factory, operator_token, doctor):
    # Another enrolled doctor signs an e-ZLA naming `doctor`.
    other = enroll(client, operator_token)
    xml = _sign(other, unsigned(doctor))
    refused(client, session_factory, xml, 403, "signer-not-doctor")


# --- document shape ----------------------------------------------------------------------------
def test_wrong_namespace(client, session_factory, doctor):
    xml = unsigned(doctor).replace(EZ.encode(), b"urn:ezla:sick-leave:2")
    refused(client, session_factory, _sign(doctor, xml), 422, "wrong-namespace")


def test_no_namespace(client, session_factory, doctor):
    xml = unsigned(doctor).replace(b' xmlns="urn:ezla:sick-leave:1"', b"")
    refused(client, session_factory, _sign(doctor, xml), 422, "wrong-namespace")


@pytest.mark.parametrize(
    "overrides",
    [{"indication": 7}, {"icd10": "flu"}, {"document_id": "not-a-uuid"}],
    ids=["indication", "icd10", "document-id"],
)
def test_schema_invalid(client, session_factory, doctor, overrides):
    refused(client, session_factory, _sign(doctor, unsigned(doctor, **overrides)), 422, "schema-invalid")


def test_schema_invalid_unknown_element(client, session_factory, doctor):
    root = _tree(unsigned(doctor))
    etree.SubElement(root, f"{{{EZ}}}Bonus").text = "1"
    refused(client, session_factory, _sign(doctor, root), 422, "schema-invalid")


def test_other_root_element(client, session_factory, doctor):
    # A signed Cancellation (a valid document of ours) sent where a SickLeave is expected.
    xml = build_cancellation_xml(
        Cancellation(
            document_id="5d0f4a3e-1c2b-4f7a-9e8d-0123456789ab",
            series="ZA",
            number="0000001",
            reason="x",
            npwz=doctor.npwz,
        )
    )
    refused(client, session_factory, _sign(doctor, xml), 422, "schema-invalid")


# --- business rules, each broken once by a correctly signed document ---------------------------------
BAD_PESEL = "44051401358"  # 44051401359 with a wrong check digit
T = today


RULES: dict[str, Callable[[], dict[str, Any]]] = {
    "incapacity-backdated": lambda: {
        "incapacity": Incapacity(start=T() - timedelta(days=4), end=T() + timedelta(days=3))
    },
    "incapacity-too-long": lambda: {"incapacity": Incapacity(start=T(), end=T() + timedelta(days=182))},
    "incapacity-too-long-with-b": lambda: {
        "codes": ("B",),
        "patient": FEMALE_PATIENT,
        "incapacity": Incapacity(start=T(), end=T() + timedelta(days=270)),
    },
    "incapacity-period-reversed": lambda: {"incapacity": Incapacity(start=T(), end=T() - timedelta(days=1))},
    "hospital-period-reversed": lambda: {
        "incapacity": Incapacity(
            start=T(),
            end=T() + timedelta(days=6),
            hospital=Hospital(start=T() + timedelta(days=3), end=T() + timedelta(days=1)),
        )
    },
    "hospital-outside-period": lambda: {
        "incapacity": Incapacity(
            start=T(), end=T() + timedelta(days=6), hospital=Hospital(start=T(), end=T() + timedelta(days=10))
        )
    },
    "pesel-invalid": lambda: {"patient": _patient(pesel=BAD_PESEL)},
    "pesel-invalid-date": lambda: {"patient": _patient(pesel="44023001356")},  # 30 February, right check digit
    "regon-invalid": lambda: {"clinic": _clinic(regon="123456784")},
    "nip-invalid": lambda: {"payer": Payer(nip="5260250275", name="Zakład Przykładowy S.A.")},
    "payer-pesel-invalid": lambda: {"payer": Payer(pesel=BAD_PESEL, name="Jan Nowak")},
    "family-member-pesel-invalid": lambda: {
        "family_member_care": FamilyMemberCare(pesel=BAD_PESEL, relationship=1, shares_household=False)
    },
    "family-member-birth-date-invalid": lambda: {
        "family_member_care": FamilyMemberCare(
            birth_date=T() + timedelta(days=1), relationship=1, shares_household=False
        )
    },
    "family-care-household-missing": lambda: {
        "family_member_care": FamilyMemberCare(birth_date=date(1950, 1, 1), relationship=3, shares_household=False)
    },
    "issue-date-in-future": lambda: {"today": T() + timedelta(days=1)},
    "submission-too-late": lambda: {"today": T() - timedelta(days=4)},
    "code-invalid": lambda: {"codes": ("A", "A")},
}


def _patient(**kw: Any) -> Patient:
    return msgspec.structs.replace(sample_sick_leave(today=T()).patient, **kw)


def _clinic(**kw: Any) -> Clinic:
    return msgspec.structs.replace(sample_sick_leave(today=T()).clinic, **kw)


@pytest.mark.parametrize("case", sorted(RULES))
def test_business_rule(client, session_factory, doctor, case):
    overrides = RULES[case]()
    code = case.removesuffix("-with-b").removesuffix("-date")
    refused(client, session_factory, signed_sick_leave(doctor, **overrides), 422, code)


def test_npwz_check_digit(client, session_factory, pki_dir, doctor):
    # The CA never registers a bad NPWZ, so the rule is reached with a certificate our issuing key
    # signed for one (recorded, so every earlier check passes) over a document naming it.
    bad = "1000000"
    issued = issue_with_our_ca(pki_dir, bad, when=datetime.now(UTC))
    record(session_factory, issued.cert)
    xml = build_sick_leave_xml(sample_sick_leave(today=today(), npwz=bad))
    refused(client, session_factory, issued.sign(xml), 422, "npwz-invalid")


# --- reads ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", "/receipt"])
def test_reads_need_the_issuing_doctors_token(client, operator_token, doctor, signed, suffix):
    ezla_id = client.post("/v1/ezla", content=signed, headers=XML).json()["id"]
    path = f"/v1/ezla/{ezla_id}{suffix}"

    r = client.get(path)
    assert (r.status_code, r.headers["content-type"].split(";")[0], r.json()["code"]) == (
        401,
        PROBLEM,
        "unauthenticated",
    )
    r = client.get(path, headers={"Authorization": "Bearer not-a-real-token"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")

    other = enroll(client, operator_token)
    r = client.get(path, headers=_login(client, other))
    assert (r.status_code, r.headers["content-type"].split(";")[0], r.json()["code"]) == (403, PROBLEM, "forbidden")
    assert "J06" not in r.text and "Kowalski" not in r.text

    assert client.get(path, headers=_login(client, doctor)).status_code == 200

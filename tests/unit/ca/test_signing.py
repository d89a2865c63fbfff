"""The CA core signs nothing that fails its lint: certificates, CRLs and OCSP responses are linted
as throwaway-key copies first, and a failed lint leaves no intent recorded and no signature made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp

from ezla.ca import crl, ocsp, profile, serials
from ezla.ca.ceremony import init_pki
from ezla.ca.keystore import OnlineKeys
from ezla.ca.signer import issue
from ezla.errors import LintFailed
from tests.pki import Hierarchy, certificate_builder, key_usage

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca() -> Hierarchy:
    return Hierarchy.shaped_like_ours(NOW)


def _doctor_builder(ca: Hierarchy) -> x509.CertificateBuilder:
    key = ec.generate_private_key(ec.SECP256R1())
    who = profile.DoctorIdentity("5425740", "Anna", "Nowak")
    return profile.doctor_builder(who, key.public_key(), ca.issuing, serials.new_serial(1), NOW, ca.prof, ca.urls)


def test_a_profile_certificate_passes_and_matches_its_lint_copy(ca: Hierarchy) -> None:
    intents: list[x509.Certificate] = []
    cert = issue(_doctor_builder(ca), ca.issuing_key, doctor=True, record_intent=intents.append)
    assert [c.tbs_certificate_bytes for c in intents] == [cert.tbs_certificate_bytes]
    ca.issuing.public_key().verify(  # type: ignore[call-arg]
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )


def test_lint_failure_records_no_intent(ca: Hierarchy) -> None:
    # digitalSignature beside nonRepudiation, and no NPWZ: not our doctor profile (EN 319 412-2).
    builder, _ = certificate_builder(
        ec.generate_private_key(ec.SECP256R1()),
        "lek. Anna Nowak",
        ca.issuing_key,  # type: ignore[arg-type]
        ca.issuing,
        now=NOW,
        ku=key_usage(digital_signature=True, content_commitment=True),
    )
    intents: list[x509.Certificate] = []
    with pytest.raises(LintFailed, match="nonRepudiation only") as caught:
        issue(builder, ca.issuing_key, doctor=True, record_intent=intents.append)
    assert "NPWZ" in caught.value.detail
    assert intents == []


def test_crl_is_linted_and_signed(ca: Hierarchy) -> None:
    entries = [crl.RevokedEntry(serials.new_serial(1), NOW - timedelta(hours=1), "keyCompromise")]
    der = crl.build_crl(ca.issuing, ca.issuing_key, entries, number=7, now=NOW, validity=timedelta(hours=24))
    parsed = x509.load_der_x509_crl(der)
    assert parsed.is_signature_valid(ca.issuing.public_key())  # type: ignore[arg-type]
    assert parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7


def test_crl_outside_our_profile_is_refused_before_signing(ca: Hierarchy) -> None:
    with pytest.raises(LintFailed, match="nextUpdate"):
        crl.build_crl(ca.issuing, ca.issuing_key, [], number=1, now=NOW, validity=timedelta(days=30))


def test_ocsp_response_is_linted_then_signed_by_the_responder(tmp_path: Path) -> None:
    init_pki(tmp_path, "unit-test-passphrase", "http://ezla.127.0.0.1.nip.io:8000", NOW - timedelta(days=1))
    keys = OnlineKeys.load(tmp_path, "unit-test-passphrase")
    request = (
        x509_ocsp.OCSPRequestBuilder().add_certificate(keys.ocsp, keys.issuing, hashes.SHA256()).build()
    )  # any certificate the issuing CA signed will do
    der = ocsp.respond(request, keys, lambda _: ocsp.Status("good", keys.ocsp), now=NOW)
    response = x509_ocsp.load_der_ocsp_response(der)
    assert response.response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.GOOD
    responder_key = keys.ocsp.public_key()
    assert isinstance(responder_key, ec.EllipticCurvePublicKey)
    responder_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(keys.ocsp.public_key()).digest
    assert response.certificates[0].public_bytes(serialization.Encoding.DER) == keys.ocsp.public_bytes(
        serialization.Encoding.DER
    )

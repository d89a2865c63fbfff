"""XAdES-T and XAdES-LT: signature time-stamps from our TSA prove when a signature existed, and the
evidence stored beside it (chain, OCSP status) verifies it offline long after the doctor's
certificate expired. Checked by our verifier, by openssl (the time-stamp) and by signxml (the
signed parts are untouched)."""

from __future__ import annotations

import copy
import hashlib
import subprocess
from base64 import b64decode
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from lxml import etree
from signxml.xades import XAdESVerifier

from ezla import errors
from ezla.ca import evidence, ocsp, tsa
from ezla.ca.keystore import OnlineKeys
from ezla.xades import DOCUMENT_SIGNING_EKU, Revocation, verify_enveloped
from ezla.xades.long_term import verify_long_term
from ezla.xades.unsigned import TimestampTrust
from tests.conftest import PASSPHRASE
from tests.pki import Hierarchy, Issued

XADES = "http://uri.etsi.org/01903/v1.3.2#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NOW = datetime.now(UTC).replace(microsecond=0)
DOC = b'<Leave xmlns="urn:example:leave"><Days>5</Days></Leave>'


@pytest.fixture(scope="module")
def keys(pki_dir: Path) -> OnlineKeys:
    return OnlineKeys.load(pki_dir, PASSPHRASE)


@pytest.fixture(scope="module")
def doctor(pki_dir: Path) -> Issued:
    return Hierarchy.ours(pki_dir, PASSPHRASE).doctor("5425740", when=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def signed(doctor: Issued) -> bytes:
    return doctor.sign(DOC, signing_time=NOW - timedelta(minutes=2))


def _trust(keys: OnlineKeys) -> TimestampTrust:
    return TimestampTrust(roots=[keys.root], intermediates=[keys.issuing])


def _verify(keys: OnlineKeys, data: bytes, **kw: object) -> object:
    kw.setdefault("at", NOW + timedelta(minutes=1))
    kw.setdefault("timestamp_trust", _trust(keys))
    return verify_enveloped(data, trust_roots=[keys.root], intermediates=[keys.issuing], **kw)  # type: ignore[arg-type]


def _tokens(data: bytes) -> list[bytes]:
    root = etree.fromstring(data)
    return [b64decode(el.text or "") for el in root.iter(f"{{{XADES}}}EncapsulatedTimeStamp")]


def _long_term(keys: OnlineKeys, signed: bytes, doctor: Issued, **kw: object) -> bytes:
    return evidence.long_term(signed, doctor.cert, kw.pop("revocation", None), keys, now=kw.pop("now", NOW))  # type: ignore[arg-type]


# --- XAdES-T ---------------------------------------------------------------------------------------
def test_a_time_stamp_from_our_tsa_proves_when_the_signature_existed(keys: OnlineKeys, signed: bytes) -> None:
    stamped = evidence.timestamped(signed, keys, now=NOW)
    verified = _verify(keys, stamped)
    assert verified.existed_at == NOW  # type: ignore[attr-defined]
    checks = [c.check.value for c in verified.report.checks]  # type: ignore[attr-defined]
    assert "timestamp" in checks and verified.signed_root is not None  # type: ignore[attr-defined]


def test_openssl_verifies_the_time_stamp_over_the_signature_value(
    keys: OnlineKeys, signed: bytes, pki_dir: Path, tmp_path: Path
) -> None:
    stamped = evidence.timestamped(signed, keys, now=NOW)
    root = etree.fromstring(stamped)
    value = root.find(f"{{{DS}}}Signature/{{{DS}}}SignatureValue")
    assert value is not None
    imprint = hashlib.sha256(etree.tostring(value, method="c14n")).hexdigest()  # c14n 1.0, in place
    (tmp_path / "token.der").write_bytes(_tokens(stamped)[0])
    issued = pki_dir / "issued"
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", imprint, "-token_in", "-in", str(tmp_path / "token.der"),
         "-CAfile", str(issued / "root.pem"), "-untrusted", str(issued / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in done.stdout, done.stderr


def test_the_signed_parts_are_untouched_for_other_verifiers(keys: OnlineKeys, signed: bytes, doctor: Issued) -> None:
    long_term = _long_term(keys, signed, doctor)
    result = XAdESVerifier().verify(
        long_term, x509_cert=doctor.cert.public_bytes(Encoding.PEM).decode(), expect_references=3
    )
    assert etree.tostring(result[0].signed_xml, method="c14n") == etree.tostring(etree.fromstring(DOC), method="c14n")


def test_no_trusted_tsa_or_an_untrusted_one_is_refused(keys: OnlineKeys, signed: bytes) -> None:
    stamped = evidence.timestamped(signed, keys, now=NOW)
    with pytest.raises(errors.TimeStampInvalid, match="no TSA is trusted"):
        from ezla.xades.unsigned import Unsigned, check_timestamps, covered_octets, read

        unsigned_props = next(etree.fromstring(stamped).iter(f"{{{XADES}}}UnsignedProperties"))
        found: Unsigned = read(unsigned_props)
        value = etree.fromstring(stamped).find(f"{{{DS}}}Signature/{{{DS}}}SignatureValue")
        check_timestamps(found, covered_octets(found, value), None, at=NOW)  # type: ignore[arg-type]
    with pytest.raises(errors.TimeStampInvalid):  # trusting no TSA at all
        _verify(keys, stamped, timestamp_trust=TimestampTrust(roots=()))
    stranger = Hierarchy.shaped_like_ours(NOW - timedelta(days=1))
    with pytest.raises(errors.TimeStampInvalid):
        _verify(keys, stamped, timestamp_trust=TimestampTrust(roots=[stranger.root]))


def test_a_time_stamp_moved_from_another_signature_is_refused(keys: OnlineKeys, doctor: Issued) -> None:
    one = evidence.timestamped(doctor.sign(DOC, signing_time=NOW - timedelta(minutes=2)), keys, now=NOW)
    other = evidence.timestamped(doctor.sign(DOC, signing_time=NOW - timedelta(minutes=1)), keys, now=NOW)
    a, b = etree.fromstring(one), etree.fromstring(other)
    token_a = next(a.iter(f"{{{XADES}}}EncapsulatedTimeStamp"))
    token_a.text = next(b.iter(f"{{{XADES}}}EncapsulatedTimeStamp")).text
    with pytest.raises(errors.TimeStampInvalid, match="imprint"):
        _verify(keys, etree.tostring(a))


def test_a_signing_time_after_the_time_stamp_is_refused(keys: OnlineKeys, doctor: Issued) -> None:
    later = doctor.sign(DOC, signing_time=NOW)
    stamped = evidence.timestamped(later, keys, now=NOW - timedelta(hours=1))  # a token "older" than the claim
    with pytest.raises(errors.SigningTimeInFuture, match="time-stamp"):
        _verify(keys, stamped)


def test_the_tsa_refuses_to_time_stamp_the_future(keys: OnlineKeys, signed: bytes) -> None:
    stamped = evidence.timestamped(signed, keys, now=NOW + timedelta(hours=1))
    with pytest.raises(errors.TimeStampInvalid):
        _verify(keys, stamped, at=NOW)  # genTime after the time of receipt: not a proof of anything


def test_other_unsigned_content_and_too_much_evidence_are_refused(keys: OnlineKeys, signed: bytes) -> None:
    long_term = evidence.long_term(signed, keys.ocsp, None, keys, now=NOW)  # any certificate will do here
    root = etree.fromstring(long_term)
    usp = next(root.iter(f"{{{XADES}}}UnsignedSignatureProperties"))
    counter = copy.deepcopy(root)
    next(counter.iter(f"{{{XADES}}}UnsignedSignatureProperties")).append(etree.Element(f"{{{XADES}}}CounterSignature"))
    with pytest.raises(errors.UnsignedPropertiesRefused, match="CounterSignature"):
        _verify(keys, etree.tostring(counter))
    values = usp.find(f"{{{XADES}}}CertificateValues")
    assert values is not None
    for _ in range(9):
        values.append(copy.deepcopy(values[0]))
    with pytest.raises(errors.UnsignedPropertiesRefused):
        _verify(keys, etree.tostring(root))


# --- XAdES-LT --------------------------------------------------------------------------------------
def test_long_term_verifies_years_later_from_its_own_evidence(keys: OnlineKeys, signed: bytes, doctor: Issued) -> None:
    long_term = _long_term(keys, signed, doctor)
    later = doctor.cert.not_valid_after_utc + timedelta(days=3 * 365)  # the doctor's certificate long expired
    with pytest.raises(errors.CertificateExpired):  # without the evidence: judged at that time, it fails
        verify_enveloped(signed, trust_roots=[keys.root], intermediates=[keys.issuing], at=later)
    verified = verify_long_term(
        long_term, trust_roots=[keys.root], intermediates=[keys.issuing], at=later, require_eku=DOCUMENT_SIGNING_EKU
    )
    assert verified.existed_at == NOW and verified.signer == doctor.cert
    assert verified.report.as_dict()["indication"] == "TOTAL-PASSED"
    assert verified.revocation is None  # the stored OCSP response said good


def test_long_term_without_a_time_stamp_or_status_is_refused(keys: OnlineKeys, signed: bytes, doctor: Issued) -> None:
    with pytest.raises(errors.EvidenceMissing):
        verify_long_term(signed, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW)
    stamped_only = evidence.timestamped(signed, keys, now=NOW)
    with pytest.raises(errors.RevocationEvidenceInvalid):
        verify_long_term(stamped_only, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW)


def _with_ocsp(keys: OnlineKeys, signed: bytes, doctor: Issued, response: bytes) -> bytes:
    from ezla.xades.unsigned import add

    return add(
        signed,
        stamp=evidence.stamper(keys, now=NOW),
        certificates=[doctor.cert, keys.issuing],
        ocsp_responses=[response],
    )


def test_an_ocsp_response_for_another_certificate_or_from_a_stranger_is_not_evidence(
    keys: OnlineKeys, signed: bytes, doctor: Issued
) -> None:
    other = ocsp.status_response(ocsp.Status("good", keys.service), keys, now=NOW)
    with pytest.raises(errors.RevocationEvidenceInvalid):
        verify_long_term(
            _with_ocsp(keys, signed, doctor, other), trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW
        )
    # A response naming the doctor, signed by a key the issuing CA never delegated OCSP to.
    forged = (
        x509_ocsp.OCSPResponseBuilder()
        .add_response(doctor.cert, keys.issuing, hashes.SHA256(), x509_ocsp.OCSPCertStatus.GOOD, NOW, NOW + timedelta(hours=1), None, None)
        .responder_id(x509_ocsp.OCSPResponderEncoding.HASH, keys.tsa)
        .certificates([keys.tsa])
        .sign(keys.tsa_key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )  # fmt: skip
    with pytest.raises(errors.RevocationEvidenceInvalid):
        verify_long_term(
            _with_ocsp(keys, signed, doctor, forged), trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW
        )


def test_a_stale_status_is_not_evidence_for_the_time_stamp(keys: OnlineKeys, signed: bytes, doctor: Issued) -> None:
    stale = ocsp.status_response(ocsp.Status("good", doctor.cert), keys, now=NOW - timedelta(hours=3))
    with pytest.raises(errors.RevocationEvidenceInvalid):
        verify_long_term(
            _with_ocsp(keys, signed, doctor, stale), trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW
        )


def test_a_compromise_before_the_time_stamp_fails_long_term(keys: OnlineKeys, signed: bytes, doctor: Issued) -> None:
    compromised = Revocation(NOW - timedelta(minutes=10), "keyCompromise")
    long_term = _long_term(keys, signed, doctor, revocation=compromised)
    with pytest.raises(errors.CertificateRevoked):
        verify_long_term(long_term, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW + timedelta(days=900))


def test_a_benign_revocation_after_signing_stays_valid_long_term(
    keys: OnlineKeys, signed: bytes, doctor: Issued
) -> None:
    superseded = Revocation(NOW - timedelta(minutes=1), "superseded")  # after SigningTime (NOW - 2 min)
    long_term = _long_term(keys, signed, doctor, revocation=superseded)
    verified = verify_long_term(
        long_term, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW + timedelta(days=900)
    )
    assert verified.revocation == superseded
    assert "signed-before-revocation" in verified.report.notes


def test_the_status_response_is_reused_only_while_the_status_is_the_same(keys: OnlineKeys, doctor: Issued) -> None:
    first = evidence.status_response(keys, doctor.cert, None, now=NOW)
    assert evidence.status_response(keys, doctor.cert, None, now=NOW + timedelta(minutes=5)) == first
    assert evidence.status_response(keys, doctor.cert, None, now=NOW + evidence.STATUS_REUSE) != first
    revoked = evidence.status_response(keys, doctor.cert, Revocation(NOW, "superseded"), now=NOW + timedelta(minutes=5))
    assert x509_ocsp.load_der_ocsp_response(revoked).certificate_status == x509_ocsp.OCSPCertStatus.REVOKED


def test_tsa_policy_is_in_every_token(keys: OnlineKeys, signed: bytes) -> None:
    from asn1crypto import cms, tsp

    token = _tokens(evidence.timestamped(signed, keys, now=NOW))[0]
    info = tsp.TSTInfo.load(bytes(cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"]))
    assert info["policy"].dotted == tsa.TSA_POLICY


def test_a_clinic_time_stamp_before_ours_still_validates_long_term(keys: OnlineKeys, doctor: Issued) -> None:
    signed = doctor.sign(DOC, signing_time=NOW - timedelta(minutes=20))
    clinic = evidence.timestamped(signed, keys, now=NOW - timedelta(minutes=10))  # stamped at /v1/tsa, sent later
    long_term = evidence.long_term(clinic, doctor.cert, None, keys, now=NOW)
    verified = verify_long_term(
        long_term, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW + timedelta(days=900)
    )
    assert verified.existed_at == NOW - timedelta(minutes=10)  # the oldest stamp is the proof of existence
    assert len(verified.timestamps) == 2


@pytest.mark.parametrize("reason", ["superseded", "affiliationChanged", "cessationOfOperation"])
def test_every_benign_revocation_after_signing_stays_valid_long_term(
    keys: OnlineKeys, signed: bytes, doctor: Issued, reason: str
) -> None:
    revoked = Revocation(NOW - timedelta(minutes=1), reason)
    long_term = _long_term(keys, signed, doctor, revocation=revoked)
    verified = verify_long_term(
        long_term, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW + timedelta(days=900)
    )
    assert verified.revocation == revoked


def test_a_submission_may_not_bring_its_own_certificate_or_revocation_values(
    keys: OnlineKeys, signed: bytes, doctor: Issued
) -> None:
    # The archive form is the service's: sent back as a submission, its values are refused.
    with pytest.raises(errors.UnsignedPropertiesRefused, match="added by the service"):
        _verify(keys, _long_term(keys, signed, doctor))
    stamped = signed
    for minutes in (3, 2, 1):
        stamped = evidence.timestamped(stamped, keys, now=NOW - timedelta(minutes=minutes))
    _verify(keys, stamped)  # three stamps leave room for the service's own
    with pytest.raises(errors.UnsignedPropertiesRefused, match="at most 3"):
        _verify(keys, evidence.timestamped(stamped, keys, now=NOW))


def test_unsigned_text_in_attributes_is_refused(keys: OnlineKeys, signed: bytes) -> None:
    root = etree.fromstring(evidence.timestamped(signed, keys, now=NOW))
    next(root.iter(f"{{{XADES}}}SignatureTimeStamp")).set("Note", "Pacjent widziany na weselu")
    with pytest.raises(errors.UnsignedPropertiesRefused, match="attribute"):
        _verify(keys, etree.tostring(root))

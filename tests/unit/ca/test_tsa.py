"""The RFC 3161 responder: OpenSSL's ``ts`` and rfc3161-client (two independent peers) accept its
tokens; hostile queries get well-formed rejections with the right failInfo, never an exception."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc3161_client
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ezla.ca import keystore, profile, serials, tsa
from ezla.ca.lint import lint_certificate
from ezla.ca.signer import issue
from tests.conftest import PASSPHRASE, PUBLIC_URL

NOW = datetime.now(UTC).replace(microsecond=0)
DATA = b"SickLeave 5d0f4a3e-1c2b-4f7a-9e8d-0123456789ab\n"


@dataclass(frozen=True)
class Tsa:
    root: x509.Certificate
    issuing: x509.Certificate
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def respond(self, query: bytes, **kwargs: Any) -> bytes:
        return tsa.respond(query, cert=self.cert, key=self.key, chain=[self.issuing], now=NOW, **kwargs)


def _new_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1() if kind == "p384" else ec.SECP256R1())


def _make_tsa(pki_dir: Path, kind: str) -> Tsa:
    issuing, root = keystore.load_cert(pki_dir, "issuing"), keystore.load_cert(pki_dir, "root")
    key = _new_key(kind)
    builder = profile.tsa_builder(
        key.public_key(),
        issuing,
        serials.new_serial(1),
        NOW - timedelta(days=1),
        profile.Profile.load(pki_dir),
        profile.Urls(PUBLIC_URL),
    )
    cert = issue(builder, keystore.load_key(pki_dir, "issuing", PASSPHRASE), doctor=False)
    return Tsa(root, issuing, cert, key)


@pytest.fixture(scope="module")
def ours(pki_dir: Path) -> Tsa:
    return _make_tsa(pki_dir, "ec")


def _pem(path: Path, *certs: x509.Certificate) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", "ts", f"-{args[0]}", *args[1:]], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _query(*, digest: bytes = b"\x01" * 32, hash_name: str = "sha256", **fields: Any) -> bytes:
    imprint = {"hash_algorithm": {"algorithm": hash_name}, "hashed_message": digest}
    return bytes(tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, **fields}).dump())


def _status(response: bytes) -> tuple[str, set[str] | None, Any]:
    resp = tsa.TimeStampResp.load(response, strict=True)
    status = resp["status"]
    return status["status"].native, status["fail_info"].native, resp["time_stamp_token"]


# --- the two peers accept what we make ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ec", "p384", "rsa"])
def test_openssl_query_is_granted_and_openssl_verifies_the_reply(pki_dir: Path, tmp_path: Path, kind: str) -> None:
    ca = _make_tsa(pki_dir, kind)
    (tmp_path / "data").write_bytes(DATA)
    query, reply = tmp_path / "q.tsq", tmp_path / "resp.tsr"
    _openssl("query", "-data", str(tmp_path / "data"), "-sha256", "-cert", "-out", str(query))
    reply.write_bytes(ca.respond(query.read_bytes()))

    root, untrusted = _pem(tmp_path / "root.pem", ca.root), _pem(tmp_path / "issuing.pem", ca.issuing)
    verified = _openssl(
        "verify", "-data", str(tmp_path / "data"), "-in", str(reply), "-CAfile", root, "-untrusted", untrusted
    )
    assert "Verification: OK" in verified

    text = _openssl("reply", "-in", str(reply), "-text")
    nonce = next(
        line for line in _openssl("query", "-in", str(query), "-text").splitlines() if line.startswith("Nonce:")
    )
    assert "Status: Granted." in text and "Policy OID: 0.4.0.2023.1.1" in text
    assert nonce in text.splitlines()  # echoed as asked
    assert "Accuracy: 0x01 seconds" in text
    assert f"Time stamp: {NOW:%b %e %H:%M:%S %Y} GMT" in text

    (tmp_path / "other").write_bytes(DATA + b"x")  # and the peer is no rubber stamp
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(tmp_path / "other"), "-in", str(reply), "-CAfile", root],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "Verification: OK" not in done.stdout


def test_rfc3161_client_verifies_the_token(ours: Tsa) -> None:
    request = (
        rfc3161_client.TimestampRequestBuilder().data(DATA).nonce(nonce=True).cert_request(cert_request=True).build()
    )
    response = rfc3161_client.decode_timestamp_response(ours.respond(request.as_bytes()))
    verifier = (
        rfc3161_client.VerifierBuilder.from_request(request)
        .add_root_certificate(ours.root)
        .add_intermediate_certificate(ours.issuing)
        .build()
    )
    assert verifier.verify_message(response, DATA)
    assert response.tst_info.nonce == request.nonce
    assert response.tst_info.gen_time.replace(tzinfo=UTC) == NOW
    with pytest.raises(rfc3161_client.VerificationError):
        verifier.verify_message(response, DATA + b"x")


# --- what the query asks for -----------------------------------------------------------------------
def test_nonce_is_echoed_and_certificates_come_only_on_cert_req(ours: Tsa) -> None:
    status, fail, token = _status(ours.respond(_query(nonce=2**70 + 5, cert_req=True)))
    assert (status, fail) == ("granted", None)
    signed = token["content"]
    assert signed["encap_content_info"]["content"].parsed["nonce"].native == 2**70 + 5
    carried = {x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]}
    assert carried == {ours.cert, ours.issuing}  # a SET OF: DER sorts it

    status, _, token = _status(ours.respond(_query(nonce=7)))  # certReq defaults to false
    assert status == "granted"
    assert isinstance(token["content"]["certificates"], core.Void)
    assert token["content"]["encap_content_info"]["content"].parsed["nonce"].native == 7


def test_our_policy_may_be_asked_for_and_a_deployment_may_set_another(ours: Tsa) -> None:
    status, _, token = _status(ours.respond(_query(req_policy=tsa.TSA_POLICY)))
    assert status == "granted"
    assert token["content"]["encap_content_info"]["content"].parsed["policy"].dotted == tsa.TSA_POLICY
    status, _, token = _status(ours.respond(_query(req_policy="1.2.3.4"), policy="1.2.3.4"))
    assert status == "granted"
    assert token["content"]["encap_content_info"]["content"].parsed["policy"].dotted == "1.2.3.4"


def test_sha1_query_is_rejected_with_bad_alg(ours: Tsa, tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(DATA)
    query = tmp_path / "q.tsq"
    _openssl("query", "-data", str(tmp_path / "data"), "-sha1", "-out", str(query))
    reply = tmp_path / "r.tsr"
    reply.write_bytes(ours.respond(query.read_bytes()))
    status, fail, token = _status(reply.read_bytes())
    assert (status, fail) == ("rejection", {"bad_alg"})
    assert isinstance(token, core.Void)
    text = _openssl("reply", "-in", str(reply), "-text")
    assert "Status: Rejected." in text and "unrecognized or unsupported algorithm identifier" in text


@pytest.mark.parametrize(
    ("fields", "fail"),
    [
        ({"req_policy": "1.2.3.4"}, "unaccepted_policy"),
        ({"extensions": [{"extn_id": "1.2.3.4", "extn_value": b"\x05\x00"}]}, "unaccepted_extensions"),
        ({"extensions": []}, "unaccepted_extensions"),
        ({"version": "v2"}, "bad_data_format"),
        ({"digest": b"\x01" * 31}, "bad_data_format"),
        ({"digest": b"\x01" * 20, "hash_name": "sha1"}, "bad_alg"),
        ({"digest": b"\x01" * 16, "hash_name": "md5"}, "bad_alg"),
        ({"digest": b"\x01" * 28, "hash_name": "sha224"}, "bad_alg"),
    ],
)
def test_queries_we_do_not_grant_get_their_fail_info(ours: Tsa, fields: dict[str, Any], fail: str) -> None:
    fields = dict(fields)
    version = fields.pop("version", None)
    query = _query(**fields)
    if version:
        req = tsp.TimeStampReq.load(query)
        req["version"] = version
        query = req.dump(force=True)
    assert _status(ours.respond(query))[:2] == ("rejection", {fail})


class _AnyAlgorithm(core.Sequence):  # type: ignore[misc]
    """An AlgorithmIdentifier with any parameters: asn1crypto's DigestAlgorithm only lets them be NULL."""

    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _Imprint(core.Sequence):  # type: ignore[misc]
    _fields = [("hash_algorithm", _AnyAlgorithm), ("hashed_message", core.OctetString)]


class _Req(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("message_imprint", _Imprint)]


@pytest.mark.parametrize(("parameters", "granted"), [(core.Integer(1), False), (core.Null(), True), (None, True)])
def test_digest_parameters_other_than_null_are_bad_alg(ours: Tsa, parameters: Any, granted: bool) -> None:
    algorithm: dict[str, Any] = {"algorithm": "2.16.840.1.101.3.4.2.1"}  # SHA-256
    if parameters is not None:
        algorithm["parameters"] = parameters
    query = _Req({"version": 1, "message_imprint": {"hash_algorithm": algorithm, "hashed_message": b"\x01" * 32}})
    status, fail, _ = _status(ours.respond(query.dump()))
    assert (status, fail) == (("granted", None) if granted else ("rejection", {"bad_alg"}))


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"garbage",
        b"\x30\x80\x00\x00",
        b"\x30\x84\xff\xff\xff\xff",  # a length far beyond the bytes
        _query() + b"\x00",  # trailing data
        b"\x30" * 2000,
        _query(nonce=int.from_bytes(b"\x7f" * 4100)),  # over MAX_QUERY_BYTES
        b"\x30\x82\x10\x00" + b"\x00" * 4096,
    ],
)
def test_garbage_and_oversize_queries_are_bad_data_format(ours: Tsa, query: bytes) -> None:
    assert _status(ours.respond(query))[:2] == ("rejection", {"bad_data_format"})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_respond_never_raises_on_mutated_queries(ours: Tsa, data: st.DataObject) -> None:
    query = _query(nonce=99, cert_req=True, req_policy=tsa.TSA_POLICY)
    pos = data.draw(st.integers(0, len(query) - 1))
    mutated = query[:pos] + bytes([data.draw(st.integers(0, 255))]) + query[pos + 1 :]
    status, fail, token = _status(ours.respond(mutated))  # well-formed whatever happens
    assert (status == "granted") == (fail is None) == isinstance(token, cms.ContentInfo)


# --- the TSA certificate and key --------------------------------------------------------------------
def test_the_tsa_certificate_profile_passes_lint(ours: Tsa) -> None:
    ext = ours.cert.extensions
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    status_urls = [d.access_location.value for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value]
    assert status_urls == [f"{PUBLIC_URL}/v1/ca/ocsp", f"{PUBLIC_URL}/v1/ca/issuing.cer"]
    crl_dp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in crl_dp[0].full_name or []] == [f"{PUBLIC_URL}/v1/ca/crl"]
    assert ours.cert.subject.rfc4514_string() == "CN=ezla Time-Stamping Authority,O=ezla,C=PL"
    lint_certificate(ours.cert, doctor=False)  # raises LintFailed on any finding


def _token_key(real: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    """A stand-in for a PKCS#11 key: sign, public_key, curve and key_size work, nothing else."""

    def forbidden(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"{name} is not available on a token key")

        return method

    body: dict[str, Any] = {n: forbidden(n) for n in ec.EllipticCurvePrivateKey.__abstractmethods__}
    body |= {
        "sign": lambda self, data, algorithm: real.sign(data, algorithm),
        "public_key": lambda self: real.public_key(),
        "curve": property(lambda self: real.curve),
        "key_size": property(lambda self: real.key_size),
    }
    return type("TokenKey", (ec.EllipticCurvePrivateKey,), body)()  # type: ignore[no-any-return]


def test_stamp_asks_the_key_only_what_a_pkcs11_token_answers(ours: Tsa) -> None:
    assert isinstance(ours.key, ec.EllipticCurvePrivateKey)
    request = rfc3161_client.TimestampRequestBuilder().data(DATA).build()
    reply = tsa.respond(request.as_bytes(), cert=ours.cert, key=_token_key(ours.key), chain=[ours.issuing], now=NOW)
    verifier = rfc3161_client.VerifierBuilder(tsa_certificate=ours.cert).add_root_certificate(ours.root)
    assert (
        verifier.add_intermediate_certificate(ours.issuing)
        .build()
        .verify_message(rfc3161_client.decode_timestamp_response(reply), DATA)
    )


def test_stamp_refuses_a_key_that_is_not_the_certificates(ours: Tsa) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        tsa.stamp(
            "sha256", hashes.Hash(hashes.SHA256()).finalize(), cert=ours.cert, key=_new_key("ec"), chain=[], now=NOW
        )
    with pytest.raises(ValueError, match="sha1"):
        tsa.stamp("sha1", b"\x00" * 20, cert=ours.cert, key=ours.key, chain=[], now=NOW)

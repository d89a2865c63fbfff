"""ezla.xades.timestamps: RFC 3161 tokens from our TSA (and from OpenSSL's) verify; every forgery,
wrong signer, wrong time or hostile blob is refused with TimeStampInvalid and nothing else."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from hypothesis import given, settings
from hypothesis import strategies as st

from ezla.ca import keystore, profile, serials, tsa
from ezla.ca.signer import issue
from ezla.errors import SignatureInvalid, TimeStampInvalid
from ezla.xades.timestamps import TimeStamp, imprint_of, verify_token, verify_token_over
from tests.conftest import PASSPHRASE, PUBLIC_URL
from tests.pki import Hierarchy

NOW = datetime.now(UTC).replace(microsecond=0)
DATA = b"<SickLeave>...</SickLeave> signature value"
IMPRINT = imprint_of(DATA, "sha256")


@dataclass(frozen=True)
class Tsa:
    root: x509.Certificate
    issuing: x509.Certificate
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def stamp(self, imprint: bytes = IMPRINT, *, now: datetime = NOW, **kwargs: Any) -> bytes:
        return tsa.stamp("sha256", imprint, cert=self.cert, key=self.key, chain=[self.issuing], now=now, **kwargs)

    def verify(self, token: bytes, *, imprint: bytes = IMPRINT, **kwargs: Any) -> TimeStamp:
        return verify_token(token, imprint=imprint, trust_roots=[self.root], intermediates=[self.issuing], **kwargs)


def _tsa_from(
    root: x509.Certificate, issuing: x509.Certificate, issuing_key: Any, prof: profile.Profile, when: datetime
) -> Tsa:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = profile.tsa_builder(
        key.public_key(), issuing, serials.new_serial(1), when, prof, profile.Urls(PUBLIC_URL)
    )
    return Tsa(root, issuing, issue(builder, issuing_key, doctor=False), key)


def _ours(pki_dir: Path, when: datetime, prof: profile.Profile | None = None) -> Tsa:
    root, issuing = keystore.load_cert(pki_dir, "root"), keystore.load_cert(pki_dir, "issuing")
    issuing_key = keystore.load_key(pki_dir, "issuing", PASSPHRASE)
    return _tsa_from(root, issuing, issuing_key, prof or profile.Profile.load(pki_dir), when)


@pytest.fixture(scope="module")
def ours(pki_dir: Path) -> Tsa:
    # The session CA was made 60 days ago: this TSA certificate starts 30 days ago, well inside it.
    return _ours(pki_dir, NOW - timedelta(days=30))


# --- accepted ----------------------------------------------------------------------------------------
def test_a_good_token_verifies_and_says_when(ours: Tsa) -> None:
    stamped = ours.verify(ours.stamp(serial=4242), at=NOW)
    assert stamped == TimeStamp(NOW, ours.cert, "sha256", 4242, tsa.TSA_POLICY)
    assert stamped.gen_time.tzinfo is not None
    assert (
        verify_token_over(ours.stamp(), data=DATA, trust_roots=[ours.root], intermediates=[ours.issuing]).gen_time
        == NOW
    )


def test_a_token_without_certificates_needs_the_tsa_certificate_given(ours: Tsa) -> None:
    bare = ours.stamp(include_certs=False)
    assert ours.verify(bare, tsa_certificates=[ours.cert]).tsa == ours.cert
    with pytest.raises(TimeStampInvalid, match="neither in the token"):
        ours.verify(bare)


def test_sha384_and_sha512_imprints_verify_over_the_data(ours: Tsa) -> None:
    for name in ("sha384", "sha512"):
        token = tsa.stamp(name, imprint_of(DATA, name), cert=ours.cert, key=ours.key, chain=[ours.issuing], now=NOW)
        assert (
            verify_token_over(token, data=DATA, trust_roots=[ours.root], intermediates=[ours.issuing]).hash_name == name
        )
        with pytest.raises(TimeStampInvalid, match=f"imprint is {name}, not sha256"):
            ours.verify(token, imprint=imprint_of(DATA, name), hash_name="sha256")


def _openssl_reply(ours: Tsa, tmp_path: Path, digest: str) -> bytes:
    """A token made by OpenSSL's TSA with our TSA key: an independent producer for our verifier."""
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "tsa.pem").write_bytes(ours.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(ours.issuing.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tsa.key").write_bytes(
        ours.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(
        f"[tsa]\ndefault_tsa = ours\n[ours]\nserial = {tmp_path / 'serial'}\nsigner_digest = sha256\n"
        f"signer_cert = {tmp_path / 'tsa.pem'}\nsigner_key = {tmp_path / 'tsa.key'}\n"
        f"default_policy = {tsa.TSA_POLICY}\ndigests = sha1, sha256\naccuracy = secs:1\n"
        f"certs = {tmp_path / 'chain.pem'}\ness_cert_id_alg = sha256\n"
    )
    query, token = tmp_path / "q.tsq", tmp_path / "token.der"
    for args in (
        ["-query", "-data", str(tmp_path / "data"), f"-{digest}", "-cert", "-out", str(query)],
        ["-reply", "-config", str(tmp_path / "tsa.cnf"), "-queryfile", str(query), "-token_out", "-out", str(token)],
    ):
        done = subprocess.run(["openssl", "ts", *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return token.read_bytes()


def test_a_token_openssl_made_verifies(ours: Tsa, tmp_path: Path) -> None:
    stamped = verify_token_over(
        _openssl_reply(ours, tmp_path, "sha256"), data=DATA, trust_roots=[ours.root], intermediates=[ours.issuing]
    )
    assert stamped.tsa == ours.cert and stamped.policy == tsa.TSA_POLICY
    assert stamped.serial == int((tmp_path / "serial").read_text(), 16)  # OpenSSL's serial file
    assert abs(stamped.gen_time - datetime.now(UTC)) < timedelta(minutes=1)


# --- refused -----------------------------------------------------------------------------------------
def test_a_sha1_imprint_is_refused(ours: Tsa, tmp_path: Path) -> None:
    token = _openssl_reply(ours, tmp_path, "sha1")
    with pytest.raises(TimeStampInvalid, match="imprint hash sha1 is refused"):
        verify_token_over(token, data=DATA, trust_roots=[ours.root], intermediates=[ours.issuing])


def test_a_wrong_imprint_is_refused(ours: Tsa) -> None:
    with pytest.raises(TimeStampInvalid, match="imprint does not match"):
        ours.verify(ours.stamp(), imprint=imprint_of(DATA + b" ", "sha256"))
    with pytest.raises(TimeStampInvalid, match="imprint does not match"):
        verify_token_over(ours.stamp(), data=DATA + b" ", trust_roots=[ours.root], intermediates=[ours.issuing])


def _flip(token: bytes, field: bytes) -> bytes:
    assert token.count(field) == 1, "the field to tamper with must be unambiguous"
    at = token.index(field) + len(field) - 2  # a byte inside the field, not its tag or length
    return token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]


def test_a_tampered_tstinfo_is_refused(ours: Tsa) -> None:
    serial = b"\x5e" + b"\xc2" * 15  # positive, so DER encodes exactly these 16 octets
    token = ours.stamp(serial=int.from_bytes(serial))
    ours.verify(token)  # the untampered one is fine
    gen_time = f"{NOW:%Y%m%d%H%M%S}Z".encode()
    digest_refused, imprint_refused = "the message-digest attribute does not", "the message imprint does not"
    for field, refusal in ((gen_time, digest_refused), (serial, digest_refused), (IMPRINT, imprint_refused)):
        with pytest.raises(TimeStampInvalid, match=refusal):
            ours.verify(_flip(token, field))


def test_a_tampered_signature_is_refused(ours: Tsa) -> None:
    token = ours.stamp()
    with pytest.raises(TimeStampInvalid):
        ours.verify(token[:-200] + bytes([token[-200] ^ 0x01]) + token[-199:])


def test_a_token_signed_by_a_non_tsa_certificate_is_refused(ours: Tsa, pki_dir: Path) -> None:
    ocsp = keystore.load_cert(pki_dir, "ocsp")
    token = tsa.stamp(
        "sha256", IMPRINT, cert=ocsp, key=keystore.load_key(pki_dir, "ocsp", PASSPHRASE), chain=[ours.issuing], now=NOW
    )
    with pytest.raises(TimeStampInvalid, match="id-kp-timeStamping"):
        ours.verify(token)


def test_a_tsa_of_another_root_is_refused(ours: Tsa) -> None:
    foreign = Hierarchy.shaped_like_ours(NOW - timedelta(days=30))
    impostor = _tsa_from(foreign.root, foreign.issuing, foreign.issuing_key, foreign.prof, NOW - timedelta(days=1))
    token = impostor.stamp()
    assert impostor.verify(token).tsa == impostor.cert  # a well-made token, just not from our CA
    with pytest.raises(TimeStampInvalid, match="certificate-untrusted"):
        ours.verify(token)


def test_a_token_outside_the_tsa_certificate_validity_is_refused(ours: Tsa, pki_dir: Path) -> None:
    before = ours.cert.not_valid_before_utc - timedelta(hours=1)  # the issuing CA is valid then
    with pytest.raises(TimeStampInvalid, match="certificate-untrusted"):
        ours.verify(ours.stamp(now=before))
    short_lived = _ours(pki_dir, NOW - timedelta(days=20), profile.Profile(tsa_days=1))
    assert short_lived.verify(short_lived.stamp(now=NOW - timedelta(days=20)))  # inside its one day
    with pytest.raises(TimeStampInvalid, match="certificate-untrusted"):
        short_lived.verify(short_lived.stamp(now=NOW - timedelta(days=10)))  # expired nine days before


def test_gen_time_after_at_is_refused(ours: Tsa) -> None:
    token = ours.stamp()
    assert ours.verify(token, at=NOW - timedelta(seconds=1)).gen_time == NOW  # within the accuracy
    with pytest.raises(TimeStampInvalid, match="later than"):
        ours.verify(token, at=NOW - timedelta(seconds=2))


@pytest.mark.parametrize(
    "blob",
    [b"", b"garbage", os.urandom(300), b"\x30\x80" * 64, b"\x30\x84\xff\xff\xff\xff", b"\x00" * 100_000],
    ids=["empty", "text", "random", "indefinite", "huge-length", "100KB"],
)
def test_garbage_is_refused_as_timestamp_invalid(ours: Tsa, blob: bytes) -> None:
    with pytest.raises(TimeStampInvalid) as caught:
        ours.verify(blob)
    assert type(caught.value) is TimeStampInvalid and caught.value.code == "timestamp-invalid"
    assert isinstance(caught.value, SignatureInvalid)


def test_a_100kb_token_is_refused_before_parsing(ours: Tsa) -> None:
    token = ours.stamp()
    with pytest.raises(TimeStampInvalid, match="larger than 65536"):
        ours.verify(token + b"\x00" * (100_000 - len(token)))


@pytest.fixture(scope="module")
def token(ours: Tsa) -> bytes:
    return ours.stamp()  # once: ECDSA signatures vary in length, hypothesis wants one input


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutated_token_is_refused_only_with_timestamp_invalid(ours: Tsa, token: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(token) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != token[pos]))
    mutated = token[:pos] + bytes([byte]) + token[pos + 1 :]
    try:
        stamped = ours.verify(mutated)
    except TimeStampInvalid:
        return
    # A few bytes are outside everything signed and checked (the SignedData's unsigned copy of the
    # digest algorithm, for one): what comes back must still be exactly what the TSA signed.
    assert stamped.gen_time == NOW and stamped.tsa == ours.cert and stamped.hash_name == "sha256"

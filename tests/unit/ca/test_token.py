"""CA keys in a PKCS#11 token (SoftHSM2): made inside it, never readable, and every CA signature
(certificates, CRL, OCSP, receipt seal, time-stamps) comes from it and verifies with openssl."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from lxml import etree

from ezla.ca import ceremony, crl, keystore, ocsp, profile, serials
from ezla.ca.keystore import ROLES, OnlineKeys
from ezla.ca.signer import issue
from ezla.ca.token import TokenEcKey, TokenRsaKey
from ezla.errors import LintFailed, PkiPassphraseWrong, TokenKeyExists
from ezla.issuance.receipts import build_receipt
from ezla.xades import verify_enveloped
from tests.softhsm import PIN, new_token, new_token_for_a_child_process

URL = "http://ezla.127.0.0.1.nip.io:8000"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def token_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OnlineKeys]:
    pki_dir = tmp_path_factory.mktemp("token-pki")
    ceremony.init_pki(pki_dir, PIN, URL, NOW - timedelta(days=1), token=new_token())
    return pki_dir, OnlineKeys.load(pki_dir, PIN)


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_ceremony_leaves_no_key_on_disk_and_records_the_token(token_pki: tuple[Path, OnlineKeys]) -> None:
    pki_dir, keys = token_pki
    assert sorted(p.name for p in (pki_dir / "keys").iterdir()) == ["pkcs11.toml"]
    assert all(keystore.cert_path(pki_dir, role).exists() for role in ROLES)
    assert keys.in_token
    for key in (keys.issuing_key, keys.ocsp_key, keys.audit_key, keys.tsa_key):
        assert isinstance(key, TokenEcKey)
    assert isinstance(keys.service_key, TokenRsaKey)
    with pytest.raises(TypeError):
        keys.issuing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def test_the_private_keys_are_sensitive_and_not_extractable(token_pki: tuple[Path, OnlineKeys]) -> None:
    pki_dir, _ = token_pki
    config = keystore.token_config(pki_dir)
    assert config is not None
    from ezla.ca.token import open_token

    opened = open_token(config, PIN)
    with opened.lock:
        privates = list(opened._session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}))
        labels = sorted(p.label for p in privates)
        flags = {
            (p[pkcs11.Attribute.SENSITIVE], p[pkcs11.Attribute.EXTRACTABLE], p[pkcs11.Attribute.PRIVATE])
            for p in privates
        }
    assert labels == sorted(ROLES)
    assert flags == {(True, False, True)}  # never readable; visible only after the user PIN


def test_certificates_crl_and_ocsp_from_the_token_verify_with_openssl(
    token_pki: tuple[Path, OnlineKeys], tmp_path: Path
) -> None:
    pki_dir, keys = token_pki
    published = pki_dir / "issued"
    for role in ("ocsp", "service", "audit", "tsa"):
        out = _openssl(
            "verify",
            "-CAfile",
            str(published / "root.pem"),
            "-untrusted",
            str(published / "issuing.pem"),
            str(published / f"{role}.pem"),
        )
        assert ": OK" in out
    doctor_key = serialization.load_pem_private_key(
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            capture_output=True,
            check=True,
        ).stdout,
        None,
    )
    who = profile.DoctorIdentity("5425740", "Anna", "Nowak")
    builder = profile.doctor_builder(
        who,
        doctor_key.public_key(),
        keys.issuing,
        serials.new_serial(1),
        NOW,
        profile.Profile(),
        profile.Urls(URL),  # type: ignore[arg-type]
    )
    doctor = issue(builder, keys.issuing_key, doctor=True)  # linted copy, token signature, TBS compared
    (tmp_path / "doctor.pem").write_bytes(doctor.public_bytes(serialization.Encoding.PEM))
    assert ": OK" in _openssl(
        "verify",
        "-CAfile",
        str(published / "root.pem"),
        "-untrusted",
        str(published / "issuing.pem"),
        str(tmp_path / "doctor.pem"),
    )

    entries = [crl.RevokedEntry(doctor.serial_number, NOW, "keyCompromise")]
    der = crl.build_crl(keys.issuing, keys.issuing_key, entries, number=3, now=NOW, validity=timedelta(hours=24))
    (tmp_path / "issuing.crl").write_bytes(der)
    out = _openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        str(tmp_path / "issuing.crl"),
        "-CAfile",
        str(published / "issuing.pem"),
        "-noout",
    )
    assert "verify OK" in out

    request = x509_ocsp.OCSPRequestBuilder().add_certificate(doctor, keys.issuing, hashes.SHA256()).build()
    response = ocsp.respond(
        request, keys, lambda _: ocsp.Status("revoked", doctor, NOW, "keyCompromise"), now=NOW + timedelta(seconds=1)
    )
    (tmp_path / "resp.der").write_bytes(response)
    (tmp_path / "chain.pem").write_bytes(
        (published / "issuing.pem").read_bytes() + (published / "root.pem").read_bytes()
    )
    out = _openssl(
        "ocsp",
        "-sha256",
        "-respin",
        str(tmp_path / "resp.der"),
        "-CAfile",
        str(tmp_path / "chain.pem"),
        "-issuer",
        str(published / "issuing.pem"),
        "-cert",
        str(tmp_path / "doctor.pem"),
    )
    assert "Response verify OK" in out and "revoked" in out


def test_the_receipt_seal_in_the_token_signs_xades(token_pki: tuple[Path, OnlineKeys]) -> None:
    _, keys = token_pki
    receipt = build_receipt(
        series="ZA", number=1, document_id=str(uuid.uuid4()), document_sha256="0" * 64, accepted_at=NOW, keys=keys
    )
    verified = verify_enveloped(receipt, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW)
    assert verified.signer == keys.service
    assert verified.existed_at == NOW  # XAdES-T: the TSA's key is in the token too
    assert etree.QName(verified.signed_root).localname == "Receipt"


def test_a_wrong_pin_is_refused_clearly(token_pki: tuple[Path, OnlineKeys]) -> None:
    pki_dir, _ = token_pki
    # A process of its own: PKCS#11 logs in once per process.
    code = (
        "from pathlib import Path\nfrom ezla.ca.keystore import OnlineKeys\n"
        f"OnlineKeys.load(Path({str(pki_dir)!r}), 'not-the-pin')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode != 0
    assert "PkiPassphraseWrong" in done.stderr and "refused the PIN" in done.stderr
    with pytest.raises(PkiPassphraseWrong):  # in this process: open already, with the right PIN
        OnlineKeys.load(pki_dir, "not-the-pin")


def test_a_failed_ceremony_leaves_neither_files_nor_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = new_token()
    real = ceremony.issue

    def lint_fails_at_the_tsa(builder: x509.CertificateBuilder, key: object, **kw: object) -> x509.Certificate:
        cn = builder._subject_name.rfc4514_string() if builder._subject_name else ""  # type: ignore[attr-defined]
        if "Time-Stamping" in cn:
            raise LintFailed("a lint that fails on purpose")
        return real(builder, key, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ceremony, "issue", lint_fails_at_the_tsa)
    with pytest.raises(LintFailed):
        ceremony.init_pki(tmp_path / "pki", PIN, URL, NOW, token=token)
    assert not (tmp_path / "pki" / "issued").exists()
    monkeypatch.setattr(ceremony, "issue", real)
    result = ceremony.init_pki(tmp_path / "pki", PIN, URL, NOW, token=token)  # the token is empty again
    assert result.created and OnlineKeys.load(tmp_path / "pki", PIN).in_token


def test_a_token_already_holding_ca_keys_is_not_reused(token_pki: tuple[Path, OnlineKeys], tmp_path: Path) -> None:
    pki_dir, _ = token_pki
    config = keystore.token_config(pki_dir)
    assert config is not None
    with pytest.raises(TokenKeyExists):
        ceremony.init_pki(tmp_path / "other", PIN, URL, NOW, token=config)
    assert OnlineKeys.load(pki_dir, PIN).in_token  # the first PKI's keys are untouched,
    root = keystore.load_key(pki_dir, "root", PIN)  # the root's too (the refused role's label)
    assert root.public_key() == keystore.load_cert(pki_dir, "root").public_key()
    pem_pki = tmp_path / "pem"
    ceremony.init_pki(pem_pki, "pw", URL, NOW)
    with pytest.raises(TokenKeyExists):  # a PEM PKI does not silently move into a token
        ceremony.init_pki(pem_pki, "pw", URL, NOW, token=config)


def test_pki_init_on_the_command_line_makes_the_keys_in_the_token(tmp_path: Path) -> None:
    token = new_token_for_a_child_process(f"cli-{os.getpid()}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EZLA_")},  # make test exports some
        "EZLA_PKI_DIR": str(tmp_path / "pki"),
        "EZLA_VAR_DIR": str(tmp_path / "var"),
        "EZLA_CA_KEY_PASSPHRASE": PIN,
        "EZLA_PUBLIC_URL": URL,
    }
    ezla = [str(Path(sys.executable).parent / "ezla")]
    done = subprocess.run(
        [*ezla, "pki", "init", "--pkcs11", token.module, "--token", token.label, "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert not list((tmp_path / "pki" / "keys").glob("*.pem"))
    assert not (tmp_path / "var" / "ca-passphrase").exists()  # a token's PIN is never made up
    done = subprocess.run(
        [*ezla, "pki", "init", "--json"],
        check=False,
        capture_output=True,
        text=True,
        env={**env, "EZLA_CA_KEY_PASSPHRASE": "wrong"},
    )
    assert done.returncode != 0 and "pki-passphrase-wrong" in done.stdout + done.stderr


def test_the_session_pki_is_in_the_token_exactly_in_the_token_phase(pki_dir: Path) -> None:
    from tests.conftest import PASSPHRASE

    assert OnlineKeys.load(pki_dir, PASSPHRASE).in_token == (os.environ.get("EZLA_TEST_PKCS11") == "1")


def test_a_rollover_makes_the_new_issuing_ca_in_the_token(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    ceremony.init_pki(pki_dir, PIN, URL, NOW - timedelta(days=1), token=new_token())
    done = ceremony.rollover(pki_dir, PIN, URL, NOW)
    keys = OnlineKeys.load(pki_dir, PIN)
    assert done.generation == 2 and [g.number for g in keys.generations] == [1, 2]
    assert keys.current.number == 2 and isinstance(keys.issuing_key, TokenEcKey)
    assert "CN=ezla Doctors CA 2" in keys.issuing.subject.rfc4514_string()
    assert not list((pki_dir / "keys").glob("*.pem"))  # the new CA's keys went into the token too
    keys.issuing.verify_directly_issued_by(keys.root)
    keys.ocsp.verify_directly_issued_by(keys.issuing)


def test_twin_processes_sign_with_the_same_token_at_once(token_pki: tuple[Path, OnlineKeys]) -> None:
    """The twins share the token: two processes, each with its own logged-in session, sign at once."""
    from ezla.xades.timestamps import verify_token

    pki_dir, keys = token_pki
    code = (
        "import sys\nfrom datetime import UTC, datetime\nfrom pathlib import Path\n"
        "from ezla.ca import evidence\nfrom ezla.ca.keystore import OnlineKeys\n"
        "keys = OnlineKeys.load(Path(sys.argv[1]), sys.argv[2])\n"
        "for _ in range(40):\n"
        "    print(evidence.stamper(keys, now=datetime.now(UTC))(bytes(32)).hex(), flush=True)\n"
    )
    twins = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(pki_dir), PIN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [twin.communicate(timeout=120) for twin in twins]
    for twin, (out, err) in zip(twins, outputs, strict=True):
        assert twin.returncode == 0, err
        tokens = [bytes.fromhex(line) for line in out.split()]
        assert len(tokens) == 40
        for token in tokens:
            stamp = verify_token(token, imprint=bytes(32), trust_roots=[keys.root], intermediates=[keys.issuing])
            assert stamp.tsa == keys.tsa


def test_a_lost_token_session_is_reopened_and_signing_goes_on(token_pki: tuple[Path, OnlineKeys]) -> None:
    from ezla.ca.token import open_token

    pki_dir, keys = token_pki
    config = keystore.token_config(pki_dir)
    assert config is not None
    opened = open_token(config, PIN)
    with opened.lock:
        opened._session.close()  # as after an HSM restart: every handle of that session is dead
    receipt = build_receipt(
        series="ZA", number=2, document_id=str(uuid.uuid4()), document_sha256="1" * 64, accepted_at=NOW, keys=keys
    )
    assert (
        verify_enveloped(receipt, trust_roots=[keys.root], intermediates=[keys.issuing], at=NOW).signer == keys.service
    )

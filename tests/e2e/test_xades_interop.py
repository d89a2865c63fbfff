"""XAdES interoperability: xadesjs-signed documents pass ezla's verifier, and ezla's signatures pass
xmlsec1 and xadesjs. Needs node, npm and xmlsec1; their absence is a failure, not a skip."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from ezla import errors
from ezla.xades import NS, sign_enveloped, verify_enveloped
from tests.e2e.tools import run, xadesjs_sign, xadesjs_verify

DOC_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
EZLA = "urn:ezla:sick-leave:1"
NOW = datetime.now(UTC)
DOC = f"""<?xml version="1.0" encoding="UTF-8"?>
<SickLeave xmlns="{EZLA}" DocumentId="5d0f4a3e-1c2b-4f7a-9e8d-0123456789ab">
  <IssueDate>2025-03-01</IssueDate>
  <Doctor><Npwz>1234567</Npwz><GivenName>Zofia</GivenName><FamilyName>Żółć</FamilyName></Doctor>
  <Diagnosis><Icd10>J10</Icd10></Diagnosis>
</SickLeave>
""".encode()


# --- a throwaway PKI in ezla's shape (EC P-384 CAs, nonRepudiation-only leaves with documentSigning) ----
def _cert(key, cn: str, issuer_key=None, issuer: x509.Certificate | None = None, *, ca: bool = False):
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca and issuer else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        b = b.add_extension(aki, critical=False)
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([DOC_SIGNING]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA384())


@dataclass(frozen=True)
class Party:
    kind: str  # "rsa" | "ec"
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    key_pem: Path
    cert_pem: Path
    chain_pem: Path  # leaf + intermediate


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    inter: x509.Certificate
    root_pem: Path
    inter_pem: Path
    parties: dict[str, Party]

    def verify(self, data: bytes):
        return verify_enveloped(
            data,
            trust_roots=[self.root],
            intermediates=[self.inter],
            at=datetime.now(UTC),
            require_eku=DOC_SIGNING,
        )


def _pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _cert(root_key, "Interop Root CA", ca=True)
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = _cert(inter_key, "Interop Issuing CA", root_key, root, ca=True)
    parties = {}
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }
    for kind, key in keys.items():
        cert = _cert(key, f"lek. Zofia Żółć {kind}", inter_key, inter)
        key_pem = d / f"{kind}.key.pem"
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        parties[kind] = Party(
            kind, key, cert, key_pem, _pem(d / f"{kind}.crt.pem", cert), _pem(d / f"{kind}.chain.pem", cert, inter)
        )
    return Pki(root, inter, _pem(d / "root.pem", root), _pem(d / "inter.pem", inter), parties)


def _doctor(result) -> str:
    return result.signed_root.findtext("e:Doctor/e:FamilyName", namespaces={"e": EZLA})


def _tamper(data: bytes) -> bytes:
    assert b"1234567" in data
    return data.replace(b"1234567", b"7654321")


# --- (a) xadesjs signs, ezla verifies ---------------------------------------------------------------
def sign_with_xadesjs(node_js: str, party: Party, tmp_path: Path, *, c14n: str, with_chain: bool) -> bytes:
    src = tmp_path / "doc.xml"
    src.write_bytes(DOC)
    certs = party.chain_pem if with_chain else party.cert_pem
    return xadesjs_sign(node_js, src, party.key_pem, certs, party.kind, c14n)


@pytest.mark.parametrize("with_chain", [False, True], ids=["leaf-only", "with-chain"])
@pytest.mark.parametrize("c14n", ["exc-c14n", "c14n"])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_xadesjs_signature_is_accepted(
    node_js: str, pki: Pki, tmp_path: Path, kind: str, c14n: str, with_chain: bool
) -> None:
    party = pki.parties[kind]
    data = sign_with_xadesjs(node_js, party, tmp_path, c14n=c14n, with_chain=with_chain)
    sig = etree.fromstring(data)[-1]
    assert len(sig.findall("ds:SignedInfo/ds:Reference", NS)) == 2  # data + SignedProperties, no KeyInfo ref
    result = pki.verify(data)
    assert result.signer == party.cert
    assert _doctor(result) == "Żółć"
    assert result.signing_time is not None
    assert abs(result.signing_time - datetime.now(UTC)) < timedelta(minutes=5)
    with pytest.raises(errors.SignatureInvalid) as caught:
        pki.verify(_tamper(data))
    assert type(caught.value) is errors.SignatureInvalid


def test_xadesjs_signature_by_untrusted_key_is_refused(node_js: str, pki: Pki, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(key, "lek. Zofia Żółć ec")  # self-signed look-alike
    key_pem = tmp_path / "k.pem"
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_pem = _pem(tmp_path / "c.pem", cert)
    data = sign_with_xadesjs(
        node_js, Party("ec", key, cert, key_pem, cert_pem, cert_pem), tmp_path, c14n="exc-c14n", with_chain=False
    )
    with pytest.raises(errors.CertificateUntrusted):
        pki.verify(data)


# --- (b) ezla signs, xmlsec1 and xadesjs verify -----------------------------------------------------
def xmlsec1_verify(xmlsec1: str, pki: Pki, path: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [
            xmlsec1,
            "--verify",
            # XAdES Ids live in ds:/xades: elements; xmlsec1 only resolves attributes it was told are IDs.
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--id-attr:Id",
            "http://www.w3.org/2000/09/xmldsig#:KeyInfo",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--enabled-key-data",
            "x509",  # the key must come from a certificate that chains to the root
            "--trusted-pem",
            str(pki.root_pem),
            "--untrusted-pem",
            str(pki.inter_pem),
            str(path),
        ],
        timeout=30,
    )


@pytest.mark.parametrize("with_chain", [False, True], ids=["leaf-only", "with-chain"])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_our_signature_verifies_in_xmlsec1_and_xadesjs(
    node_js: str, xmlsec1: str, pki: Pki, tmp_path: Path, kind: str, with_chain: bool
) -> None:
    party = pki.parties[kind]
    data = sign_enveloped(DOC, party.key, party.cert, [pki.inter] if with_chain else [])
    assert pki.verify(data).signer == party.cert
    good, bad = tmp_path / "signed.xml", tmp_path / "tampered.xml"
    good.write_bytes(data)
    bad.write_bytes(_tamper(data))

    done = xmlsec1_verify(xmlsec1, pki, good)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SignedInfo References (ok/all): 3/3" in done.stdout + done.stderr
    assert xmlsec1_verify(xmlsec1, pki, bad).returncode != 0  # the harness does notice a bad signature

    done = xadesjs_verify(node_js, good, party.cert_pem)
    assert (done.returncode, done.stdout.strip()) == (0, "valid"), done.stdout + done.stderr
    assert xadesjs_verify(node_js, bad, party.cert_pem).returncode != 0
    if not with_chain:
        # Without a key xadesjs tries every KeyInfo certificate and chokes on one of another key type
        # (e.g. an RSA leaf with an EC intermediate), so this mode is only checked for leaf-only KeyInfo.
        done = xadesjs_verify(node_js, good, None)
        assert (done.returncode, done.stdout.strip()) == (0, "valid"), done.stdout + done.stderr


def test_xmlsec1_refuses_our_signature_without_trusted_root(xmlsec1: str, pki: Pki, tmp_path: Path) -> None:
    party = pki.parties["ec"]
    path = tmp_path / "signed.xml"
    path.write_bytes(sign_enveloped(DOC, party.key, party.cert, [pki.inter]))
    other = ec.generate_private_key(ec.SECP384R1())
    stranger = _pem(tmp_path / "stranger.pem", _cert(other, "Stranger Root", ca=True))
    done = run(
        [
            xmlsec1,
            "--verify",
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--id-attr:Id",
            "http://www.w3.org/2000/09/xmldsig#:KeyInfo",
            "--enabled-key-data",
            "x509",
            "--trusted-pem",
            str(stranger),
            str(path),
        ],
        timeout=30,
    )
    assert done.returncode != 0, done.stdout + done.stderr

"""ezla.xades: XAdES-BES round trips and an attack corpus, each refused with its own error code."""

from __future__ import annotations

import copy
import hashlib
from base64 import b64encode
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner

from ezla import errors
from ezla.xades import (
    MAX_DEPTH,
    MAX_XML_BYTES,
    NS,
    Revocation,
    VerifiedSignature,
    parse_xml,
    sign_enveloped,
    signed_document_digest,
    verify_enveloped,
)
from ezla.xades.signer import Signer as _Signer
from ezla.xades.unsigned import TimestampTrust
from tests.pki import certificate, key_usage, name

DOC_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
NOW = datetime.now(UTC).replace(microsecond=0)
DS = NS["ds"]
XADES_NS = NS["xades"]
EZLA = "urn:ezla:sick-leave:1"
DOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<SickLeave xmlns="urn:ezla:sick-leave:1" DocumentId="5d0f4a3e-1c2b-4f7a-9e8d-0123456789ab">
  <IssueDate>2025-03-01</IssueDate>
  <Doctor><Npwz>1234567</Npwz><GivenName>Anna</GivenName><FamilyName>Nowak</FamilyName></Doctor>
  <Diagnosis><Icd10>J10</Icd10></Diagnosis>
</SickLeave>
"""


# --- a throwaway PKI (tests/pki.py makes every test certificate) --------------------------------
_ku = key_usage


def make_cert(*args: Any, **kwargs: Any) -> x509.Certificate:
    return certificate(*args, now=NOW, **kwargs)


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    inter: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    rsa_key: rsa.RSAPrivateKey
    rsa_leaf: x509.Certificate
    ec_key: ec.EllipticCurvePrivateKey
    ec_leaf: x509.Certificate

    def verify(self, data: bytes, **kw) -> VerifiedSignature:
        kw.setdefault("trust_roots", [self.root])
        kw.setdefault("intermediates", [self.inter])
        kw.setdefault("at", NOW)
        kw.setdefault("require_eku", DOC_SIGNING)
        return verify_enveloped(data, **kw)

    def refused(self, data: bytes, error: type[errors.EzlaError], **kw) -> errors.EzlaError:
        with pytest.raises(errors.EzlaError) as caught:
            self.verify(data, **kw)
        assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value.detail}"
        return caught.value


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = make_cert(root_key, "Test Root CA", ca=True, days=(-10, 3650))
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = make_cert(inter_key, "Test Issuing CA", root_key, root, ca=True, days=(-5, 1000))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return Pki(
        root=root,
        inter=inter,
        inter_key=inter_key,
        rsa_key=rsa_key,
        rsa_leaf=make_cert(rsa_key, "lek. Anna Nowak RSA", inter_key, inter),
        ec_key=ec_key,
        ec_leaf=make_cert(ec_key, "lek. Anna Nowak EC", inter_key, inter),
    )


@pytest.fixture(autouse=True)
def _now() -> None:
    """NOW is each test's own "now": signers that stamp the real time (stock signxml, the
    SigningTime default) and the verification time stay within the 5 minutes of allowed skew even
    when this module runs late in a long session."""
    global NOW  # noqa: PLW0603 - read by the helpers and tests of this module at call time
    NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def signed(pki: Pki, _now: None) -> bytes:
    return sign_enveloped(DOC, pki.rsa_key, pki.rsa_leaf, [pki.inter], signing_time=NOW)


def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _ser(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _sig(root: etree._Element) -> etree._Element:
    return root.find(f"{{{DS}}}Signature")


class _Sha1Signer(_Signer):
    def check_deprecated_methods(self) -> None:  # signxml refuses to *make* SHA-1 signatures; we need one
        pass


def _signxml(pki: Pki, root, signer_cls=_Signer, *, key=None, cert=None, chain=None, uri=None, **kw) -> bytes:
    opts = {
        "signature_algorithm": SignatureMethod.RSA_SHA256,
        "digest_algorithm": DigestAlgorithm.SHA256,
        "c14n_algorithm": CanonicalizationMethod.CANONICAL_XML_1_0,
    } | kw
    signer = signer_cls(NOW, **opts) if issubclass(signer_cls, _Signer) else signer_cls(**opts)
    certs = [cert or pki.rsa_leaf, *(chain if chain is not None else [pki.inter])]
    out = signer.sign(root, key=key or pki.rsa_key, cert=certs, always_add_key_value=False, reference_uri=uri)
    return _ser(out)


# --- parse_xml -----------------------------------------------------------------------------------
def test_parse_xml_accepts_plain_document() -> None:
    root = parse_xml(DOC)
    assert etree.QName(root).localname == "SickLeave"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
            errors.XmlForbiddenConstruct,
        ),
        (
            b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
            b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><r>&d;</r>',
            errors.XmlForbiddenConstruct,
        ),
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>'.encode("utf-16"),
            errors.XmlForbiddenConstruct,
        ),
        (b"<!DOCTYPE r><r/>", errors.XmlForbiddenConstruct),
        (b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd"/></r>', None),
        (b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><r/>', errors.XmlForbiddenConstruct),
        (b"<r><?php echo 1; ?></r>", errors.XmlForbiddenConstruct),
        (b"<r/><?trailing pi?>", errors.XmlForbiddenConstruct),
        (b"<r><a></r>", errors.XmlMalformed),
        (b"<r>&undefined;</r>", errors.XmlMalformed),
        (b"", errors.XmlMalformed),
        (b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1), errors.XmlTooDeep),
        (b"<a>" * 100_000 + b"</a>" * 100_000, errors.XmlTooDeep),
        (b"<r>" + b"<a/>" * 100_000 + b"</r>", errors.XmlTooManyElements),
        (b"<a>" * 300 + b"</a>" * 300, errors.XmlTooDeep),  # past libxml2's own limit (256)
        (b"<r><!-- a note nobody signed --></r>", errors.XmlForbiddenConstruct),
        (b"<!-- prolog --><r/>", errors.XmlForbiddenConstruct),
        ("<r/>".encode("utf-16"), errors.XmlMalformed),  # only ASCII-compatible encodings: the limits read bytes
        (b"<r>" + b" " * MAX_XML_BYTES + b"</r>", errors.PayloadTooLarge),
    ],
    ids=[
        "xxe",
        "billion-laughs",
        "utf16-dtd",
        "doctype",
        "xinclude-inert",
        "pi-prolog",
        "pi-body",
        "pi-epilog",
        "malformed",
        "undefined-entity",
        "empty",
        "too-deep",
        "depth-bomb",
        "width-bomb",
        "depth-past-libxml2",
        "comment",
        "comment-prolog",
        "utf16",
        "oversized",
    ],
)
def test_parse_xml_refuses(data: bytes, error: type[errors.EzlaError] | None) -> None:
    if error is None:  # XInclude is never processed: the element stays an inert element
        assert parse_xml(data)[0].tag == "{http://www.w3.org/2001/XInclude}include"
        return
    with pytest.raises(errors.EzlaError) as caught:
        parse_xml(data)
    assert type(caught.value) is error


def test_parse_xml_depth_limit_is_inclusive() -> None:
    assert parse_xml(b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH) is not None


def test_signed_document_digest_is_sha256_of_raw_bytes() -> None:
    assert signed_document_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert signed_document_digest(b"abc").startswith("ba7816bf8f01cfea")


# --- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_round_trip(pki: Pki, kind: str) -> None:
    key, cert = (pki.rsa_key, pki.rsa_leaf) if kind == "rsa" else (pki.ec_key, pki.ec_leaf)
    when = NOW - timedelta(hours=1)
    data = sign_enveloped(DOC, key, cert, [pki.inter], signing_time=when)
    result = pki.verify(data, at=when + timedelta(minutes=1))
    assert result.signer == cert
    assert result.signing_time == when
    assert result.signed_root.find(f"{{{DS}}}Signature") is None
    assert result.signed_root.findtext("e:Doctor/e:Npwz", namespaces={"e": EZLA}) == "1234567"
    sig = _tree(data)[-1]
    assert sig.tag == f"{{{DS}}}Signature"
    method = sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    assert method.endswith("rsa-sha256" if kind == "rsa" else "ecdsa-sha256")
    assert {e.get("Algorithm") for e in sig.iter(f"{{{DS}}}CanonicalizationMethod")} == {
        CanonicalizationMethod.CANONICAL_XML_1_0.value
    }
    assert sig.find(".//xades:SignedSignatureProperties/xades:SigningCertificateV2", NS) is not None
    assert sig.find("ds:KeyInfo/ds:KeyValue", NS) is None  # the certificate is the only key statement


def test_sign_accepts_element_and_root_with_id_still_references_whole_document(pki: Pki) -> None:
    root = etree.fromstring(b'<Receipt xmlns="urn:ezla:sick-leave:1" Id="r1"><Number>7</Number></Receipt>')
    data = sign_enveloped(root, pki.ec_key, pki.ec_leaf)
    refs = _sig(_tree(data)).findall("ds:SignedInfo/ds:Reference", NS)
    assert refs[0].get("URI") == ""
    assert pki.verify(data).signed_root.get("Id") == "r1"


def test_paths_are_built_from_configured_intermediates_only(pki: Pki) -> None:
    data = sign_enveloped(DOC, pki.ec_key, pki.ec_leaf)  # KeyInfo carries only the leaf
    assert pki.verify(data).signer == pki.ec_leaf
    pki.refused(data, errors.CertificateUntrusted, intermediates=[])
    # CAs in KeyInfo are the sender's choice (and crafted ones make path building a CPU sink): ignored.
    with_chain = sign_enveloped(DOC, pki.ec_key, pki.ec_leaf, [pki.inter])
    pki.refused(with_chain, errors.CertificateUntrusted, intermediates=[])


def test_comment_inside_signed_document_is_refused(pki: Pki, signed: bytes) -> None:
    # Comments are outside every c14n we accept: a comment would be stored although nobody signed it.
    root = _tree(signed)
    root.insert(0, etree.Comment(" unsigned comment "))
    pki.refused(_ser(root), errors.XmlForbiddenConstruct)


def test_signed_root_is_exactly_the_digested_content(pki: Pki, signed: bytes) -> None:
    result = pki.verify(signed)
    original = _tree(signed)
    original.remove(_sig(original))
    assert etree.tostring(result.signed_root, method="c14n") == etree.tostring(original, method="c14n")


def test_accepts_plain_signxml_xades_output(pki: Pki) -> None:
    # Stock signxml: c14n 1.1, KeyValue next to X509Data, SigningCertificateV2 for every chain cert.
    out = XAdESSigner().sign(etree.fromstring(DOC), key=pki.rsa_key, cert=[pki.rsa_leaf, pki.inter])
    assert len(out.findall(".//ds:SignedInfo/ds:Reference", NS)) == 3
    assert pki.verify(_ser(out)).signer == pki.rsa_leaf


def test_sign_refuses_weak_or_foreign_key(pki: Pki) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(errors.KeyTooWeak):
        sign_enveloped(DOC, weak, make_cert(weak, "weak", pki.inter_key, pki.inter))
    with pytest.raises(errors.EzlaError):
        sign_enveloped(DOC, pki.ec_key, pki.rsa_leaf)


# --- attack corpus: document and signature structure ---------------------------------------------
def test_unsigned_document(pki: Pki) -> None:
    pki.refused(DOC, errors.SignatureMissing)


def test_tampered_text(pki: Pki, signed: bytes) -> None:
    pki.refused(signed.replace(b"<Npwz>1234567<", b"<Npwz>7654321<"), errors.SignatureInvalid)
    pki.refused(signed.replace(b"J10", b"Z99"), errors.SignatureInvalid)


def test_tampered_signed_properties(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root.find(".//xades:SigningTime", NS).text = "2020-01-01T00:00:00Z"
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_moved_content(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root.insert(0, root[1])  # Doctor before IssueDate
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_duplicated_content(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root.insert(1, copy.deepcopy(root[1]))
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_unsigned_root_level_element_after_signature(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    etree.SubElement(root, "{urn:ezla:sick-leave:1}Diagnosis").text = "Z99"
    pki.refused(_ser(root), errors.SignatureScope)


def test_unsigned_root_level_element_before_signature(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    _sig(root).addprevious(etree.Element("{urn:ezla:sick-leave:1}Extra"))
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_wrapped_in_new_root(pki: Pki, signed: bytes) -> None:
    wrapper = etree.Element("{urn:ezla:sick-leave:1}SickLeave")
    wrapper.append(_tree(signed))
    pki.refused(_ser(wrapper), errors.SignatureScope)


def test_original_hidden_in_signature_object(pki: Pki, signed: bytes) -> None:
    # Classic wrapping: forged root content, the genuine document stashed inside ds:Object.
    root = _tree(signed)
    original = copy.deepcopy(root)
    original.remove(_sig(original))
    obj = etree.SubElement(_sig(root), f"{{{DS}}}Object")
    obj.append(original)
    root.find("{urn:ezla:sick-leave:1}Diagnosis/{urn:ezla:sick-leave:1}Icd10").text = "Z99"
    pki.refused(_ser(root), errors.SignatureScope)  # refused for its shape before any digest is computed


def test_forged_document_with_reference_into_wrapped_original(pki: Pki) -> None:
    root = etree.fromstring(DOC)
    root.set("Id", "doc")
    inner = etree.fromstring(_signxml(pki, root, XAdESSigner))  # stock signxml references "#doc"
    pki.refused(_ser(inner), errors.SignatureScope)  # a Reference to an Id, not ""
    forged = etree.Element("{urn:ezla:sick-leave:1}SickLeave")
    etree.SubElement(forged, "{urn:ezla:sick-leave:1}Diagnosis").text = "Z99"
    sig = _sig(inner)
    holder = etree.SubElement(forged, "{urn:ezla:sick-leave:1}Attachment")
    holder.append(inner)  # the genuinely signed element, now nested
    forged.append(copy.deepcopy(sig))
    pki.refused(_ser(forged), errors.SignatureScope)


def test_reference_to_id_elsewhere(pki: Pki) -> None:
    root = etree.fromstring(
        b'<SickLeave xmlns="urn:ezla:sick-leave:1"><Part Id="p"><Icd10>J10</Icd10></Part><Icd10>Z99</Icd10></SickLeave>'
    )
    data = _signxml(pki, root, XAdESSigner, uri="#p")
    pki.refused(data, errors.SignatureScope)


def test_extra_reference_to_document_element(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root[0].set("Id", "d1")
    signed_info = _sig(root).find("ds:SignedInfo", NS)
    signed_info.remove(signed_info.findall("ds:Reference", NS)[-1])  # the KeyInfo reference makes room
    ref = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI="#d1")
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=DigestAlgorithm.SHA256.value)
    etree.SubElement(ref, f"{{{DS}}}DigestValue").text = "AAAA"
    pki.refused(_ser(root), errors.SignatureScope)


def test_xpath_transform_on_data_reference(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    transforms = _sig(root).find("ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    xf = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(xf, f"{{{DS}}}XPath").text = "ancestor-or-self::*[local-name()='Doctor']"
    pki.refused(_ser(root), errors.SignatureScope)


def test_signature_not_last_child(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root.insert(0, _sig(root))
    pki.refused(_ser(root), errors.SignatureScope)


def test_signature_nested_deeper(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    root[1].append(_sig(root))
    pki.refused(_ser(root), errors.SignatureScope)


def test_two_signatures(pki: Pki, signed: bytes) -> None:
    twice = sign_enveloped(signed, pki.ec_key, pki.ec_leaf, [pki.inter])
    pki.refused(twice, errors.SignatureScope)


def test_doctype_on_signed_document(pki: Pki, signed: bytes) -> None:
    head, _, body = signed.partition(b"?>")
    pki.refused(head + b'?><!DOCTYPE SickLeave [<!ENTITY x "y">]>' + body, errors.XmlForbiddenConstruct)


def test_oversized_signed_document(pki: Pki, signed: bytes) -> None:
    padded = signed.replace(b"<IssueDate>", b"<!--" + b"x" * MAX_XML_BYTES + b"--><IssueDate>")
    pki.refused(padded, errors.PayloadTooLarge)


def test_deeply_nested_signed_document(pki: Pki) -> None:
    root = etree.fromstring(DOC)
    el = root
    for _ in range(MAX_DEPTH + 2):
        el = etree.SubElement(el, "{urn:ezla:sick-leave:1}Nest")
    data = sign_enveloped(root, pki.rsa_key, pki.rsa_leaf, [pki.inter])  # an element skips parse_xml
    pki.refused(data, errors.XmlTooDeep)


# --- attack corpus: algorithms and keys ------------------------------------------------------------
def test_sha1_signature(pki: Pki) -> None:
    data = _signxml(
        pki,
        etree.fromstring(DOC),
        _Sha1Signer,
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
    )
    pki.refused(data, errors.SignatureAlgorithmWeak)


def test_sha1_digest_under_sha256_signature(pki: Pki) -> None:
    data = _signxml(pki, etree.fromstring(DOC), _Sha1Signer, digest_algorithm=DigestAlgorithm.SHA1)
    pki.refused(data, errors.SignatureAlgorithmWeak)


def test_md5_digest_spelled_in(pki: Pki, signed: bytes) -> None:
    md5 = b"http://www.w3.org/2001/04/xmldsig-more#md5"
    data = signed.replace(DigestAlgorithm.SHA256.value.encode(), md5, 1)
    pki.refused(data, errors.SignatureAlgorithmWeak)


def _v1_signer(digest: DigestAlgorithm, serial: int | None = None) -> type[_Signer]:
    """Legacy xades:SigningCertificate (v1: CertDigest + IssuerSerial), written by hand."""
    impl = {DigestAlgorithm.SHA1: hashes.SHA1(), DigestAlgorithm.SHA256: hashes.SHA256()}[digest]

    class V1(_Signer):
        def add_signing_certificate(self, ssp, sig_root, signing_settings):
            cert = signing_settings.cert_chain[0]
            xades = NS["xades"]
            node = etree.SubElement(ssp, f"{{{xades}}}SigningCertificate")
            c = etree.SubElement(node, f"{{{xades}}}Cert")
            cd = etree.SubElement(c, f"{{{xades}}}CertDigest")
            etree.SubElement(cd, f"{{{DS}}}DigestMethod", Algorithm=digest.value)
            etree.SubElement(cd, f"{{{DS}}}DigestValue").text = b64encode(cert.fingerprint(impl)).decode()
            iss = etree.SubElement(c, f"{{{xades}}}IssuerSerial")
            etree.SubElement(iss, f"{{{DS}}}X509IssuerName").text = cert.issuer.rfc4514_string()
            etree.SubElement(iss, f"{{{DS}}}X509SerialNumber").text = str(serial or cert.serial_number)

    return V1


def test_legacy_signing_certificate_v1(pki: Pki) -> None:
    ok = _signxml(pki, etree.fromstring(DOC), _v1_signer(DigestAlgorithm.SHA256))
    assert pki.verify(ok).signer == pki.rsa_leaf  # v1 is fine with a SHA-256 digest
    sha1 = _signxml(pki, etree.fromstring(DOC), _v1_signer(DigestAlgorithm.SHA1))
    pki.refused(sha1, errors.SignatureAlgorithmWeak)
    other_serial = _signxml(pki, etree.fromstring(DOC), _v1_signer(DigestAlgorithm.SHA256, serial=12345))
    pki.refused(other_serial, errors.SigningCertificateMismatch)


def test_weak_rsa_1024_signer(pki: Pki) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = make_cert(weak, "weak", pki.inter_key, pki.inter)
    pki.refused(_signxml(pki, etree.fromstring(DOC), key=weak, cert=cert), errors.SignatureAlgorithmWeak)


def test_weak_curve_signer(pki: Pki) -> None:
    weak = ec.generate_private_key(ec.SECP224R1())
    cert = make_cert(weak, "weak ec", pki.inter_key, pki.inter)
    data = _signxml(pki, etree.fromstring(DOC), key=weak, cert=cert, signature_algorithm=SignatureMethod.ECDSA_SHA256)
    pki.refused(data, errors.SignatureAlgorithmWeak)


# --- attack corpus: certificates -------------------------------------------------------------------
def test_self_signed_certificate(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "lek. Anna Nowak EC")  # same name, own key, no issuer
    pki.refused(sign_enveloped(DOC, key, cert), errors.CertificateUntrusted)


def test_certificate_from_foreign_ca(pki: Pki) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert(root_key, "Test Root CA", ca=True)  # same name as ours, different key
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_cert(inter_key, "Test Issuing CA", root_key, root, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert(key, "lek. Anna Nowak EC", inter_key, inter)
    pki.refused(sign_enveloped(DOC, key, leaf, [inter, root]), errors.CertificateUntrusted)


def test_ca_certificate_as_signer(pki: Pki) -> None:
    data = sign_enveloped(DOC, pki.inter_key, pki.inter)
    pki.refused(data, errors.CertificateUntrusted, require_eku=None)


def test_expired_certificate(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = make_cert(key, "expired", pki.inter_key, pki.inter, days=(-3, -1))
    pki.refused(sign_enveloped(DOC, key, old, [pki.inter]), errors.CertificateExpired)


def test_expired_at_verification_time(pki: Pki, signed: bytes) -> None:
    pki.refused(signed, errors.CertificateExpired, at=NOW + timedelta(days=400))


def test_received_after_expiry_but_signed_before_within_the_delay(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "expires soon", pki.inter_key, pki.inter, days=(-10, -1))
    data = sign_enveloped(DOC, key, cert, [pki.inter], signing_time=NOW - timedelta(days=2))
    result = pki.verify(data)  # received now, a day after expiry, signed the day before it
    assert result.report.notes == ("signed-before-expiry",)
    pki.refused(data, errors.CertificateExpired, at=NOW + timedelta(days=3))  # past the submission delay


def test_signing_time_in_the_future(pki: Pki, signed: bytes) -> None:
    err = pki.refused(signed, errors.SigningTimeInFuture, at=NOW - timedelta(minutes=6))
    assert err.extra["report"]["indication"] == "INDETERMINATE"
    assert pki.verify(signed, at=NOW - timedelta(minutes=4)).signer == pki.rsa_leaf  # clock skew


def test_signing_time_before_the_certificate(pki: Pki) -> None:
    data = sign_enveloped(DOC, pki.ec_key, pki.ec_leaf, [pki.inter], signing_time=NOW - timedelta(days=2))
    err = pki.refused(data, errors.SigningTimeBeforeCertificate)
    assert err.extra["report"]["sub_indication"] == "NOT_YET_VALID"


def test_signing_time_older_than_the_submission_delay(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "long valid", pki.inter_key, pki.inter, days=(-30, 300))
    data = sign_enveloped(DOC, key, cert, [pki.inter], signing_time=NOW - timedelta(days=5))
    pki.refused(data, errors.SigningTimeTooOld)


def test_signing_time_missing(pki: Pki) -> None:
    class NoTime(_Signer):
        def add_signing_time(self, ssp, sig_root, signing_settings):
            pass

    pki.refused(_signxml(pki, etree.fromstring(DOC), NoTime), errors.SigningTimeMissing)


def test_not_yet_valid_certificate_within_clock_skew(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "fresh", pki.inter_key, pki.inter, days=(0, 30))  # valid from NOW
    data = sign_enveloped(DOC, key, cert, [pki.inter], signing_time=NOW + timedelta(minutes=2))
    pki.refused(data, errors.CertificateNotYetValid, at=NOW - timedelta(minutes=1))


def _revoked(pki: Pki, reason: str, at: datetime):
    seen: list[int] = []

    def lookup(cert: x509.Certificate) -> Revocation | None:
        seen.append(cert.serial_number)
        return Revocation(at, reason) if cert.serial_number == pki.rsa_leaf.serial_number else None

    return lookup, seen


def test_revoked_certificate(pki: Pki, signed: bytes) -> None:
    lookup, seen = _revoked(pki, "keyCompromise", NOW - timedelta(hours=1))
    err = pki.refused(signed, errors.CertificateRevoked, revocation_of=lookup)
    assert seen == [pki.rsa_leaf.serial_number]
    assert err.extra["report"]["sub_indication"] == "REVOKED"  # signed after the revocation
    assert pki.verify(signed, revocation_of=lambda cert: None).signer == pki.rsa_leaf


@pytest.mark.parametrize("reason", ["keyCompromise", "unspecified", "privilegeWithdrawn"])
def test_compromise_refuses_everything_received_after_whatever_the_signing_time(pki: Pki, reason: str) -> None:
    data = sign_enveloped(DOC, pki.rsa_key, pki.rsa_leaf, [pki.inter], signing_time=NOW - timedelta(hours=2))
    lookup, _ = _revoked(pki, reason, NOW - timedelta(hours=1))
    err = pki.refused(data, errors.CertificateRevoked, revocation_of=lookup)
    assert err.extra["report"]["sub_indication"] == "REVOKED_NO_POE"
    assert pki.verify(data, revocation_of=lookup, at=NOW - timedelta(hours=1, minutes=1)).signer == pki.rsa_leaf


@pytest.mark.parametrize("reason", ["superseded", "affiliationChanged", "cessationOfOperation"])
def test_benign_revocation_keeps_what_was_signed_before(pki: Pki, reason: str) -> None:
    data = sign_enveloped(DOC, pki.rsa_key, pki.rsa_leaf, [pki.inter], signing_time=NOW - timedelta(hours=2))
    lookup, _ = _revoked(pki, reason, NOW - timedelta(hours=1))
    result = pki.verify(data, revocation_of=lookup)
    assert result.report.notes == ("signed-before-revocation",)
    after = sign_enveloped(DOC, pki.rsa_key, pki.rsa_leaf, [pki.inter], signing_time=NOW - timedelta(minutes=30))
    pki.refused(after, errors.CertificateRevoked, revocation_of=lookup)


def test_missing_document_signing_eku(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "no eku", pki.inter_key, pki.inter, eku=False)
    data = sign_enveloped(DOC, key, cert, [pki.inter])
    pki.refused(data, errors.CertificateNotForSigning)
    assert pki.verify(data, require_eku=None).signer == cert


def test_key_usage_without_signing_bits(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "ke only", pki.inter_key, pki.inter, ku=_ku(key_agreement=True))
    pki.refused(sign_enveloped(DOC, key, cert, [pki.inter]), errors.CertificateNotForSigning)


def test_signing_certificate_v2_digest_of_another_cert(pki: Pki) -> None:
    class Liar(_Signer):
        def add_signing_certificate(self, ssp, sig_root, signing_settings):
            other = type(signing_settings)(**{**vars(signing_settings), "cert_chain": [pki.ec_leaf]})
            super().add_signing_certificate(ssp, sig_root, other)

    pki.refused(_signxml(pki, etree.fromstring(DOC), Liar), errors.SigningCertificateMismatch)


def test_signing_certificate_absent(pki: Pki) -> None:
    class Silent(_Signer):
        def add_signing_certificate(self, ssp, sig_root, signing_settings):
            pass

    pki.refused(_signxml(pki, etree.fromstring(DOC), Silent), errors.SigningCertificateMismatch)


def test_keyinfo_certificate_swapped_for_another_trusted_one(pki: Pki, signed: bytes) -> None:
    # The signer listed in KeyInfo is only a claim: another valid doctor's certificate does not verify.
    root = _tree(signed)
    el = _sig(root).find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    el.text = b64encode(pki.ec_leaf.public_bytes(Encoding.DER)).decode()
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_corrupted_keyinfo_certificate(pki: Pki, signed: bytes) -> None:
    # Flipping a byte inside the SPKI used to escape as a bare ValueError from cryptography's lazy parsing.
    root = _tree(signed)
    el = _sig(root).find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    der = bytearray(pki.rsa_leaf.public_bytes(Encoding.DER))
    spki_format = serialization.PublicFormat.SubjectPublicKeyInfo
    spki = pki.rsa_leaf.public_key().public_bytes(Encoding.DER, spki_format)
    der[der.index(spki) + 10] ^= 0x01  # inside the rsaEncryption OID: loads, fails on public_key()
    el.text = b64encode(bytes(der)).decode()
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_reference_and_certificate_counts_are_bounded(pki: Pki, signed: bytes) -> None:
    root = _tree(signed)
    si = _sig(root).find("ds:SignedInfo", NS)
    keyinfo_ref = si.findall("ds:Reference", NS)[-1]
    for _ in range(50):  # signxml would re-serialise the whole document for each of them
        si.append(copy.deepcopy(keyinfo_ref))
    pki.refused(_ser(root), errors.SignatureTooManyReferences)
    root = _tree(signed)
    x509_data = _sig(root).find("ds:KeyInfo/ds:X509Data", NS)
    for _ in range(20):
        x509_data.append(copy.deepcopy(x509_data[-1]))
    pki.refused(_ser(root), errors.SignatureInvalid)


def test_no_trust_roots(pki: Pki, signed: bytes) -> None:
    pki.refused(signed, errors.CertificateUntrusted, trust_roots=[])


# --- property: no mutation changes what is reported as signed --------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_mutations_never_change_signed_content(pki: Pki, signed: bytes, data: st.DataObject) -> None:
    baseline = etree.tostring(pki.verify(signed).signed_root, method="c14n")
    pos = data.draw(st.integers(0, len(signed) - 1))
    byte = data.draw(st.integers(0, 255))
    mutated = signed[:pos] + bytes([byte]) + signed[pos + 1 :]
    try:
        result = pki.verify(mutated)
    except errors.EzlaError:
        return  # refused with one of our codes: fine; anything else would be a leak
    assert etree.tostring(result.signed_root, method="c14n") == baseline


# --- the real CA profile (ezla pki init), not just our look-alike fixture ----------------------------
def test_real_ca_profile_doctor_and_service_seal(pki_dir) -> None:
    from ezla.ca import keystore, profile
    from tests.conftest import PASSPHRASE, PUBLIC_URL

    root, issuing = keystore.load_cert(pki_dir, "root"), keystore.load_cert(pki_dir, "issuing")
    issuing_key = keystore.load_key(pki_dir, "issuing", PASSPHRASE)
    doctor_key = ec.generate_private_key(ec.SECP256R1())
    doctor = profile.doctor_builder(
        profile.DoctorIdentity(npwz="1234567", given_name="Anna", family_name="Nowak"),
        doctor_key.public_key(),
        issuing,
        x509.random_serial_number(),
        NOW,
        profile.Profile.load(pki_dir),
        profile.Urls(PUBLIC_URL),
    ).sign(issuing_key, hashes.SHA384())
    service_key = keystore.load_key(pki_dir, "service", PASSPHRASE)
    service = keystore.load_cert(pki_dir, "service")
    for key, cert in ((doctor_key, doctor), (service_key, service)):
        data = sign_enveloped(DOC, key, cert, [issuing])
        result = verify_enveloped(
            data, trust_roots=[root], intermediates=[issuing], at=NOW + timedelta(minutes=1), require_eku=DOC_SIGNING
        )
        assert result.signer == cert


def _with_unsigned_properties(signed: bytes, child: etree._Element) -> bytes:
    root = _tree(signed)
    qp = _sig(root).find(f"{{{DS}}}Object/{{{XADES_NS}}}QualifyingProperties")
    assert qp is not None
    usp = etree.SubElement(
        etree.SubElement(qp, f"{{{XADES_NS}}}UnsignedProperties"), f"{{{XADES_NS}}}UnsignedSignatureProperties"
    )
    usp.append(child)
    return _ser(root)


def test_an_unverifiable_time_stamp_is_refused_never_ignored(pki: Pki, signed: bytes) -> None:
    # Junk does not verify, whichever TSAs are trusted: nothing unchecked is stored
    # (tests/unit/test_long_term.py has the real ones).
    ts = etree.Element(f"{{{XADES_NS}}}SignatureTimeStamp")
    etree.SubElement(ts, f"{{{DS}}}CanonicalizationMethod", Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    etree.SubElement(ts, f"{{{XADES_NS}}}EncapsulatedTimeStamp").text = "MAA="
    err = pki.refused(_with_unsigned_properties(signed, ts), errors.TimeStampInvalid)
    assert "unreadable" in err.detail
    trust = TimestampTrust(roots=[pki.root])
    err = pki.refused(
        _with_unsigned_properties(signed, copy.deepcopy(ts)), errors.TimeStampInvalid, timestamp_trust=trust
    )
    checks = {c["check"]: c for c in err.extra["report"]["checks"]}
    assert checks["timestamp"] == {"check": "timestamp", "outcome": "failed", "detail": "timestamp-invalid"}


def test_prose_in_unsigned_properties_is_refused(pki: Pki, signed: bytes) -> None:
    prose = etree.Element(f"{{{XADES_NS}}}UnsignedDataObjectProperty")
    prose.text = "The patient was seen dancing at a wedding."
    pki.refused(_with_unsigned_properties(signed, prose), errors.UnsignedPropertiesRefused)
    pki.refused(_with_unsigned_properties(signed, etree.fromstring(DOC)), errors.UnsignedPropertiesRefused)


def test_refusal_carries_a_validation_report(pki: Pki, signed: bytes) -> None:
    err = pki.refused(signed.replace(b"J10", b"Z99"), errors.SignatureInvalid)
    report = err.extra["report"]
    assert (report["indication"], report["sub_indication"]) == ("TOTAL-FAILED", "HASH_FAILURE")
    outcomes = {c["check"]: c["outcome"] for c in report["checks"]}
    assert outcomes["format"] == outcomes["scope"] == outcomes["algorithms"] == "passed"
    assert outcomes["references"] == "failed"
    assert outcomes["chain"] == outcomes["revocation"] == "not-checked"


def test_passed_report_lists_every_check(pki: Pki, signed: bytes) -> None:
    report = pki.verify(signed, revocation_of=lambda cert: None).report.as_dict()
    assert report["indication"] == "TOTAL-PASSED"
    assert {c["check"] for c in report["checks"]} >= {
        "format",
        "scope",
        "algorithms",
        "references",
        "signature-value",
        "signing-certificate",
        "signing-time",
        "chain",
        "revocation",
    }
    assert all(c["outcome"] == "passed" for c in report["checks"])


def test_rsa_key_with_a_huge_public_exponent_is_refused_before_any_maths(pki: Pki) -> None:
    # Any certificate can sit in KeyInfo; a 2^40+1 exponent would make one verification a CPU sink.
    n = pki.rsa_key.public_key().public_numbers().n
    sink = rsa.RSAPublicNumbers(2**40 + 1, n).public_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(name("sink"))
        .issuer_name(pki.inter.subject)
        .public_key(sink)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
    )
    cert = b.sign(pki.inter_key, hashes.SHA384())
    err = pki.refused(_signxml(pki, etree.fromstring(DOC), cert=cert), errors.SignatureInvalid)
    assert "exponent" in err.detail
    checks = {c["check"]: c["outcome"] for c in err.extra["report"]["checks"]}
    assert checks["signature-value"] == "not-checked"


@pytest.mark.parametrize(
    ("signing_time", "expected"),
    [
        ("2030-01-01T00:00:00+00:00", None),  # well-formed: judged, not refused as malformed
        ("2030-01-01T00:00:00", errors.SigningTimeInvalid),  # no time zone names no instant
        ("20300101T000000Z", errors.SigningTimeInvalid),
        ("2030-01-01", errors.SigningTimeInvalid),
        ("2030-01-01T00:00:00+15:00", errors.SigningTimeInvalid),
        ("0001-01-01T00:00:00+00:01", errors.SigningTimeInvalid),  # before year 1 in UTC
        ("9999-12-31T23:59:59-00:01", errors.SigningTimeInvalid),  # after year 9999 in UTC
    ],
)
def test_signing_time_must_be_an_xs_datetime_with_a_zone(pki: Pki, signing_time: str, expected: type | None) -> None:
    class Fixed(_Signer):
        def add_signing_time(self, ssp, sig_root, signing_settings):
            el = etree.SubElement(ssp, f"{{{XADES_NS}}}SigningTime", nsmap=self.namespaces)
            el.text = signing_time

    data = _signxml(pki, etree.fromstring(DOC), Fixed)
    with pytest.raises(errors.EzlaError) as caught:
        pki.verify(data)
    assert type(caught.value) is (expected or errors.SigningTimeInFuture)


def test_utf7_and_other_encodings_are_refused(pki: Pki, signed: bytes) -> None:
    # UTF-7 can spell '<' as '+ADw-': the byte-level limits would count nothing.
    body = signed.split(b"?>", 1)[1].replace(b"<!", b"+ADwAIQ-")
    pki.refused(b'<?xml version="1.0" encoding="UTF-7"?>' + body, errors.XmlMalformed)
    pki.refused(b'<?xml version="1.0" encoding="ISO-8859-2"?>' + body, errors.XmlMalformed)
    assert pki.verify(b'<?xml version="1.0" encoding="utf-8"?>' + body).signer == pki.rsa_leaf


def test_relative_namespace_uri_is_a_clean_refusal(pki: Pki, signed: bytes) -> None:
    pki.refused(signed.replace(b"<SickLeave ", b'<SickLeave xmlns:r="rel/x" ', 1), errors.XmlMalformed)


@pytest.mark.parametrize("c14n", [CanonicalizationMethod.CANONICAL_XML_1_0, CanonicalizationMethod.CANONICAL_XML_1_1])
def test_xml_lang_on_the_root_is_inherited_by_signed_subtrees(pki: Pki, c14n: CanonicalizationMethod) -> None:
    root = etree.fromstring(DOC)
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "pl")
    data = _xmlsec1_like(pki, root, c14n)
    assert pki.verify(data).signer == pki.rsa_leaf


def _xmlsec1_like(pki: Pki, root: etree._Element, c14n: CanonicalizationMethod) -> bytes:
    """Our signature over ``root``, with SignedInfo/SignedProperties digested as the spec says:
    xml:lang of the root carried onto the subtree apex (signxml's subtree c14n forgets it)."""
    import xmlsec

    data = _signxml(pki, root, c14n_algorithm=c14n)
    tree = etree.fromstring(data)
    xmlsec.tree.add_ids(tree, ["Id"])
    sig = tree.find(f"{{{DS}}}Signature")
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(
        pki.rsa_key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        xmlsec.constants.KeyDataFormatPem,
    )
    for dv in sig.iter(f"{{{DS}}}DigestValue"):
        if dv.getparent().tag == f"{{{DS}}}Reference":
            dv.text = ""
    sig.find(f"{{{DS}}}SignatureValue").text = ""
    ctx.sign(sig)  # libxmlsec1 recomputes every Reference digest and the value, per the spec
    return _ser(tree)


def test_exclusive_c14n_unused_namespace_declarations_never_reach_the_caller(pki: Pki) -> None:
    data = _xmlsec1_like(pki, etree.fromstring(DOC), CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    # Exclusive c14n does not cover a declaration nobody uses: adding one keeps the signature valid.
    # (Not on the root: inclusive c14n of SignedProperties would cover the root's declarations.)
    rebound = data.replace(b"<IssueDate>", b'<IssueDate xmlns:q="urn:attacker">', 1)
    result = pki.verify(rebound)
    assert "q" not in result.signed_root.nsmap
    assert all("urn:attacker" not in el.nsmap.values() for el in result.signed_root.iter())

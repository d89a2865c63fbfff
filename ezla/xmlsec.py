"""Enveloped XAdES-BES: hardened parsing, signing and strict verification.

Used by issuance (doctors' e-ZLA and cancellations), receipts, the SDK and the CLI.

Choices (see docs/design "Interoperability facts"):
- We sign with inclusive Canonical XML 1.0 everywhere. signxml's default (c14n 1.1) is unknown to
  xadesjs, and with exclusive c14n signxml digests SignedProperties/KeyInfo without writing a
  Transform, so every other verifier (and signxml itself) falls back to c14n 1.0 and fails.
- Verification trusts nothing the document says about itself: scope, algorithms, the signer
  certificate and its chain are all checked by us before and after signxml verifies the maths.
"""

from __future__ import annotations

import hashlib
import threading
from base64 import b64decode
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import lxml.etree
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.xades.xades import XAdESDataObjectFormat, XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

from ezla.errors import (
    CertificateExpired,
    CertificateNotForSigning,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    KeyCertificateMismatch,
    KeyTooWeak,
    PayloadTooLarge,
    SignatureAlgorithmWeak,
    SignatureInvalid,
    SignatureMissing,
    SignatureScope,
    SigningCertificateMismatch,
    XmlForbiddenConstruct,
    XmlMalformed,
    XmlTooDeep,
)

MAX_XML_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_KEYINFO_CERTS = 8

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES}
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
C14N = CanonicalizationMethod.CANONICAL_XML_1_0
_C14N_URIS = frozenset(m.value for m in CanonicalizationMethod)
# Below our SHA-256 floor; matched on the URI so unknown spellings of SHA-1/MD5 are caught too.
_WEAK_MARKERS = ("sha1", "md5", "sha224", "sha3-224")
_STRONG_SIGNATURE_METHODS = frozenset(
    m
    for m in SignatureMethod
    if not any(w in m.value.lower() for w in _WEAK_MARKERS) and not m.name.startswith(("HMAC", "DSA"))
)
_STRONG_DIGESTS = frozenset(d for d in DigestAlgorithm if not any(w in d.value.lower() for w in _WEAK_MARKERS))
_XMLSEC_HASHES = {
    DigestAlgorithm.SHA256.value: hashes.SHA256(),
    DigestAlgorithm.SHA384.value: hashes.SHA384(),
    DigestAlgorithm.SHA512.value: hashes.SHA512(),
    DigestAlgorithm.SHA3_256.value: hashes.SHA3_256(),
    DigestAlgorithm.SHA3_384.value: hashes.SHA3_384(),
    DigestAlgorithm.SHA3_512.value: hashes.SHA3_512(),
}
_ID_ATTRS = ("Id", "ID", "id")  # xml:id has local name "id"


def _ds(tag: str) -> str:
    return f"{{{DS}}}{tag}"


# --- parsing ------------------------------------------------------------------------------------
def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES, max_depth: int = MAX_DEPTH) -> lxml.etree._Element:
    """Parse untrusted XML: no DTD, no entities, no PIs, bounded size and depth."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"XML larger than {max_bytes} bytes")
    # Cheap pre-check on the raw bytes (UTF-8/ASCII); other encodings are caught after parsing.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmlForbiddenConstruct("DOCTYPE/ENTITY declarations are refused")
    parser = etree.XMLPullParser(
        events=("start", "end", "pi"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_pis=False,
        dtd_validation=False,
    )
    depth = 0

    def drain() -> None:
        nonlocal depth
        for event, element in parser.read_events():
            if event == "start":
                depth += 1
                if depth > max_depth:
                    raise XmlTooDeep(f"XML nested deeper than {max_depth}")
            elif event == "end":
                depth -= 1
            else:  # the XML declaration is not a PI; anything reported here is one
                raise XmlForbiddenConstruct(f"processing instruction refused: {getattr(element, 'target', '?')}")

    try:
        # Fed in chunks so a depth bomb is refused without parsing the whole body.
        for start in range(0, len(data), 1 << 16):
            parser.feed(data[start : start + (1 << 16)])
            drain()
        root = parser.close()
        drain()
    except etree.XMLSyntaxError as exc:
        drain()  # libxml2's own depth limit (256) fires first on deep bombs; report it as depth
        raise XmlMalformed(f"XML not well-formed: {exc}") from None
    doc = root.getroottree()
    if doc.docinfo.internalDTD is not None or doc.docinfo.externalDTD is not None or doc.docinfo.doctype:
        raise XmlForbiddenConstruct("DOCTYPE declarations are refused")
    outside = (*root.itersiblings(preceding=True), *root.itersiblings())
    for node in (*outside, *root.iter(etree.PI, etree.Entity)):
        if isinstance(node, (etree._ProcessingInstruction, etree._Entity)):
            raise XmlForbiddenConstruct("processing instructions and entities are refused")
    return root


def signed_document_digest(data: bytes) -> str:
    """Hex SHA-256 of the exact bytes received (what receipts quote)."""
    return hashlib.sha256(data).hexdigest()


# --- signing ------------------------------------------------------------------------------------
class _Signer(XAdESSigner):
    """signxml's XAdES signer with a caller-chosen SigningTime, one SigningCertificateV2 entry and URI=""."""

    def __init__(self, signing_time: datetime, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        el = etree.SubElement(signed_signature_properties, f"{{{XADES}}}SigningTime", nsmap=self.namespaces)
        when = self._signing_time.astimezone(UTC)
        el.text = when.isoformat(timespec="seconds").replace("+00:00", "Z")

    def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        # Only the signer: the chain certs travel in KeyInfo; several Cert entries confuse some verifiers.
        only_signer = replace(signing_settings, cert_chain=signing_settings.cert_chain[:1])
        super().add_signing_certificate(signed_signature_properties, sig_root, only_signer)

    def _unpack(self, data, references):  # type: ignore[no-untyped-def]
        # signxml would reference "#<Id>" when the root carries an Id; we always sign the whole document.
        sig_root, doc_root, c14n_inputs, refs = super()._unpack(data, references)
        return sig_root, doc_root, c14n_inputs, [replace(r, URI="") for r in refs]


def _check_key_strength(key: object) -> None:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < 2048:
            raise KeyTooWeak(f"RSA-{key.key_size} is below 2048 bits")
    elif isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.key_size < 256:
            raise KeyTooWeak(f"EC curve {key.curve.name} is below P-256")
    else:
        raise KeyTooWeak(f"unsupported key type {type(key).__name__}")


def sign_enveloped(
    xml: bytes | lxml.etree._Element,
    key: PrivateKeyTypes,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: datetime | None = None,
) -> bytes:
    """Append an enveloped XAdES-BES ds:Signature (c14n 1.0, SHA-256) as the root's last child.

    KeyInfo carries ``cert`` then ``chain``. Leave ``chain`` empty when relying parties may use
    xadesjs without an explicit key: it tries every KeyInfo certificate with the signature
    algorithm and throws on one of another key type (an RSA seal under our EC issuing CA).
    """
    _check_key_strength(key)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyCertificateMismatch()
    root = parse_xml(xml) if isinstance(xml, bytes) else xml
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    method = SignatureMethod.RSA_SHA256 if is_rsa else SignatureMethod.ECDSA_SHA256
    signer = _Signer(
        signing_time or datetime.now(UTC),
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=C14N,
        data_object_format=XAdESDataObjectFormat(Description="Signed XML document", MimeType="text/xml"),
    )
    signed = signer.sign(root, key=key, cert=[cert, *chain], always_add_key_value=False)  # type: ignore[arg-type]
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# --- verification -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedSignature:
    signed_root: lxml.etree._Element  # only what the signature covers (c14n round-trip), ds:Signature removed
    signer: x509.Certificate
    signing_time: datetime | None  # SignedProperties/SigningTime, tz-aware UTC


class _Verifier(XAdESVerifier):
    def _verify_cert_digests(self, verify_result):  # type: ignore[no-untyped-def]
        pass  # done by _check_signing_certificate, so a mismatch gets its own error code


def _ids(el: lxml.etree._Element) -> set[str]:
    return {str(v) for k, v in el.attrib.items() if etree.QName(k).localname in _ID_ATTRS}


def _check_structure(root: lxml.etree._Element) -> lxml.etree._Element:
    sigs = list(root.iter(_ds("Signature")))
    if not sigs:
        raise SignatureMissing()
    children = [c for c in root if isinstance(c.tag, str)]  # comments are never signed; ignore them
    if len(sigs) != 1 or sigs[0].getparent() is not root or children[-1] is not sigs[0]:
        raise SignatureScope("exactly one ds:Signature, the last child of the root, is allowed")
    _check_signature_shape(sigs[0])
    return sigs[0]


def _elements(el: lxml.etree._Element) -> list[lxml.etree._Element]:
    """Element children; any non-blank text between them is content nobody signed."""
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise SignatureScope(f"unexpected text inside {etree.QName(el).localname}")
    return [c for c in el if isinstance(c.tag, str)]


def _check_signature_shape(sig: lxml.etree._Element) -> None:
    """Nothing unsigned may ride inside ds:Signature: only SignedInfo, SignatureValue, KeyInfo and
    one ds:Object holding the XAdES QualifyingProperties. Otherwise a forged copy of the document
    could sit next to the genuine one and fool anyone who reads the stored bytes."""
    names = [c.tag for c in _elements(sig)]
    allowed = [_ds("SignedInfo"), _ds("SignatureValue")]
    if names[:2] != allowed or len(names) > 4 or any(n not in (_ds("KeyInfo"), _ds("Object")) for n in names[2:]):
        raise SignatureScope("ds:Signature may hold only SignedInfo, SignatureValue, KeyInfo and one ds:Object")
    objects = sig.findall("ds:Object", NS)
    if len(objects) != 1:
        raise SignatureScope("exactly one ds:Object (the XAdES properties) is allowed")
    qp = _elements(objects[0])
    if len(qp) != 1 or qp[0].tag != f"{{{XADES}}}QualifyingProperties":
        raise SignatureScope("ds:Object may hold only xades:QualifyingProperties")
    parts = [c.tag for c in _elements(qp[0])]
    if parts not in (
        [f"{{{XADES}}}SignedProperties"],
        [f"{{{XADES}}}SignedProperties", f"{{{XADES}}}UnsignedProperties"],
    ):
        raise SignatureScope("QualifyingProperties may hold only SignedProperties and UnsignedProperties")
    unsigned = qp[0].find("xades:UnsignedProperties", NS)
    if unsigned is not None and any(
        etree.QName(e).namespace not in (XADES, DS) for e in unsigned.iter() if isinstance(e.tag, str)
    ):
        # Time stamps (XAdES-T) carry ds:CanonicalizationMethod; anything from other namespaces
        # (an e-ZLA twin, say) is unsigned content riding along and is refused.
        raise SignatureScope("UnsignedProperties may hold only XAdES and XML-DSig elements")
    key_info = sig.find("ds:KeyInfo", NS)
    if key_info is not None and any(etree.QName(c).namespace != DS for c in _elements(key_info)):
        raise SignatureScope("KeyInfo may hold only XML-DSig elements")


def _check_algorithms(sig: lxml.etree._Element) -> None:
    si = sig.find("ds:SignedInfo", NS)
    if si is None:
        raise SignatureInvalid("ds:SignedInfo missing")
    method_el = si.find("ds:SignatureMethod", NS)
    method = "" if method_el is None else method_el.get("Algorithm", "")
    # Only what the signature rests on: SignedInfo's references and the SignedProperties'
    # certificate digests. Digests in unsigned XAdES-C/-T properties are another party's business.
    signed_parts = [si, *sig.iterfind("ds:Object/xades:QualifyingProperties/xades:SignedProperties", NS)]
    digests = [d.get("Algorithm", "") for part in signed_parts for d in part.iter(_ds("DigestMethod"))]
    if any(w in a.lower() for a in (method, *digests) for w in _WEAK_MARKERS):
        raise SignatureAlgorithmWeak("SHA-1/MD5/SHA-224 are refused")
    if method not in {m.value for m in _STRONG_SIGNATURE_METHODS}:
        raise SignatureInvalid(f"unsupported SignatureMethod {method!r}")
    if any(d not in {a.value for a in _STRONG_DIGESTS} for d in digests):
        raise SignatureInvalid("unsupported DigestMethod")


def _check_references(root: lxml.etree._Element, sig: lxml.etree._Element) -> None:
    refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
    data_refs = [r for r in refs if r.get("URI") == ""]
    if len(data_refs) != 1:
        raise SignatureScope('exactly one Reference must have URI="" (the whole document)')
    for r in refs:
        transforms = [t.get("Algorithm") for t in r.findall("ds:Transforms/ds:Transform", NS)]
        allowed = _C14N_URIS | ({ENVELOPED} if r is data_refs[0] else set())
        # XPath/XSLT/base64 transforms could narrow or rewrite what is signed.
        if any(t not in allowed for t in transforms) or (r is data_refs[0] and ENVELOPED not in transforms):
            raise SignatureScope("only enveloped-signature and canonicalization transforms are allowed")
    # One id index for the whole document (not a scan per Reference), with signxml's notion of "Id":
    # any attribute named Id/ID/id in any namespace. Requiring a unique hit means both of us resolve
    # a reference to the same element.
    index: dict[str, list[lxml.etree._Element]] = {}
    for el in root.iter():
        if isinstance(el.tag, str):
            for value in _ids(el):
                index.setdefault(value, []).append(el)
    own_props = sig.findall("ds:Object/xades:QualifyingProperties/xades:SignedProperties", NS)
    props_refs = keyinfo_refs = 0
    for r in (r for r in refs if r is not data_refs[0]):
        uri = r.get("URI") or ""
        targets = index.get(uri[1:], []) if uri.startswith("#") else []
        if len(targets) != 1:
            raise SignatureScope(f"reference {uri!r} is neither unique nor local")
        if r.get("Type") == SIGNED_PROPERTIES_TYPE and any(targets[0] is p for p in own_props):
            props_refs += 1
        elif targets[0].tag == _ds("KeyInfo") and targets[0].getparent() is sig:
            keyinfo_refs += 1
        else:
            raise SignatureScope(f"reference {uri!r} points outside the signature's own properties")
    # Bounded: signxml re-serialises the whole document once per Reference.
    if props_refs != 1 or keyinfo_refs > 1:
        raise SignatureInvalid("XAdES-BES needs one SignedProperties reference and at most one KeyInfo one")


def _keyinfo_certs(sig: lxml.etree._Element) -> list[x509.Certificate]:
    found = sig.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    if not 1 <= len(found) <= MAX_KEYINFO_CERTS:  # bounded path building
        raise SignatureInvalid(f"KeyInfo must carry 1..{MAX_KEYINFO_CERTS} X509Certificate elements")
    certs = []
    try:
        for el in found:
            cert = x509.load_der_x509_certificate(b64decode("".join((el.text or "").split())))
            cert.public_key(), cert.extensions  # parsed lazily: fail here, not deep in a check
            certs.append(cert)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid(f"unreadable X509Certificate: {exc}") from None
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


class _ChainCache:
    """Bounded, thread-safe map from (signer, trust store, extras) to the validity window of the
    path cryptography validated. Revocation is never cached: it is checked on every call."""

    def __init__(self, size: int = 4096) -> None:
        self._data: OrderedDict[tuple[bytes, ...], tuple[datetime, datetime]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[bytes, ...]) -> tuple[datetime, datetime] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[bytes, ...], value: tuple[datetime, datetime]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


_CHAIN_CACHE = _ChainCache()
_SHA256 = hashes.SHA256()


def _check_certificate(
    signer: x509.Certificate,
    *,
    extra: list[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    at: datetime,
    is_revoked: Callable[[x509.Certificate], bool] | None,
    require_eku: x509.ObjectIdentifier | None,
) -> None:
    try:
        _check_key_strength(signer.public_key())
    except KeyTooWeak as exc:
        raise SignatureAlgorithmWeak(exc.detail) from None
    if at < signer.not_valid_before_utc:
        raise CertificateNotYetValid(f"signer certificate valid from {signer.not_valid_before_utc:%Y-%m-%d}")
    if at > signer.not_valid_after_utc:
        raise CertificateExpired(f"signer certificate expired {signer.not_valid_after_utc:%Y-%m-%d}")
    if not trust_roots:
        raise CertificateUntrusted("no trust roots configured")
    # cryptography's web-PKI EE defaults demand SAN and keyUsage digitalSignature and check EKU
    # against clientAuth; our doctor certs are nonRepudiation + documentSigning without SAN, so those
    # three are relaxed here and checked (KU/EKU) by us below. Chain, CA constraints, validity and
    # signatures along the path stay cryptography's job.
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )
    cache_key = (signer.fingerprint(_SHA256), *(c.fingerprint(_SHA256) for c in (*trust_roots, *extra)))
    window = _CHAIN_CACHE.get(cache_key)
    if window is None or not (window[0] <= at <= window[1]):
        ca = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        verifier = (
            PolicyBuilder()
            .store(Store(list(trust_roots)))
            .time(at)
            .extension_policies(ca_policy=ca, ee_policy=ee)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(signer, extra).chain
        except VerificationError as exc:
            raise CertificateUntrusted(f"no valid chain to a trusted root: {exc}") from None
        # Path validation depends on `at` only through validity periods, so the result holds for
        # any time inside all of them: remember that window and skip the ~1.5 ms next time.
        _CHAIN_CACHE.put(
            cache_key, (max(c.not_valid_before_utc for c in chain), min(c.not_valid_after_utc for c in chain))
        )
    try:
        ku = signer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            raise CertificateNotForSigning("keyUsage allows neither digitalSignature nor nonRepudiation")
    except x509.ExtensionNotFound:
        pass
    if require_eku is not None:
        try:
            ekus = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            ekus = x509.ExtendedKeyUsage([])
        if require_eku not in ekus:
            raise CertificateNotForSigning(f"extendedKeyUsage lacks {require_eku.dotted_string}")
    if is_revoked is not None and is_revoked(signer):
        raise CertificateRevoked()


def _check_signing_certificate(props: lxml.etree._Element, signer: x509.Certificate) -> None:
    ssp = props.find("xades:SignedSignatureProperties", NS)
    node = None if ssp is None else ssp.find("xades:SigningCertificateV2", NS)
    if node is None and ssp is not None:
        node = ssp.find("xades:SigningCertificate", NS)  # v1 accepted, but only with a SHA-256+ digest
    first = None if node is None else node.find("xades:Cert", NS)
    if first is None:
        raise SigningCertificateMismatch("SigningCertificate(V2) missing")
    algorithm = first.find("xades:CertDigest/ds:DigestMethod", NS)
    value = first.findtext("xades:CertDigest/ds:DigestValue", None, NS)
    hash_alg = _XMLSEC_HASHES.get(algorithm.get("Algorithm", "") if algorithm is not None else "")
    if hash_alg is None or value is None:
        raise SignatureAlgorithmWeak("SigningCertificate digest must be SHA-256 or stronger")
    try:
        claimed = b64decode("".join(value.split()), validate=True)
    except ValueError:
        raise SigningCertificateMismatch("SigningCertificate digest is not base64") from None
    if claimed != signer.fingerprint(hash_alg):
        raise SigningCertificateMismatch()
    serial = first.findtext("xades:IssuerSerial/ds:X509SerialNumber", None, NS)
    if serial is not None and serial.strip() != str(signer.serial_number):
        raise SigningCertificateMismatch("SigningCertificate IssuerSerial names another certificate")


def _signing_time(props: lxml.etree._Element) -> datetime | None:
    text = props.findtext("xades:SignedSignatureProperties/xades:SigningTime", None, NS)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureInvalid(f"SigningTime {text!r} is not an xs:dateTime") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def verify_enveloped(
    data: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: datetime,
    is_revoked: Callable[[x509.Certificate], bool] | None = None,
    require_eku: x509.ObjectIdentifier | None = None,
) -> VerifiedSignature:
    """Verify an enveloped XAdES-BES over the whole document; return only what it covers."""
    root = parse_xml(data)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    sig = _check_structure(root)
    _check_algorithms(sig)
    _check_references(root, sig)
    certs = _keyinfo_certs(sig)
    # KeyInfo only nominates the signer (first non-CA certificate); trust comes from the chain check.
    signer = next((c for c in certs if not _is_ca(c)), certs[0])
    extra = [*intermediates, *(c for c in certs if c is not signer)]
    _check_certificate(
        signer, extra=extra, trust_roots=trust_roots, at=at, is_revoked=is_revoked, require_eku=require_eku
    )
    config = XAdESSignatureConfiguration(
        location="./",
        expect_references=True,
        verification_time=at,
        signature_methods=_STRONG_SIGNATURE_METHODS,
        digest_algorithms=_STRONG_DIGESTS,
        default_reference_c14n_method=C14N,  # XMLDSig's default for references without a c14n Transform
    )
    try:
        results = _Verifier().verify(root, x509_cert=signer, expect_config=config)
    except (SignXMLException, etree.LxmlError, ValueError, KeyError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid(f"signature does not verify: {exc}") from None
    # signxml's results follow the Reference order of the SignedInfo it verified (a c14n copy of ours).
    by_ref = list(zip(sig.findall("ds:SignedInfo/ds:Reference", NS), results, strict=True))
    signed_root = next(res.signed_xml for r, res in by_ref if r.get("URI") == "")
    props = next(res.signed_xml for r, res in by_ref if r.get("URI") and r.get("Type") == SIGNED_PROPERTIES_TYPE)
    if signed_root is None or props is None or props.tag != f"{{{XADES}}}SignedProperties":
        raise SignatureInvalid("signed content could not be read back")
    _check_signing_certificate(props, signer)
    return VerifiedSignature(signed_root=signed_root, signer=signer, signing_time=_signing_time(props))

"""Strict verification of an enveloped XAdES-BES over a whole document, each piece of work once.

Why our own XML-DSig core and not signxml's verifier (which stays in the tests as an oracle):
signxml re-serialises and re-parses the document for every Reference and for SignedInfo, parses
the signer certificate on every call and cannot refuse a cost attack before canonicalising. Here:
one hardened parse whose cost is bounded by the input (``parsing``); every rule about shape, scope
and algorithms checked on that tree before any canonicalisation; c14n (libxml2, via lxml) of exactly
the three things the References and SignedInfo name; one signature check with ``cryptography``;
certificates and validated paths from caches (``certificates``).

Trust nothing the document says about itself: the signature must be the root's last child and cover
the whole document (URI="" with the enveloped transform); the other References may only point at
this signature's own SignedProperties and KeyInfo; KeyInfo only nominates the signer, trust comes
from the path to the given roots; SigningTime is believed only inside the window of
``signing_time``. The caller gets back exactly the digested node-set (the document with ds:Signature
detached, unused declarations dropped under exclusive c14n), so nothing unsigned can reach it.
"""

from __future__ import annotations

from base64 import b64decode
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import lxml.etree
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from ezla.errors import (
    CertificateNotYetValid,
    EzlaError,
    SignatureAlgorithmWeak,
    SignatureInvalid,
    SignatureMissing,
    SignatureScope,
    SignatureTooManyReferences,
    SigningCertificateMismatch,
    SigningTimeInFuture,
    UnsignedPropertiesRefused,
)
from ezla.xades import certificates, unsigned
from ezla.xades.algorithms import (
    CERT_DIGESTS,
    DEFAULT_C14N,
    DIGESTS,
    DS,
    ENVELOPED,
    INHERITED_XML_ATTRIBUTES,
    SIGNATURE_METHODS,
    XADES,
    XML_NS,
    C14n,
    c14n_method,
    canonicalize,
    digest_function,
    is_weak,
    signature_method,
)
from ezla.xades.parsing import LIMITS, Limits, parse_document
from ezla.xades.report import Check, CheckResult, Outcome, ReportBuilder, ValidationReport, attach, failed_report
from ezla.xades.signing_time import (
    Revocation,
    SigningTimePolicy,
    judge_age,
    judge_expiry,
    judge_revocation,
    judge_signing_time,
    read_signing_time,
)
from ezla.xades.timestamps import TimeStamp

MAX_KEYINFO_CERTS = 8
MAX_REFERENCES = 3  # the document, SignedProperties and (optionally) KeyInfo
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

_SIGNATURE = f"{{{DS}}}Signature"
_SIGNED_INFO = f"{{{DS}}}SignedInfo"
_SIGNATURE_VALUE = f"{{{DS}}}SignatureValue"
_KEY_INFO = f"{{{DS}}}KeyInfo"
_OBJECT = f"{{{DS}}}Object"
_REFERENCE = f"{{{DS}}}Reference"
_TRANSFORMS = f"{{{DS}}}Transforms"
_TRANSFORM_TAG = f"{{{DS}}}Transform"
_DIGEST_METHOD = f"{{{DS}}}DigestMethod"
_DIGEST_VALUE = f"{{{DS}}}DigestValue"
_SIGNATURE_METHOD = f"{{{DS}}}SignatureMethod"
_C14N_METHOD = f"{{{DS}}}CanonicalizationMethod"
_QUALIFYING = f"{{{XADES}}}QualifyingProperties"
_SIGNED_PROPS = f"{{{XADES}}}SignedProperties"
_UNSIGNED_PROPS = unsigned.UNSIGNED_PROPS
_X509_CERTS = f"{{{DS}}}X509Data/{{{DS}}}X509Certificate"
_SIGNING_CERT_V2 = f"{{{XADES}}}SigningCertificateV2"
_CERT_DIGEST = f"{{{XADES}}}CertDigest"
_CERT = f"{{{XADES}}}Cert"
_ISSUER_SERIAL = f"{{{XADES}}}IssuerSerial"
_X509_SERIAL = f"{{{DS}}}X509SerialNumber"
_SIGNED_SIGNATURE_PROPS = f"{{{XADES}}}SignedSignatureProperties"
_SIGNING_CERT_V1 = f"{{{XADES}}}SigningCertificate"
_DEFAULT_POLICY = SigningTimePolicy()

RevocationLookup = Callable[[x509.Certificate], Revocation | None]


@dataclass(frozen=True)
class VerifiedSignature:
    signed_root: lxml.etree._Element  # exactly the digested node-set: the document without ds:Signature
    signer: x509.Certificate
    signing_time: datetime  # SignedProperties/SigningTime (tz-aware UTC), as judged believable
    report: ValidationReport
    timestamps: tuple[TimeStamp, ...] = ()  # verified signature time-stamps (XAdES-T), oldest first
    evidence: unsigned.Unsigned = field(default_factory=unsigned.Unsigned)  # certificate and OCSP values (LT)
    revocation: Revocation | None = None  # the signer's status as judged by check_revocation

    @property
    def existed_at(self) -> datetime | None:
        """Proof of existence: the oldest signature time-stamp's genTime."""
        return self.timestamps[0].gen_time if self.timestamps else None


@dataclass(frozen=True)
class _Reference:
    uri: str
    digest: Callable[[bytes], bytes]
    digest_value: bytes
    c14n: C14n
    prefixes: list[str] | None
    target: lxml.etree._Element | None  # None for the document reference


@dataclass(frozen=True)
class _Parts:
    sig: lxml.etree._Element
    signed_info: lxml.etree._Element
    signature_value: lxml.etree._Element
    key_info: lxml.etree._Element | None
    props: lxml.etree._Element
    xml_attributes: bool  # xml:lang/xml:space above the signed subtrees (inclusive c14n inherits them)
    unsigned: unsigned.Unsigned


def _elements(el: lxml.etree._Element) -> list[lxml.etree._Element]:
    """Element children; any non-blank text between them is content nobody signed."""
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise SignatureScope(f"unexpected text inside {etree.QName(el).localname}")
    return list(el)  # parse_xml refused comments and PIs: every child is an element


def _structure(root: lxml.etree._Element) -> _Parts:
    """Exactly one ds:Signature, the root's last child, holding only SignedInfo, SignatureValue,
    KeyInfo and one ds:Object with the XAdES SignedProperties. Anything else inside it would be
    unsigned content riding along with the stored document."""
    sigs = list(root.iter(_SIGNATURE))
    if not sigs:
        raise SignatureMissing()
    if len(sigs) != 1 or sigs[0].getparent() is not root or root[-1] is not sigs[0]:
        raise SignatureScope("exactly one ds:Signature, the last child of the root, is allowed")
    sig = sigs[0]
    children = _elements(sig)
    tags = [c.tag for c in children]
    if (
        tags[:2] != [_SIGNED_INFO, _SIGNATURE_VALUE]
        or len(tags) > 4
        or any(t not in (_KEY_INFO, _OBJECT) for t in tags[2:])
    ):
        raise SignatureScope("ds:Signature may hold only SignedInfo, SignatureValue, KeyInfo and one ds:Object")
    objects = [c for c in children if c.tag == _OBJECT]
    key_infos = [c for c in children if c.tag == _KEY_INFO]
    if len(objects) != 1 or len(key_infos) > 1:
        raise SignatureScope("exactly one ds:Object (the XAdES properties) and at most one KeyInfo are allowed")
    qp = _elements(objects[0])
    if len(qp) != 1 or qp[0].tag != _QUALIFYING:
        raise SignatureScope("ds:Object may hold only xades:QualifyingProperties")
    parts = _elements(qp[0])
    found = unsigned.Unsigned()
    if [p.tag for p in parts] == [_SIGNED_PROPS, _UNSIGNED_PROPS]:
        # Only time-stamps, certificates and OCSP responses (XAdES-T/LT); every time-stamp is
        # then verified, so nothing unchecked is ever stored.
        found = unsigned.read(parts[1])
    elif [p.tag for p in parts] != [_SIGNED_PROPS]:
        raise SignatureScope("QualifyingProperties may hold only SignedProperties (and UnsignedProperties)")
    key_info = key_infos[0] if key_infos else None
    if key_info is not None and any(etree.QName(c).namespace != DS for c in _elements(key_info)):
        raise SignatureScope("KeyInfo may hold only XML-DSig elements")
    above = (root, sig, objects[0], qp[0])  # every ancestor of SignedInfo, KeyInfo and SignedProperties
    xml_names = {str(name) for el in above for name in el.attrib if str(name).startswith(XML_NS)}
    if xml_names - set(INHERITED_XML_ATTRIBUTES):
        # xml:id and xml:base inherit differently in c14n 1.0 and 1.1; no e-ZLA needs them there.
        raise SignatureScope("xml:id and xml:base are not accepted on the root or inside ds:Signature")
    return _Parts(sig, children[0], children[1], key_info, parts[0], bool(xml_names), found)


def _check_algorithms(parts: _Parts) -> None:
    """Weakness first (a SHA-1 anywhere the signature rests on), then support."""
    method = parts.signed_info.find(_SIGNATURE_METHOD)
    uris = [method.get("Algorithm", "") if method is not None else ""]
    for part in (parts.signed_info, parts.props):
        uris.extend(d.get("Algorithm", "") for d in part.iter(_DIGEST_METHOD))
    unknown = [u for u in uris[1:] if u not in DIGESTS]
    if uris[0] not in SIGNATURE_METHODS:
        unknown.append(uris[0])
    if not unknown:
        return
    if any(is_weak(u) for u in unknown):
        raise SignatureAlgorithmWeak("SHA-1/MD5/SHA-224 are refused")
    signature_method(uris[0])
    for uri in uris[1:]:
        digest_function(uri)


def _references(parts: _Parts, index: dict[str, list[lxml.etree._Element]]) -> list[_Reference]:
    """What each Reference covers and how, read without any c14n or digest work. A Reference that
    points anywhere but the whole document or this signature's own properties is refused first;
    the count limit then bounds the canonicalisation that follows."""
    refs = parts.signed_info.findall(_REFERENCE)
    data_refs = [r for r in refs if r.get("URI") == ""]
    if len(data_refs) != 1:
        raise SignatureScope('exactly one Reference must have URI="" (the whole document)')
    # Requiring a unique hit for each "#id" (any attribute named Id/ID/id, signxml's notion) means
    # every verifier resolves it to the same element.
    out: list[_Reference] = []
    props_refs = keyinfo_refs = 0
    for ref in refs:
        is_data = ref is data_refs[0]
        children = {c.tag: c for c in ref}  # ds:Reference is (Transforms?, DigestMethod, DigestValue)
        transforms = list(children.get(_TRANSFORMS, ()))
        if len(children) != len(ref) or any(t.tag != _TRANSFORM_TAG for t in transforms):
            raise SignatureScope("a Reference holds Transforms, DigestMethod and DigestValue once each")
        names = [t.get("Algorithm") for t in transforms]
        c14ns = [t for t in transforms if t.get("Algorithm") != ENVELOPED]
        # XPath/XSLT/base64 transforms could narrow or rewrite what is signed.
        if (is_data and names.count(ENVELOPED) != 1) or (not is_data and ENVELOPED in names) or len(c14ns) > 1:
            raise SignatureScope("only enveloped-signature and one canonicalization transform are allowed")
        c14n, prefixes = c14n_method(c14ns[0]) if c14ns else (DEFAULT_C14N, None)
        uri = ref.get("URI") or ""
        target = None
        if not is_data:
            targets = index.get(uri[1:], ()) if uri.startswith("#") else ()
            if len(targets) != 1:
                raise SignatureScope(f"reference {uri!r} is neither unique nor local")
            target = targets[0]
            if target is parts.props and ref.get("Type") == SIGNED_PROPERTIES_TYPE:
                props_refs += 1
            elif target is parts.key_info:
                keyinfo_refs += 1
            else:
                raise SignatureScope(f"reference {uri!r} points outside the signature's own properties")
        method, value = children.get(_DIGEST_METHOD), children.get(_DIGEST_VALUE)
        if method is None or value is None:
            raise SignatureInvalid("Reference without DigestMethod or DigestValue")
        digest = digest_function(method.get("Algorithm", ""))
        out.append(_Reference(uri, digest, _b64(value.text or ""), c14n, prefixes, target))
    if len(refs) > MAX_REFERENCES:
        raise SignatureTooManyReferences(f"{len(refs)} References; XAdES-BES needs at most {MAX_REFERENCES}")
    if props_refs != 1 or keyinfo_refs > 1:
        raise SignatureInvalid("XAdES-BES needs one SignedProperties reference and at most one KeyInfo one")
    return out


def _b64(text: str, error: EzlaError | None = None) -> bytes:
    try:
        return b64decode("".join(text.split()), validate=True)
    except ValueError:
        raise (error or SignatureInvalid("base64 value is malformed")) from None


def _keyinfo_certs(parts: _Parts) -> list[certificates.CertInfo]:
    found = [] if parts.key_info is None else parts.key_info.findall(_X509_CERTS)
    if not 1 <= len(found) <= MAX_KEYINFO_CERTS:  # bounded path building
        raise SignatureInvalid(f"KeyInfo must carry 1..{MAX_KEYINFO_CERTS} X509Certificate elements")
    return [certificates.from_base64(el.text or "") for el in found]


def _child(el: lxml.etree._Element | None, tag: str) -> lxml.etree._Element | None:
    return None if el is None else el.find(tag)


def _check_signing_certificate(props: lxml.etree._Element, signer: certificates.CertInfo) -> None:
    ssp = props.find(_SIGNED_SIGNATURE_PROPS)
    holder = _child(ssp, _SIGNING_CERT_V2)
    if holder is None:
        holder = _child(ssp, _SIGNING_CERT_V1)  # v1 accepted, but only with a SHA-256+ digest
    first = _child(holder, _CERT)
    if first is None:
        raise SigningCertificateMismatch("SigningCertificate(V2) missing")
    digest = first.find(_CERT_DIGEST)
    method = _child(digest, _DIGEST_METHOD)
    value = None if digest is None else digest.findtext(_DIGEST_VALUE)
    algorithm = CERT_DIGESTS.get(method.get("Algorithm", "") if method is not None else "")
    if algorithm is None or value is None:
        raise SignatureAlgorithmWeak("SigningCertificate digest must be SHA-256 or stronger")
    claimed = _b64(value, SigningCertificateMismatch("SigningCertificate digest is not base64"))
    expected = signer.fingerprint if isinstance(algorithm, hashes.SHA256) else signer.cert.fingerprint(algorithm)
    if claimed != expected:
        raise SigningCertificateMismatch()
    serial = _child(first.find(_ISSUER_SERIAL), _X509_SERIAL)
    if serial is not None and (serial.text or "").strip() != str(signer.cert.serial_number):
        raise SigningCertificateMismatch("SigningCertificate IssuerSerial names another certificate")


def _canonical_document(root: lxml.etree._Element, sig: lxml.etree._Element, ref: _Reference) -> bytes:
    """The enveloped-signature transform, then c14n: the root without ds:Signature. lxml moves an
    element's tail with it, so the whitespace after the signature is handed to its neighbour."""
    tail, prev = sig.tail, sig.getprevious()
    root.remove(sig)
    if tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            root.text = (root.text or "") + tail
    return canonicalize(root, ref.c14n, ref.prefixes)


def _check_digests(root: lxml.etree._Element, parts: _Parts, refs: list[_Reference]) -> bytes:
    """Every Reference digest; returns SignedInfo's canonical bytes (for the signature check).
    SignedInfo, SignedProperties and KeyInfo are canonicalised in place (inclusive c14n takes the
    ancestors' namespaces); the document last, because that detaches the signature."""
    inherit = parts.xml_attributes
    signed_info = canonicalize(parts.signed_info, *c14n_method(_c14n_el(parts.signed_info)), inherit=inherit)
    for ref in sorted(refs, key=lambda r: r.target is None):
        if ref.target is None:
            octets = _canonical_document(root, parts.sig, ref)
        else:
            octets = canonicalize(ref.target, ref.c14n, ref.prefixes, inherit=inherit)
        if ref.digest(octets) != ref.digest_value:
            raise SignatureInvalid(f"digest of reference {ref.uri!r} does not match")
    return signed_info


def _verify_signature_value(parts: _Parts, signer: certificates.CertInfo, signed_info: bytes) -> None:
    method_el = parts.signed_info.find(_SIGNATURE_METHOD)
    method = signature_method(method_el.get("Algorithm", "") if method_el is not None else "")
    value = _b64(parts.signature_value.text or "")
    key = signer.public_key
    try:
        if method.key_type == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:  # XML-DSig ECDSA values are r || s, fixed width (RFC 4050)
                raise SignatureInvalid("ECDSA SignatureValue has the wrong length")
            der = encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))
            key.verify(der, signed_info, method.ecdsa)
        elif method.key_type == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, signed_info, method.rsa_padding, method.hash)
        else:
            raise SignatureInvalid("SignatureMethod does not fit the signer's key type")
    except InvalidSignature:
        raise SignatureInvalid("signature value does not verify with the signer certificate") from None


def verify_enveloped(  # noqa: PLR0915 - one linear pipeline, each step named for the report
    data: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: datetime,
    revocation_of: RevocationLookup | None = None,
    require_eku: x509.ObjectIdentifier | None = None,
    policy: SigningTimePolicy = _DEFAULT_POLICY,
    limits: Limits = LIMITS,
    timestamp_trust: unsigned.TimestampTrust | None = None,
    long_term: bool = False,
) -> VerifiedSignature:
    """Verify an enveloped XAdES-BES (or -T/-LT) over the whole document received at ``at``.

    Signature time-stamps are verified against ``timestamp_trust`` (by default TSAs under the same
    ``trust_roots``: ours is under our root) and give ``existed_at``, the proof of existence; one
    that does not verify is refused, never ignored.

    Certificate and revocation values (XAdES-LT) are the archive's, added by the service: only
    with ``long_term`` (``long_term.verify_long_term``) are they read; in anything submitted they
    are refused, and so are more time-stamps than leave room for the service's own.

    Without ``revocation_of`` the report marks revocation not checked; the caller then applies
    ``check_revocation`` with its own source of truth."""
    received_at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if timestamp_trust is None:
        timestamp_trust = unsigned.TimestampTrust(roots=tuple(trust_roots), intermediates=tuple(intermediates))
    report = ReportBuilder()
    step = Check.FORMAT  # what a raised error is reported against
    try:
        parsed = parse_document(data, limits=limits)
        root = parsed.root
        step = report.enter(Check.SCOPE)
        parts = _structure(root)
        _check_unsigned(parts.unsigned, long_term=long_term)
        step = report.enter(Check.ALGORITHMS)
        _check_algorithms(parts)
        step = report.enter(Check.SCOPE)
        refs = _references(parts, parsed.ids)
        step = report.enter(Check.SIGNING_CERTIFICATE)
        certs = _keyinfo_certs(parts)
        # KeyInfo only nominates the signer (first non-CA certificate); trust comes from the path.
        signer = next((c for c in certs if not c.is_ca), certs[0])
        cert = signer.cert
        report.signer_serial = format(cert.serial_number, "x")
        step = report.enter(Check.ALGORITHMS)
        certificates.check_key(signer)
        covered = unsigned.covered_octets(parts.unsigned, parts.signature_value)  # before the signature is detached
        step = report.enter(Check.REFERENCES)
        signed_info = _check_digests(root, parts, refs)
        step = report.enter(Check.SIGNATURE_VALUE)
        _verify_signature_value(parts, signer, signed_info)
        step = report.enter(Check.SIGNING_CERTIFICATE)
        _check_signing_certificate(parts.props, signer)
        step = report.enter(Check.TIMESTAMP) if parts.unsigned.timestamps else step
        stamps = _timestamps(parts.unsigned, covered, timestamp_trust, received_at)
        step = report.enter(Check.SIGNING_TIME)
        claimed = report.signing_time = _claimed_signing_time(parts, stamps, policy)
        when = judge_signing_time(claimed, received_at=received_at, not_before=cert.not_valid_before_utc, policy=policy)
        step = report.enter(Check.CHAIN)
        if when < cert.not_valid_before_utc:
            raise CertificateNotYetValid(f"signer certificate valid from {cert.not_valid_before_utc:%Y-%m-%d}")
        note = judge_expiry(when, cert.not_valid_after_utc, received_at=received_at, policy=policy)
        if note:
            report.notes.append(note)
        step = Check.SIGNING_TIME  # passed above; only the age is left
        judge_age(when, received_at=received_at, policy=policy)
        step = Check.CHAIN
        # Paths are built from the configured intermediates only: KeyInfo's other certificates are
        # the sender's to choose, and a few crafted CAs can make path building a CPU sink.
        certificates.check_path(
            signer, certificates.infos_of(intermediates), certificates.infos_of(trust_roots), at=when
        )
        certificates.check_usage(signer, require_eku)
    except EzlaError as exc:
        raise attach(exc, report.failed(step, exc)) from None
    except Exception as exc:  # a backstop: hostile input must never become a 500
        err = SignatureInvalid(f"the signature cannot be processed ({type(exc).__name__})")
        raise attach(err, report.failed(step, err)) from None
    if any(r.target is None and r.c14n.exclusive for r in refs):
        # Exclusive c14n covers only the namespace declarations the content uses; drop the others
        # (in C, a few microseconds) so that not even an unused declaration reaches the caller unsigned.
        etree.cleanup_namespaces(root)
    # ``root`` now holds exactly the digested node-set: the enveloped transform detached ds:Signature,
    # and parsing refused the comments, PIs and entities that c14n would have dropped, so there is
    # no need to re-parse the canonical bytes (which would cost a sixth of this function).
    verified = VerifiedSignature(root, cert, when, report.passed_report(), stamps, parts.unsigned)
    if revocation_of is None:
        return verified
    return check_revocation(verified, revocation_of(cert), received_at=received_at, policy=policy)


def _check_unsigned(found: unsigned.Unsigned, *, long_term: bool) -> None:
    if long_term:
        return
    if found.certificates or found.ocsp_responses:
        raise UnsignedPropertiesRefused("certificate and revocation values are added by the service, not accepted here")
    if len(found.timestamps) >= unsigned.MAX_TIMESTAMPS:
        raise UnsignedPropertiesRefused(f"at most {unsigned.MAX_TIMESTAMPS - 1} signature time-stamps")


def _claimed_signing_time(parts: _Parts, stamps: tuple[TimeStamp, ...], policy: SigningTimePolicy) -> datetime | None:
    claimed = read_signing_time(parts.props)
    if stamps and claimed is not None and claimed > stamps[0].gen_time + policy.max_skew:
        # The time-stamp proves the signature existed at genTime: a later SigningTime is false.
        raise SigningTimeInFuture("SigningTime is later than the signature time-stamp")
    return claimed


def _timestamps(
    found: unsigned.Unsigned, covered: Sequence[bytes], trust: unsigned.TimestampTrust | None, received_at: datetime
) -> tuple[TimeStamp, ...]:
    stamps = unsigned.check_timestamps(found, covered, trust, at=received_at)
    return tuple(sorted(stamps, key=lambda t: t.gen_time))


def _c14n_el(signed_info: lxml.etree._Element) -> lxml.etree._Element:
    method = signed_info.find(_C14N_METHOD)
    if method is None:
        raise SignatureInvalid("SignedInfo has no CanonicalizationMethod")
    return method


def check_revocation(
    verified: VerifiedSignature,
    revocation: Revocation | None,
    *,
    received_at: datetime,
    policy: SigningTimePolicy = _DEFAULT_POLICY,
) -> VerifiedSignature:
    """Judge the signer's revocation status (from the caller's source of truth) and extend the report."""
    try:
        note = judge_revocation(revocation, signing_time=verified.signing_time, received_at=received_at, policy=policy)
    except EzlaError as exc:
        raise attach(exc, failed_report(verified.report, Check.REVOCATION, exc)) from None
    detail = "not revoked" if revocation is None or revocation.at > received_at else f"revoked {revocation.reason}"
    report = verified.report.with_check(CheckResult(Check.REVOCATION, Outcome.PASSED, detail), note=note)
    return replace(verified, report=report, revocation=revocation)


def refuse_with_report(verified: VerifiedSignature, check: Check, exc: EzlaError) -> EzlaError:
    """A later rule (say, the doctor's identity) failed: the error carries the report."""
    return attach(exc, failed_report(verified.report, check, exc))

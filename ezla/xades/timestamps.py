"""RFC 3161 time-stamp tokens, verified with bounded cost and our own path validation.

Why our own and not a library: the tokens we meet are bare TimeStampTokens (CMS SignedData over a
TSTInfo) found inside XAdES documents, not whole TimeStampResps, and they arrive from clients, so
their cost must be capped before any work (size, number of certificates) and the TSA's path must be
validated the way every other signer's is, by ``ezla.xades.certificates`` (cached parses and paths,
the same trust roots), at genTime. rfc3161-client verifies whole responses with its own path
building; it stays in the tests as an independent oracle, like signxml for XAdES.

Every failure, including any exception asn1crypto raises on hostile bytes, is ``TimeStampInvalid``.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ezla.errors import EzlaError, TimeStampInvalid
from ezla.xades import certificates
from ezla.xades.certificates import CertInfo

MAX_TOKEN_BYTES = 64 * 1024  # a token with its chain is 2-5 KiB; 64 KiB leaves room, not for abuse
MAX_CERTIFICATES = 8
ACCURACY = timedelta(seconds=1)  # our TSA's; genTime may run this far ahead of ``at``
# Message imprints and CMS digests we accept; SHA-1 and weaker are refused (practical collisions).
HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_SIGNATURE_FAMILIES = {"ecdsa": ec.EllipticCurvePublicKey, "rsassa_pkcs1v15": rsa.RSAPublicKey}
T = TypeVar("T")


@dataclass(frozen=True)
class TimeStamp:
    gen_time: datetime  # tz-aware UTC
    tsa: x509.Certificate
    hash_name: str  # of the message imprint: "sha256", "sha384" or "sha512"
    serial: int
    policy: str


@dataclass(frozen=True)
class _Token:
    """A token whose shape is right: one signer, a version 1 TSTInfo with an imprint we accept."""

    signed_data: Any  # asn1crypto's cms.SignedData (no stubs)
    signer: Any  # cms.SignerInfo
    content: bytes  # the eContent octets: the DER TSTInfo the message-digest attribute covers
    info: Any  # tsp.TSTInfo
    hash_name: str
    signed_attrs: bytes  # what the signature covers: the attributes' DER as a SET OF (RFC 5652 5.4)


def imprint_of(data: bytes, hash_name: str) -> bytes:
    """The message imprint of ``data`` under one of the hashes we accept."""
    if hash_name not in HASHES:
        raise TimeStampInvalid(f"imprint hash {hash_name} is not accepted")
    return hashlib.new(hash_name, data).digest()


def _parse(token: bytes) -> _Token:
    if len(token) > MAX_TOKEN_BYTES:
        raise TimeStampInvalid(f"time-stamp token larger than {MAX_TOKEN_BYTES} bytes")
    content_info = cms.ContentInfo.load(token, strict=True)
    if content_info["content_type"].native != "signed_data":
        raise TimeStampInvalid("time-stamp token is not a CMS SignedData")
    signed_data = content_info["content"]
    if len(signed_data["signer_infos"]) != 1:
        raise TimeStampInvalid("time-stamp token must have exactly one SignerInfo")
    if signed_data["version"].native != "v3":  # RFC 5652 5.1: eContentType other than id-data
        raise TimeStampInvalid("time-stamp SignedData must be version 3")
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TimeStampInvalid("eContentType is not id-ct-TSTInfo")
    if isinstance(encap["content"], core.Void):
        raise TimeStampInvalid("the TSTInfo is detached")
    content = bytes(encap["content"])
    info = tsp.TSTInfo.load(content, strict=True)
    _ = info.native  # asn1crypto parses lazily: fail on any field here, as "unreadable"
    if info["version"].native != "v1":
        raise TimeStampInvalid("TSTInfo version must be 1")
    algorithm = info["message_imprint"]["hash_algorithm"]
    hash_name = algorithm["algorithm"].native
    if hash_name not in HASHES:
        raise TimeStampInvalid(f"message imprint hash {hash_name} is refused")
    if algorithm["parameters"].native is not None:
        raise TimeStampInvalid("message imprint hash has parameters")
    signer = signed_data["signer_infos"][0]
    # Taken before anything reads inside the attributes: asn1crypto then deems them changed and
    # re-encodes them on every dump (16 ms a token, against 0.1 ms for the rest of the check).
    attrs = signer["signed_attrs"]
    signed_attrs = b"" if isinstance(attrs, core.Void) else b"\x31" + attrs.dump()[1:]
    return _Token(signed_data, signer, content, info, str(hash_name), signed_attrs)


def _token_certificates(signed_data: Any) -> list[CertInfo]:
    choices = signed_data["certificates"]
    if isinstance(choices, core.Void):  # absent: the verifier must know the TSA certificate
        return []
    if len(choices) > MAX_CERTIFICATES:
        raise TimeStampInvalid(f"time-stamp token carries more than {MAX_CERTIFICATES} certificates")
    # Through the text cache: one TSA's certificate arrives in thousands of tokens.
    return [certificates.from_base64(b64encode(c.chosen.dump()).decode()) for c in choices if c.name == "certificate"]


def _is_signer(info: CertInfo, sid: Any) -> bool:
    if sid.name == "issuer_and_serial_number":
        wanted = sid.chosen
        if wanted["serial_number"].native != info.cert.serial_number:
            return False
        # Byte equality, not RFC 5280 string preparation (a tenth of a millisecond a name): the
        # TSA writes its issuer's name as that issuer's certificate has it.
        return bool(info.cert.issuer.public_bytes() == wanted["issuer"].untag().dump())
    try:
        ski = info.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(ski == sid.chosen.native)


def _attributes(signer: Any) -> dict[str, Any]:
    """Signed attributes by type, each with its single value (RFC 5652 5.3: one of each we read)."""
    if isinstance(signer["signed_attrs"], core.Void):
        raise TimeStampInvalid("SignerInfo has no signed attributes")
    found: dict[str, Any] = {}
    for attribute in signer["signed_attrs"]:
        kind = attribute["type"].native
        if kind in found or len(attribute["values"]) != 1:
            raise TimeStampInvalid(f"signed attribute {kind} must appear once with one value")
        found[kind] = attribute["values"][0]
    return found


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(HASHES[name]())
    h.update(data)
    return h.finalize()


def _check_signing_certificate(attributes: dict[str, Any], signer: CertInfo) -> None:
    """RFC 5816 / RFC 2634: the first ESSCertID names the signer by hash (and issuer/serial if given)."""
    if "signing_certificate_v2" in attributes:
        first = attributes["signing_certificate_v2"]["certs"][0]
        name = first["hash_algorithm"]["algorithm"].native
        if name not in HASHES:
            raise TimeStampInvalid(f"ESSCertIDv2 hash {name} is refused")
        expected = signer.cert.fingerprint(HASHES[name]())
    elif "signing_certificate" in attributes:
        first = attributes["signing_certificate"]["certs"][0]
        expected = signer.cert.fingerprint(hashes.SHA1())  # noqa: S303  # v1 names by SHA-1 (RFC 2634)
    else:
        raise TimeStampInvalid("no signingCertificateV2 (or signingCertificate) attribute")
    if first["cert_hash"].native != expected:
        raise TimeStampInvalid("signingCertificate does not name the signer certificate")
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None:
        issuer = signer.cert.issuer.public_bytes()
        names = [g.chosen.untag().dump() for g in issuer_serial["issuer"] if g.name == "directory_name"]
        if issuer_serial["serial_number"].native != signer.cert.serial_number or issuer not in names:
            raise TimeStampInvalid("signingCertificate issuerSerial does not name the signer certificate")


def _check_signature(signer_info: Any, signed: bytes, signer: CertInfo, digest_name: str) -> None:
    algorithm = signer_info["signature_algorithm"]
    family = algorithm.signature_algo
    if family not in _SIGNATURE_FAMILIES:
        raise TimeStampInvalid(f"signature algorithm {algorithm['algorithm'].native} is refused")
    if algorithm["algorithm"].native not in _SIGNATURE_FAMILIES and algorithm.hash_algo != digest_name:
        raise TimeStampInvalid("signatureAlgorithm and digestAlgorithm name different hashes")
    key = signer.public_key
    if not isinstance(key, _SIGNATURE_FAMILIES[family]):
        raise TimeStampInvalid("signature algorithm does not fit the TSA certificate's key")
    signature = signer_info["signature"].native
    algorithm_hash = HASHES[digest_name]()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(algorithm_hash))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), algorithm_hash)
    except InvalidSignature:
        raise TimeStampInvalid("the TSA's signature does not verify") from None


def _check_usage(signer: CertInfo) -> None:
    """RFC 3161 2.3: the TSA certificate's EKU is id-kp-timeStamping alone, and critical."""
    try:
        eku = signer.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimeStampInvalid("the signer certificate has no extendedKeyUsage: not a TSA") from None
    if not eku.critical or signer.ekus != {ExtendedKeyUsageOID.TIME_STAMPING}:
        raise TimeStampInvalid("the signer certificate's EKU is not a critical id-kp-timeStamping alone")
    if not signer.signs_documents:
        raise TimeStampInvalid("the signer certificate's keyUsage allows no signature")


def _verify(
    token: _Token,
    imprint: bytes,
    hash_name: str | None,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    tsa_certificates: Sequence[x509.Certificate],
    at: datetime | None,
) -> TimeStamp:
    if hash_name is not None and hash_name != token.hash_name:
        raise TimeStampInvalid(f"the token's imprint is {token.hash_name}, not {hash_name}")
    if token.info["message_imprint"]["hashed_message"].native != imprint:
        raise TimeStampInvalid("the message imprint does not match the time-stamped data")

    carried = _token_certificates(token.signed_data)
    sid = token.signer["sid"]
    # RFC 5652 5.3: version 1 names the signer by issuer and serial, version 3 by key identifier.
    if token.signer["version"].native != ("v1" if sid.name == "issuer_and_serial_number" else "v3"):
        raise TimeStampInvalid("SignerInfo version does not fit its signer identifier")
    signer = next((c for c in (*carried, *certificates.infos_of(tsa_certificates)) if _is_signer(c, sid)), None)
    if signer is None:
        raise TimeStampInvalid("the TSA certificate is neither in the token nor among the known TSA certificates")

    attributes = _attributes(token.signer)
    if attributes.get("content_type") is None or attributes["content_type"].native != "tst_info":
        raise TimeStampInvalid("the content-type attribute is not id-ct-TSTInfo")
    digest_algorithm = token.signer["digest_algorithm"]
    digest_name = digest_algorithm["algorithm"].native
    if digest_name not in HASHES or digest_algorithm["parameters"].native is not None:
        raise TimeStampInvalid(f"SignerInfo digest algorithm {digest_name} is refused")
    if attributes.get("message_digest") is None or attributes["message_digest"].native != _digest(
        digest_name, token.content
    ):
        raise TimeStampInvalid("the message-digest attribute does not match the TSTInfo")
    _check_signing_certificate(attributes, signer)
    certificates.check_key(signer)
    _check_signature(token.signer, token.signed_attrs, signer, digest_name)
    _check_usage(signer)

    gen_time = token.info["gen_time"].native
    if not isinstance(gen_time, datetime) or gen_time.tzinfo is None:
        raise TimeStampInvalid("genTime is not a UTC GeneralizedTime")
    gen_time = gen_time.astimezone(UTC)
    extra = (*certificates.infos_of(intermediates), *(c for c in carried if c is not signer))
    certificates.check_path(signer, extra, certificates.infos_of(trust_roots), at=gen_time)
    if at is not None and gen_time > at + ACCURACY:
        raise TimeStampInvalid(f"genTime {gen_time.isoformat()} is later than {at.isoformat()}")
    return TimeStamp(
        gen_time, signer.cert, token.hash_name, int(token.info["serial_number"].native), token.info["policy"].dotted
    )


def _guarded(run: Callable[[], T]) -> T:
    """Hostile bytes make asn1crypto raise anything (ValueError, TypeError, KeyError, RecursionError):
    callers see TimeStampInvalid only, and our other refusals (an untrusted path) as its detail."""
    try:
        return run()
    except TimeStampInvalid:
        raise
    except EzlaError as exc:  # CertificateUntrusted, an unreadable certificate, a weak key ...
        raise TimeStampInvalid(f"{exc.code}: {exc.detail}") from None
    except Exception as exc:
        raise TimeStampInvalid(f"unreadable time-stamp token: {type(exc).__name__}") from None


def verify_token(
    token: bytes,
    *,
    imprint: bytes,
    hash_name: str | None = None,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    tsa_certificates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
) -> TimeStamp:
    """Verify a DER TimeStampToken over ``imprint`` (the time-stamped data's digest, by the token's
    hash, which ``hash_name`` pins if given); the TSA's path must be valid at genTime and genTime
    not later than ``at``."""
    return _guarded(
        lambda: _verify(_parse(token), imprint, hash_name, trust_roots, intermediates, tsa_certificates, at)
    )


def verify_token_over(
    token: bytes,
    *,
    data: bytes,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    tsa_certificates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
) -> TimeStamp:
    """``verify_token`` over ``data`` itself, hashed with the token's own imprint algorithm."""

    def run() -> TimeStamp:
        parsed = _parse(token)
        imprint = imprint_of(data, parsed.hash_name)
        return _verify(parsed, imprint, None, trust_roots, intermediates, tsa_certificates, at)

    return _guarded(run)

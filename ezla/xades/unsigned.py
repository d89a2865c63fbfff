"""The unsigned properties ezla reads and writes: XAdES-T and the LT ingredients.

ETSI EN 319 132-1 (XAdES baseline): B-T adds a ``SignatureTimeStamp`` over the canonicalised
``ds:SignatureValue``; B-LT adds the certificates (``CertificateValues``) and the revocation data
(``RevocationValues``: OCSP responses) needed to validate the signature after the signer's
certificate has expired or been revoked. Nothing else unsigned is accepted: any other element, or
more of these than a signature needs, is refused, so what is stored stays what was checked.

The verifier reads them (``read``) and checks every time-stamp (``check_timestamps``); the service
adds its own (``add``) to receipts and to accepted e-ZLA.
"""

from __future__ import annotations

import hashlib
from base64 import b64decode, b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import lxml.etree
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ezla.errors import TimeStampInvalid, UnsignedPropertiesRefused
from ezla.xades.algorithms import C14N_1_0, DS, XADES, C14n, c14n_method, canonicalize
from ezla.xades.parsing import parse_xml
from ezla.xades.timestamps import TimeStamp, verify_token_over

MAX_TIMESTAMPS = 4
MAX_CERTIFICATE_VALUES = 8
MAX_OCSP_VALUES = 4

UNSIGNED_PROPS = f"{{{XADES}}}UnsignedProperties"
_USP = f"{{{XADES}}}UnsignedSignatureProperties"
_SIGNATURE_TIMESTAMP = f"{{{XADES}}}SignatureTimeStamp"
_ENCAPSULATED_TIMESTAMP = f"{{{XADES}}}EncapsulatedTimeStamp"
_CERTIFICATE_VALUES = f"{{{XADES}}}CertificateValues"
_ENCAPSULATED_CERT = f"{{{XADES}}}EncapsulatedX509Certificate"
_REVOCATION_VALUES = f"{{{XADES}}}RevocationValues"
_OCSP_VALUES = f"{{{XADES}}}OCSPValues"
_ENCAPSULATED_OCSP = f"{{{XADES}}}EncapsulatedOCSPValue"
_C14N_METHOD = f"{{{DS}}}CanonicalizationMethod"
_QUALIFYING = f"{{{XADES}}}QualifyingProperties"
_SIGNATURE = f"{{{DS}}}Signature"
_SIGNATURE_VALUE = f"{{{DS}}}SignatureValue"
_DEFAULT = (C14n(exclusive=False, with_comments=False), None)


@dataclass(frozen=True)
class TimestampTrust:
    """Whose time-stamps are believed: the TSA roots, and intermediates to reach them."""

    roots: Sequence[x509.Certificate]
    intermediates: Sequence[x509.Certificate] = ()


@dataclass(frozen=True)
class SignatureTimestamp:
    token: bytes
    c14n: tuple[C14n, list[str] | None]


@dataclass(frozen=True)
class Unsigned:
    timestamps: tuple[SignatureTimestamp, ...] = ()
    certificates: tuple[bytes, ...] = ()  # DER
    ocsp_responses: tuple[bytes, ...] = ()  # DER OCSPResponse


def _b64(text: str | None) -> bytes:
    try:
        return b64decode("".join((text or "").split()), validate=True)
    except ValueError:
        raise UnsignedPropertiesRefused("an encapsulated value is not base64") from None


def _only(el: lxml.etree._Element, tag: str, limit: int) -> list[lxml.etree._Element]:
    children = list(el)
    if (el.text or "").strip() or any((c.tail or "").strip() for c in children):
        raise UnsignedPropertiesRefused(f"unexpected text inside {etree.QName(el).localname}")
    if any(c.tag != tag for c in children) or not 1 <= len(children) <= limit:
        raise UnsignedPropertiesRefused(f"{etree.QName(el).localname} holds 1..{limit} {etree.QName(tag).localname}")
    return children


_ATTRIBUTES: dict[str, set[str]] = {_C14N_METHOD: {"Algorithm"}, _ENCAPSULATED_TIMESTAMP: {"Id", "Encoding"}}


def _plain_attributes(unsigned: lxml.etree._Element) -> None:
    """Only an Id (and a c14n Algorithm, an Encoding): no unsigned text rides along in attributes."""
    for el in unsigned.iter():
        allowed = _ATTRIBUTES.get(el.tag, {"Id"})
        if any(str(name) not in allowed for name in el.attrib):
            raise UnsignedPropertiesRefused(f"unexpected attribute on {etree.QName(el).localname}")


def read(unsigned: lxml.etree._Element) -> Unsigned:
    """The time-stamps, certificates and OCSP responses of an ``UnsignedProperties``; refuses
    anything else (counter-signatures, archive time-stamps, prose, other documents)."""
    _plain_attributes(unsigned)
    usp = _only(unsigned, _USP, 1)[0]
    if (usp.text or "").strip():
        raise UnsignedPropertiesRefused("unexpected text inside UnsignedSignatureProperties")
    timestamps: list[SignatureTimestamp] = []
    certificates: list[bytes] = []
    responses: list[bytes] = []
    for prop in usp:
        if (prop.tail or "").strip():
            raise UnsignedPropertiesRefused("unexpected text inside UnsignedSignatureProperties")
        if prop.tag == _SIGNATURE_TIMESTAMP:
            parts = list(prop)
            methods = [p for p in parts if p.tag == _C14N_METHOD]
            tokens = [p for p in parts if p.tag == _ENCAPSULATED_TIMESTAMP]
            if len(tokens) != 1 or len(methods) > 1 or len(parts) != len(tokens) + len(methods):
                raise UnsignedPropertiesRefused("a SignatureTimeStamp holds one EncapsulatedTimeStamp")
            timestamps.append(
                SignatureTimestamp(_b64(tokens[0].text), c14n_method(methods[0]) if methods else _DEFAULT)
            )
        elif prop.tag == _CERTIFICATE_VALUES:
            certificates += [_b64(c.text) for c in _only(prop, _ENCAPSULATED_CERT, MAX_CERTIFICATE_VALUES)]
        elif prop.tag == _REVOCATION_VALUES:
            ocsp_values = _only(prop, _OCSP_VALUES, 1)[0]
            responses += [_b64(c.text) for c in _only(ocsp_values, _ENCAPSULATED_OCSP, MAX_OCSP_VALUES)]
        else:
            raise UnsignedPropertiesRefused(f"{etree.QName(prop).localname} is not accepted")
    if (
        len(timestamps) > MAX_TIMESTAMPS
        or len(certificates) > MAX_CERTIFICATE_VALUES
        or len(responses) > MAX_OCSP_VALUES
    ):
        raise UnsignedPropertiesRefused("more time-stamps, certificates or OCSP responses than a signature needs")
    return Unsigned(tuple(timestamps), tuple(certificates), tuple(responses))


def signature_value_octets(signature_value: lxml.etree._Element, c14n: tuple[C14n, list[str] | None]) -> bytes:
    """What a signature time-stamp covers: the canonicalised ds:SignatureValue element, in place
    (EN 319 132-1 5.3)."""
    return canonicalize(signature_value, *c14n)


def covered_octets(unsigned: Unsigned, signature_value: lxml.etree._Element) -> tuple[bytes, ...]:
    """What each time-stamp covers, computed while the signature is still in its document
    (inclusive c14n takes the namespaces in scope there)."""
    return tuple(signature_value_octets(signature_value, ts.c14n) for ts in unsigned.timestamps)


def check_timestamps(
    unsigned: Unsigned, covered: Sequence[bytes], trust: TimestampTrust | None, *, at: datetime
) -> tuple[TimeStamp, ...]:
    """Every signature time-stamp must verify over this signature's value (``covered_octets``)
    and chain to a trusted TSA; one that does not is refused, never ignored."""
    if not unsigned.timestamps:
        return ()
    if trust is None:
        raise TimeStampInvalid("the document carries a signature time-stamp, and no TSA is trusted here")
    return tuple(
        verify_token_over(ts.token, data=octets, trust_roots=trust.roots, intermediates=trust.intermediates, at=at)
        for ts, octets in zip(unsigned.timestamps, covered, strict=True)
    )


def _signature(root: lxml.etree._Element) -> lxml.etree._Element:
    sig = root[-1] if len(root) else None
    if sig is None or sig.tag != _SIGNATURE:
        raise UnsignedPropertiesRefused("no ds:Signature as the root's last child")
    return sig


def add(
    xml: bytes,
    *,
    stamp: Callable[[bytes], bytes] | None = None,
    certificates: Sequence[x509.Certificate] = (),
    ocsp_responses: Sequence[bytes] = (),
) -> bytes:
    """The signed document with unsigned properties appended to its signature: a time-stamp over
    its SignatureValue from ``stamp`` (SHA-256 digest in, DER TimeStampToken out), then the
    certificate and revocation values. The signed parts are not touched, byte for byte."""
    root = parse_xml(xml)
    sig = _signature(root)
    qp = sig.find(f"{{{DS}}}Object/{_QUALIFYING}")
    signature_value = sig.find(_SIGNATURE_VALUE)
    if qp is None or signature_value is None:
        raise UnsignedPropertiesRefused("the signature has no XAdES QualifyingProperties")
    unsigned = qp.find(UNSIGNED_PROPS)
    if unsigned is None:
        unsigned = etree.SubElement(qp, UNSIGNED_PROPS)
        etree.SubElement(unsigned, _USP)
    usp = unsigned[0]
    if stamp is not None:
        ts = etree.SubElement(usp, _SIGNATURE_TIMESTAMP)
        etree.SubElement(ts, _C14N_METHOD, Algorithm=C14N_1_0)
        token = stamp(hashlib.sha256(signature_value_octets(signature_value, _DEFAULT)).digest())
        etree.SubElement(ts, _ENCAPSULATED_TIMESTAMP).text = b64encode(token).decode()
    if certificates:
        values = etree.SubElement(usp, _CERTIFICATE_VALUES)
        for cert in certificates:
            etree.SubElement(values, _ENCAPSULATED_CERT).text = b64encode(cert.public_bytes(Encoding.DER)).decode()
    if ocsp_responses:
        ocsp_values = etree.SubElement(etree.SubElement(usp, _REVOCATION_VALUES), _OCSP_VALUES)
        for response in ocsp_responses:
            etree.SubElement(ocsp_values, _ENCAPSULATED_OCSP).text = b64encode(response).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

"""The XML-DSig algorithms we accept, and canonicalisation through libxml2 (lxml).

Only what a modern signer uses: SHA-2/SHA-3 digests, RSA PKCS#1 v1.5 / PSS and ECDSA with SHA-2.
Anything spelled with SHA-1, MD5 or SHA-224 is refused as weak (matched on the URI, so unknown
spellings are caught too); anything else unknown is refused as unsupported.

Canonical XML 1.1 is canonicalised as 1.0, as signxml does: lxml exposes no 1.1 mode and the two
differ only in how xml:id and xml:base are inherited into a subset apex; xml:lang and xml:space are
carried onto the apex for both (``canonicalize``), and xml:base above a signed subtree is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import lxml.etree
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from lxml import etree

from ezla.errors import SignatureAlgorithmWeak, SignatureInvalid, XmlMalformed

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

T = TypeVar("T")
WEAK_MARKERS = ("sha1", "md5", "sha224", "sha3-224", "ripemd")


@dataclass(frozen=True)
class C14n:
    exclusive: bool
    with_comments: bool


C14N_METHODS: dict[str, C14n] = {
    C14N_1_0: C14n(exclusive=False, with_comments=False),
    C14N_1_0 + "#WithComments": C14n(exclusive=False, with_comments=True),
    "http://www.w3.org/2006/12/xml-c14n11": C14n(exclusive=False, with_comments=False),
    "http://www.w3.org/2006/12/xml-c14n11#WithComments": C14n(exclusive=False, with_comments=True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": C14n(exclusive=True, with_comments=False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": C14n(exclusive=True, with_comments=True),
}
DEFAULT_C14N = C14N_METHODS[C14N_1_0]  # XML-DSig 4.4.3.2: a same-document node-set becomes c14n 1.0 octets

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": lambda b: hashlib.sha256(b).digest(),
    "http://www.w3.org/2001/04/xmldsig-more#sha384": lambda b: hashlib.sha384(b).digest(),
    "http://www.w3.org/2001/04/xmlenc#sha512": lambda b: hashlib.sha512(b).digest(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-256": lambda b: hashlib.sha3_256(b).digest(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-384": lambda b: hashlib.sha3_384(b).digest(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-512": lambda b: hashlib.sha3_512(b).digest(),
}
CERT_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256(),
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384(),
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-256": hashes.SHA3_256(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-384": hashes.SHA3_384(),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-512": hashes.SHA3_512(),
}


@dataclass(frozen=True, eq=False)  # built once per URI below; cached_property needs a __dict__
class SignatureMethod:
    key_type: str  # "rsa" | "ec"
    hash: hashes.HashAlgorithm
    pss: bool = False

    @cached_property
    def ecdsa(self) -> ec.ECDSA:
        return ec.ECDSA(self.hash)

    @cached_property
    def rsa_padding(self) -> padding.AsymmetricPadding:
        if self.pss:  # RFC 9231 2.3.10: MGF1 with the same hash, salt as long as the digest
            return padding.PSS(mgf=padding.MGF1(self.hash), salt_length=self.hash.digest_size)
        return padding.PKCS1v15()


_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_MORE07 = "http://www.w3.org/2007/05/xmldsig-more#"
SIGNATURE_METHODS: dict[str, SignatureMethod] = {
    _MORE + "rsa-sha256": SignatureMethod("rsa", hashes.SHA256()),
    _MORE + "rsa-sha384": SignatureMethod("rsa", hashes.SHA384()),
    _MORE + "rsa-sha512": SignatureMethod("rsa", hashes.SHA512()),
    _MORE + "ecdsa-sha256": SignatureMethod("ec", hashes.SHA256()),
    _MORE + "ecdsa-sha384": SignatureMethod("ec", hashes.SHA384()),
    _MORE + "ecdsa-sha512": SignatureMethod("ec", hashes.SHA512()),
    _MORE07 + "sha256-rsa-MGF1": SignatureMethod("rsa", hashes.SHA256(), pss=True),
    _MORE07 + "sha384-rsa-MGF1": SignatureMethod("rsa", hashes.SHA384(), pss=True),
    _MORE07 + "sha512-rsa-MGF1": SignatureMethod("rsa", hashes.SHA512(), pss=True),
}


def is_weak(uri: str) -> bool:
    lowered = uri.lower()
    return any(marker in lowered for marker in WEAK_MARKERS)


def _known(table: dict[str, T], uri: str, what: str) -> T:
    found = table.get(uri)
    if found is None:
        if is_weak(uri):
            raise SignatureAlgorithmWeak("SHA-1/MD5/SHA-224 are refused")
        raise SignatureInvalid(f"unsupported {what} {uri!r}")
    return found


def signature_method(uri: str) -> SignatureMethod:
    return _known(SIGNATURE_METHODS, uri, "SignatureMethod")


def digest_function(uri: str) -> Callable[[bytes], bytes]:
    return _known(DIGESTS, uri, "DigestMethod")


def c14n_method(el: lxml.etree._Element) -> tuple[C14n, list[str] | None]:
    """The c14n named by a CanonicalizationMethod or Transform element, with its PrefixList."""
    method = C14N_METHODS.get(el.get("Algorithm") or "")
    if method is None:
        raise SignatureInvalid(f"unsupported canonicalization {el.get('Algorithm')!r}")
    prefixes = None
    if method.exclusive:
        inclusive = el.find(f"{{{EXC_C14N_NS}}}InclusiveNamespaces")
        if inclusive is not None:
            prefixes = (inclusive.get("PrefixList") or "").split()
    return method, prefixes


XML_NS = "{http://www.w3.org/XML/1998/namespace}"
INHERITED_XML_ATTRIBUTES = (XML_NS + "lang", XML_NS + "space")


def canonicalize(el: lxml.etree._Element, method: C14n, prefixes: list[str] | None, *, inherit: bool = False) -> bytes:
    """libxml2's c14n of the subtree at ``el``; inclusive c14n carries the ancestors' namespaces.

    Inclusive c14n of a subtree also carries the ancestors' xml:lang and xml:space onto its apex
    (Canonical XML 1.0 section 2.4, 1.1 alike); lxml's subtree c14n does not, so with ``inherit``
    they are lent to the apex for the call. (xml:id and xml:base inherit differently in 1.0 and
    1.1: the verifier refuses them above a signed subtree.)"""
    lent = _inherited_xml_attributes(el) if inherit and not method.exclusive else []
    for name, value in lent:
        el.set(name, value)
    try:
        return etree.tostring(
            el,
            method="c14n",
            exclusive=method.exclusive,
            with_comments=method.with_comments,
            inclusive_ns_prefixes=prefixes,
        )
    except etree.C14NError as exc:  # e.g. a relative namespace URI, which c14n refuses
        raise XmlMalformed(f"the document cannot be canonicalised: {exc}") from None
    finally:
        for name, _ in lent:
            del el.attrib[name]


def _inherited_xml_attributes(el: lxml.etree._Element) -> list[tuple[str, str]]:
    lent: dict[str, str] = {}
    for ancestor in el.iterancestors():
        for name in INHERITED_XML_ATTRIBUTES:
            value = ancestor.get(name)
            if value is not None and name not in lent and el.get(name) is None:
                lent[name] = value
    return list(lent.items())


# id-kp-documentSigning (RFC 9336): the EKU an e-ZLA signer's certificate must carry.
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

"""Hostile variants of one genuinely signed e-ZLA: well-formed XML built to make a verifier work.

Every function takes the signed document (bytes) and a size ``n`` and returns new bytes that are
still well-formed XML (none of them is a valid signature any more). The edits are made on the bytes
by splitting strings, not through a parser, so a variant is exactly what an attacker would post and
the functions stay readable. They rely on the shape our signers write: an XML declaration, the root
element with the e-ZLA namespace as default namespace, and one prefixed enveloped signature
(``<ds:Signature``) as the root's last child.

``bench/verify_bench.py`` times how long a verifier takes to refuse each variant next to the time to
merely hash and parse the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# The root's start tag: the first "<" that opens neither the XML declaration/a PI ("<?") nor a
# comment/DOCTYPE ("<!"); group 1 ends where the root's attributes may be inserted.
_ROOT_START = re.compile(rb"<(?![?!])[^\s/>]+")
# The enveloped signature's start tag, with or without a prefix ("Signature" then space or ">",
# so SignatureValue and SignatureMethod never match).
_SIGNATURE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Signature[\s>]")
_SIGNATURE_VALUE = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?SignatureValue[^>]*>)[^<]*(</)")
_REFERENCE = re.compile(rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)Reference[\s>].*?</(?P=p)Reference>", re.DOTALL)
_ID_ATTRIBUTE = re.compile(rb'\sId="[^"]*"')
# Text content between a start tag and the next tag that is not only whitespace.
_TEXT = re.compile(rb">([^<]*[^<\s][^<]*)<")


def _search(pattern: re.Pattern[bytes], data: bytes, what: str, pos: int = 0) -> re.Match[bytes]:
    found = pattern.search(data, pos)
    if found is None:
        raise ValueError(f"no {what} in the base document")
    return found


def _root_attributes_at(data: bytes) -> int:
    """Offset just after the root element's name: where extra attributes go."""
    return _search(_ROOT_START, data, "root element").end()


def _signature_at(data: bytes) -> int:
    """Offset of the enveloped signature's start tag: extra root children go just before it."""
    return _search(_SIGNATURE, data, "ds:Signature").start()


def _insert(data: bytes, at: int, piece: bytes) -> bytes:
    return data[:at] + piece + data[at:]


def namespace_flood(base: bytes, n: int) -> bytes:
    """The root element with n extra declarations xmlns:pN="urn:x:N"."""
    decls = b"".join(b' xmlns:p%d="urn:x:%d"' % (i, i) for i in range(n))
    return _insert(base, _root_attributes_at(base), decls)


def attribute_flood(base: bytes, n: int) -> bytes:
    """The root element with n extra attributes aN="v"."""
    attributes = b"".join(b' a%d="v"' % i for i in range(n))
    return _insert(base, _root_attributes_at(base), attributes)


def wide_tree(base: bytes, n: int) -> bytes:
    """n empty <x/> children of the root (default namespace: e-ZLA) just before ds:Signature."""
    return _insert(base, _signature_at(base), b"<x/>" * n)


def deep_tree(base: bytes, n: int) -> bytes:
    """n nested <x> elements (e-ZLA namespace) just before ds:Signature."""
    return _insert(base, _signature_at(base), b"<x>" * n + b"</x>" * n)


def long_base64(base: bytes, n: int) -> bytes:
    """The SignatureValue text replaced by n characters of base64 (rounded down to a multiple of 4)."""
    text = b"QUJD" * (n // 4)  # "ABC" repeated: decodes fine, verifies never
    found = _search(_SIGNATURE_VALUE, base, "ds:SignatureValue")
    return base[: found.end(1)] + text + base[found.start(2) :]


def many_references(base: bytes, n: int) -> bytes:
    """n extra copies of the last ds:Reference (to this signature's own properties, so each one is in
    scope) right after it in SignedInfo: n more canonicalisations for a verifier that does them."""
    found = list(_REFERENCE.finditer(base, _signature_at(base)))
    if not found:
        raise ValueError("no ds:Reference in the base document")
    last = found[-1]
    copy = _ID_ATTRIBUTE.sub(b"", last.group(0))
    return _insert(base, last.end(), copy * n)


def long_text(base: bytes, n: int) -> bytes:
    """The text of the first text-bearing element of the e-ZLA replaced by n characters."""
    found = _search(_TEXT, base, "text-bearing element", _root_attributes_at(base))
    return base[: found.start(1)] + b"1" * n + base[found.end(1) :]


def namespace_flood_nested(base: bytes, n: int) -> bytes:
    """n nested elements <pN:x xmlns:pN="urn:x:N">, each declaring one new namespace, before ds:Signature."""
    opening = b"".join(b'<p%d:x xmlns:p%d="urn:x:%d">' % (i, i, i) for i in range(n))
    closing = b"".join(b"</p%d:x>" % i for i in reversed(range(n)))
    return _insert(base, _signature_at(base), opening + closing)


CORPUS: dict[str, Callable[[bytes, int], bytes]] = {
    "namespace_flood": namespace_flood,
    "attribute_flood": attribute_flood,
    "wide_tree": wide_tree,
    "deep_tree": deep_tree,
    "long_base64": long_base64,
    "many_references": many_references,
    "long_text": long_text,
    "namespace_flood_nested": namespace_flood_nested,
}

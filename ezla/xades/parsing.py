"""Hardened XML parsing whose cost is bounded by the size of the input, for any input.

Why the limits come before libxml2 and before any canonicalisation: Canonical XML writes every
in-scope namespace on every apex element, so c14n of SignedInfo under a root with N namespace
declarations costs O(N) per element and O(N^2) overall (20,000 declarations took 35 s). An e-ZLA
needs a handful of namespaces, about a hundred elements, three attributes on its busiest element
and no text longer than a certificate, so the limits below are generous for every genuine
document and tiny for every flood.

Two passes, both linear:
1. raw byte counts (``bytes.count`` runs in C at memory speed): upper bounds on elements (``<``),
   namespace declarations (``xmlns``) and attributes (``=``) refuse floods before libxml2 sees them;
   the longest run without ``<`` bounds every text node and attribute value;
2. on the parsed tree, depth (one XPath, in C), attributes per element and namespaces in scope,
   and no comments, PIs or entities: none of them is ever covered by a signature, so a document
   carrying one would store content nobody signed.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass

import lxml.etree
from lxml import etree

from ezla.errors import (
    PayloadTooLarge,
    XmlForbiddenConstruct,
    XmlMalformed,
    XmlTextTooLong,
    XmlTooDeep,
    XmlTooManyAttributes,
    XmlTooManyElements,
    XmlTooManyNamespaces,
)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1_000_000
    max_depth: int = 32
    max_elements: int = 512  # bounded by tags (2 x this many "<"); a full e-ZLA with 3 certificates: ~130
    max_attributes: int = 8  # per element, namespace declarations not counted (ds:Reference has 3)
    max_namespaces: int = 32  # in scope at any element
    max_namespace_declarations: int = 64  # in the whole document
    max_text: int = 16_384  # bytes in one text node or attribute value (a base64 RSA-4096 certificate: ~2,000)


LIMITS = Limits()
MAX_XML_BYTES = LIMITS.max_bytes
MAX_DEPTH = LIMITS.max_depth

_local = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            encoding="utf-8",  # whatever the declaration says: see _check_declared_encoding
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,  # refused below, not silently dropped
            remove_pis=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


_ID_NAMES = frozenset(("Id", "ID", "id"))


@dataclass(frozen=True)
class ParsedXml:
    root: lxml.etree._Element
    ids: dict[str, list[lxml.etree._Element]]  # every Id/ID/id attribute (any namespace) -> elements


_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8_NAMES = frozenset((b"utf-8", b"utf8", b"us-ascii", b"ascii"))


def _check_declared_encoding(data: bytes) -> None:
    """Only UTF-8 (ASCII being a subset). Any other encoding libxml2 knows could spell the markup the
    byte-level limits count in other bytes: UTF-7 writes '<' as '+ADw-'. The parser is also told to
    read UTF-8 whatever the document says."""
    found = _DECLARATION.match(data[:200])
    if found is not None and found.group(1).lower() not in _UTF8_NAMES:
        raise XmlMalformed(f"only UTF-8 is accepted, not {found.group(1).decode('ascii', 'replace')[:20]}")


def _prescan(data: bytes, limits: Limits) -> int:
    """The byte-level limits; returns how many namespace declarations the document has."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"XML larger than {limits.max_bytes} bytes")
    if b"\x00" in data:
        # UTF-16/32 would hide every marker below from the byte counts; e-ZLA are UTF-8.
        if any(m.encode(enc) in data for m in ("<!DOCTYPE", "<!ENTITY") for enc in ("utf-16-le", "utf-16-be")):
            raise XmlForbiddenConstruct("DOCTYPE/ENTITY declarations are refused")
        raise XmlMalformed("only UTF-8 is accepted")
    _check_declared_encoding(data)
    if b"<!" in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise XmlForbiddenConstruct("DOCTYPE/ENTITY declarations are refused")
    # Every element has at least one '<' (so do closing tags): an exact-enough bound, in C.
    if data.count(b"<") > 2 * limits.max_elements:
        _refuse_flood(data, limits)
    declarations = data.count(b"xmlns")
    if declarations > limits.max_namespace_declarations:
        raise XmlTooManyNamespaces(f"more than {limits.max_namespace_declarations} namespace declarations")
    if data.count(b"=") > 2 * limits.max_elements:
        raise XmlTooManyAttributes("more attributes than any document of this kind has")
    # Text, CDATA and attribute values never contain a raw '<': a longer run is a longer value.
    if len(data) > limits.max_text and max(map(len, data.split(b"<"))) > limits.max_text:
        raise XmlTextTooLong(f"a text node or attribute value is longer than {limits.max_text} bytes")
    return declarations


def _refuse_flood(data: bytes, limits: Limits) -> None:
    """Too many tags: say whether the tree is too deep or too wide, whichever shows first. Small
    chunks bound the work to about ``max_elements`` events plus one chunk, whatever the size."""
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False)
    depth = count = 0

    def drain() -> None:
        nonlocal depth, count
        for event, _ in parser.read_events():
            if event == "end":
                depth -= 1
                continue
            depth, count = depth + 1, count + 1
            if depth > limits.max_depth:
                raise XmlTooDeep(f"XML nested deeper than {limits.max_depth}")
            if count > limits.max_elements:
                raise XmlTooManyElements(f"more than {limits.max_elements} elements")

    try:
        for start in range(0, len(data), 4096):
            parser.feed(data[start : start + 4096])
            drain()
    except etree.XMLSyntaxError as exc:
        drain()  # the events before the error still tell depth from width
        if "depth" in str(exc).lower():
            raise XmlTooDeep(f"XML nested deeper than {limits.max_depth}") from None
    raise XmlTooManyElements(f"more than {limits.max_elements} elements")


def _walk(root: lxml.etree._Element, limits: Limits, declarations: int) -> dict[str, list[lxml.etree._Element]]:
    """The exact per-element limits, in one pass that also indexes Id attributes for the verifier."""
    if _too_deep(limits.max_depth)(root):
        raise XmlTooDeep(f"XML nested deeper than {limits.max_depth}")
    # Cheap in C, so not left to the byte scan alone: defence in depth against any encoding trick.
    outside = (*root.itersiblings(preceding=True), *root.itersiblings())
    if outside or any(True for _ in root.iter(etree.Comment, etree.PI, etree.Entity)):
        raise XmlForbiddenConstruct("comments and processing instructions are refused: no signature covers them")
    if declarations > limits.max_namespaces and any(len(el.nsmap) > limits.max_namespaces for el in root.iter()):
        raise XmlTooManyNamespaces(f"more than {limits.max_namespaces} namespaces in scope")
    ids: dict[str, list[lxml.etree._Element]] = {}
    most = limits.max_attributes
    for el in root.iter():  # the verifier's hottest Python loop: keep it plain
        names = el.keys()
        if names:
            if len(names) > most:
                raise XmlTooManyAttributes(f"more than {most} attributes on one element")
            for name in names:
                if name in _ID_NAMES or (name[0] == "{" and str(name).rpartition("}")[2] in _ID_NAMES):
                    ids.setdefault(str(el.get(name)), []).append(el)
    return ids


@functools.cache
def _too_deep(max_depth: int) -> etree.XPath:
    """An element at depth max_depth + 1 exists: libxml2 walks the levels in C."""
    return etree.XPath("boolean(/*" + "/*" * max_depth + ")")


def parse_document(data: bytes, *, limits: Limits = LIMITS) -> ParsedXml:
    """Parse untrusted XML: no DTD, entities, PIs or comments; bounded size, depth, width and text."""
    declarations = _prescan(data, limits)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if "depth" in str(exc).lower() or "nested too deep" in str(exc).lower():
            raise XmlTooDeep(f"XML nested deeper than {limits.max_depth}") from None
        raise XmlMalformed(f"XML not well-formed: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise XmlForbiddenConstruct("DOCTYPE declarations are refused")
    return ParsedXml(root, _walk(root, limits, declarations))


def parse_xml(data: bytes, *, limits: Limits = LIMITS) -> lxml.etree._Element:
    return parse_document(data, limits=limits).root

"""The e-ZLA XML schema (``xsd/sickleave.xsd``, namespace ``urn:ezla:sick-leave:1``) and
validation whose errors name elements but never quote their values (they may be personal data)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources
from typing import Final

from lxml import etree

from ezla.errors import SchemaInvalid

NS: Final = "urn:ezla:sick-leave:1"
DSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"


@lru_cache(maxsize=1)
def schema_source() -> bytes:
    """The XSD as published (``GET /v1/xsd/sickleave.xsd``)."""
    return resources.files("ezla.document").joinpath("xsd/sickleave.xsd").read_bytes()


# lxml keeps the error log on the XMLSchema object and validates without the GIL, so one shared
# instance would mix up concurrent callers' errors: one compiled schema per thread instead.
_local = threading.local()
# Compiling is not safe in parallel: many threads compiling at once (a registry's first burst)
# made libxml2 fail with XMLSchemaParseError. Each thread compiles once, one at a time.
_compiling = threading.Lock()


def load_schema() -> etree.XMLSchema:
    """The compiled e-ZLA schema (cached per thread)."""
    schema: etree.XMLSchema | None = getattr(_local, "schema", None)
    if schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        with _compiling:
            schema = etree.XMLSchema(etree.fromstring(schema_source(), parser=parser))
        _local.schema = schema
    return schema


_QUOTED = re.compile(r"'([^']*)'")
_KEEP_AFTER = ("element ", "attribute ", "facet ", "type ", "pattern ", "length of ", "content type is ")
_SET_MARK = " of the set {'"  # enumeration sets come last and from the schema, not the document
_ELEMENT_PREFIX = re.compile(r"^Element '[^'{]*': ")  # only ours: a foreign namespace stays visible
_STEP = re.compile(r"^(?:[\w.-]+:)?([\w.-]+|\*)(?:\[(\d+)\])?$")


def _scrub(message: str, values: set[str]) -> str:
    """Drop document values from a libxml2 message, keep element/attribute/type names.

    libxml2 quotes the offending value ("The value 'Kowalski' ...", "'x' is not a valid value");
    that may be personal data. The offending node's own values are cut first (they may contain
    quotes themselves, as in O'Brien); then anything still quoted goes unless the words before it
    say it is a name, a facet, a schema pattern or a length.
    """
    cut = message.rfind(_SET_MARK)
    head, tail = (
        (message, "") if cut < 0 else (message[: cut + len(" of the set ")], message[cut + len(" of the set ") :])
    )
    for v in sorted(values, key=len, reverse=True):
        head = head.replace(f"'{v}'", "'…'")

    def repl(m: re.Match[str]) -> str:
        return m.group(0) if head[: m.start()].lower().endswith(_KEEP_AFTER) else "'…'"

    return (_QUOTED.sub(repl, head) + tail).replace("{" + NS + "}", "").strip()


def _locate(root: etree._Element, xpath: str | None) -> etree._Element | None:
    """The element libxml2's positional path (``/*/*[4]/*[2]``) points at.

    The path is relative to the validated element (lxml validates a non-root element as if it
    were the root), so it is walked by hand instead of evaluated on the real tree.
    """
    if not xpath or not xpath.startswith("/"):
        return None
    node = root
    for step in xpath.split("/")[2:]:
        m = _STEP.match(step)
        if m is None:
            return None
        name, index = m.group(1), int(m.group(2) or 1)
        children = [c for c in node if isinstance(c.tag, str) and (name == "*" or etree.QName(c).localname == name)]
        if index > len(children):
            return None
        node = children[index - 1]
    return node


def _node_values(node: etree._Element) -> set[str]:
    raw = [str(node.xpath("string()")), *node.attrib.values()]
    return {form for v in raw for form in (v, v.strip(), " ".join(v.split())) if form}


def _path_of(root: etree._Element, node: etree._Element) -> str:
    names = [etree.QName(node).localname]
    while node is not root and (parent := node.getparent()) is not None:
        node = parent
        names.append(etree.QName(node).localname)
    return "/".join(reversed(names))


def problems(root: etree._Element) -> list[tuple[str, str]]:
    """Every schema error of ``root`` as (XPath of the element, message), naming elements but never
    quoting their values; empty when the document is valid."""
    if not isinstance(root, etree._Element) or not isinstance(root.tag, str):
        return [("/", "The document root is not an element")]
    schema = load_schema()
    found: list[tuple[str, str]] = []
    if not schema.validate(root):
        for entry in schema.error_log:  # type: ignore[attr-defined]  # lxml-stubs
            node = _locate(root, entry.path)
            if node is None:
                found.append(("/" + etree.QName(root).localname, _scrub(entry.message, set())))
            else:
                message = _ELEMENT_PREFIX.sub("", _scrub(entry.message, _node_values(node)))
                found.append(("/" + _path_of(root, node), message))
    # The schema's wildcard admits any xmldsig element at the end; only a Signature belongs there.
    last = root[-1] if len(root) else None
    if (
        last is not None
        and isinstance(last.tag, str)
        and etree.QName(last).namespace == DSIG_NS
        and etree.QName(last).localname != "Signature"
    ):
        name = etree.QName(root).localname
        found.append((f"/{name}/{etree.QName(last).localname}", f"{name}: only ds:Signature may follow the content"))
    return found


def validate(root: etree._Element) -> None:
    """Check ``root`` (a SickLeave, Cancellation or Receipt) against the schema.

    Raises SchemaInvalid naming the first error (later ones often follow from it), with every error
    in ``findings``.
    """
    found = problems(root)
    if found:
        path, message = found[0]
        detail = message if path.count("/") <= 1 else f"{path.lstrip('/')}: {message}"
        raise SchemaInvalid(
            detail,
            findings=[{"code": SchemaInvalid.code, "severity": "error", "path": p, "message": m} for p, m in found],
        )

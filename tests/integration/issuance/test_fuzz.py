"""Fuzzing ``POST /v1/ezla``: whatever arrives, the answer is never a 5xx.

Random bytes, byte-level mutations of a genuine signed e-ZLA and tree-level mutations (elements
removed, duplicated, moved, rewritten) must all end in a 2xx (a mutation that keeps the signature
valid is a legitimate document) or a 4xx problem+json with a code. SQLite only, bounded examples:
the attack corpus (test_attacks.py) covers both engines with exact codes.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.factories import XML, enroll, signed_sick_leave

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Fragments that steer mutations towards the parser's and verifier's interesting corners.
TOKENS = [
    b"<!DOCTYPE SickLeave>",
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    b"&x;",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"<![CDATA[",
    b"]]>",
    b"<?pi x?>",
    b"<!--",
    b"-->",
    b' xmlns="urn:ezla:sick-leave:2"',
    b' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
    b' Id="x"',
    b' URI="#x"',
    b"<ds:Object>",
    b"</ds:Signature>",
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"<a>" * 50,
    b"A" * 5000,
    b"MIIB",
    b"==",
    b"1970-01-01",
    b"9999-12-31",
    b"http://www.w3.org/2000/09/xmldsig#sha1",
]


def _well_answered(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].split(";")[0] == "application/problem+json", r.headers
        body = r.json()
        assert isinstance(body.get("code"), str) and body["code"], body
        assert body["status"] == r.status_code
        event(body["code"])  # --hypothesis-show-statistics shows how deep the mutations reach
    else:
        assert r.status_code in (200, 201), r.text
        event("accepted")


@pytest.fixture
def genuine(client: Any, operator_token: str) -> bytes:
    return signed_sick_leave(enroll(client, operator_token))


# --- byte-level mutations ------------------------------------------------------------------------
@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "token", "duplicate", "truncate"]))
        if kind == "flip" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "token":
            out[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "duplicate":
            length = draw(st.integers(1, 256))
            out[at:at] = out[at : at + length]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


# --- tree-level mutations ------------------------------------------------------------------------
@st.composite
def tree_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    root = etree.fromstring(data)
    for _ in range(draw(st.integers(1, 3))):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        el = draw(st.sampled_from(elements))
        parent = el.getparent()
        kind = draw(st.sampled_from(["remove", "duplicate", "move", "text", "base64", "attribute", "wrap"]))
        if kind == "remove" and parent is not None:
            parent.remove(el)
        elif kind == "duplicate" and parent is not None:
            el.addnext(copy.deepcopy(el))
        elif kind == "move" and parent is not None:
            target = draw(st.sampled_from(elements))
            if el not in target.iterancestors() and target is not el:
                target.insert(draw(st.integers(0, len(target))), el)
        elif kind == "text":
            el.text = draw(
                st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cn"]), max_size=40)
            )
        elif kind == "base64":
            # Well-formed base64 of garbage or of a bit-flipped value: reaches DER and signature parsing.
            try:
                raw = base64.b64decode("".join((el.text or "").split()), validate=False) or b"\0"
            except ValueError:  # binascii.Error, or non-ASCII text
                raw = b"\0"
            if draw(st.booleans()):
                flip = draw(st.integers(0, len(raw) - 1))
                raw = raw[:flip] + bytes([raw[flip] ^ (1 << draw(st.integers(0, 7)))]) + raw[flip + 1 :]
            else:
                raw = draw(st.binary(max_size=600))
            el.text = base64.b64encode(raw).decode()
        elif kind == "attribute":
            name = draw(st.sampled_from(["Id", "URI", "Algorithm", "DocumentId", "Type", "Target"]))
            el.set(name, draw(st.text(alphabet=st.characters(codec="ascii", min_codepoint=32), max_size=40)))
        elif kind == "wrap" and parent is not None:
            wrapper = etree.Element(draw(st.sampled_from([el.tag, "{urn:ezla:sick-leave:1}SickLeave", "x"])))
            el.addprevious(wrapper)
            wrapper.append(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- the properties ------------------------------------------------------------------------------
@FUZZ
@given(body=st.binary(max_size=4096))
def test_random_bytes_never_5xx(client, body):
    _well_answered(client.post("/v1/ezla", content=body, headers=XML))


@FUZZ
@given(data=st.data())
def test_byte_mutations_of_a_signed_document_never_5xx(client, genuine, data):
    body = data.draw(byte_mutation(genuine))
    _well_answered(client.post("/v1/ezla", content=body, headers=XML))


@FUZZ
@given(data=st.data())
def test_tree_mutations_of_a_signed_document_never_5xx(client, genuine, data):
    body = data.draw(tree_mutation(genuine))
    _well_answered(client.post("/v1/ezla", content=body, headers=XML))

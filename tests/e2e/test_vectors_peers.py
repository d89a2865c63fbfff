"""Independent peers agree with tests/vectors/: xmlsec1 (libxmlsec1) and xadesjs verify every
vector we call valid and refuse the tampered one. Missing tools are failures, not skips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.tools import install_xadesjs, run, tool, xadesjs_verify

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
SIGNED = sorted(n for n in MANIFEST["vectors"] if n.startswith(("xades/", "attacks/tampered")))


def _xmlsec1(path: Path) -> int:
    done = run(
        [
            tool("xmlsec1"),
            "--verify",
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--enabled-key-data",
            "x509",
            "--trusted-pem",
            str(VECTORS / MANIFEST["pki"]["root"]),
            "--untrusted-pem",
            str(VECTORS / MANIFEST["pki"]["issuing"]),
            # The vectors are older than today's CRL-less chain check cares about; judge the math.
            "--verification-gmt-time",
            MANIFEST["made_at"].replace("+00:00", "")[:19].replace("T", " "),
            str(path),
        ],
        timeout=30,
    )
    return done.returncode


@pytest.mark.parametrize("name", SIGNED)
def test_xmlsec1_and_xadesjs_agree(name: str) -> None:
    valid = MANIFEST["vectors"][name]["expect"] == "valid"
    assert (_xmlsec1(VECTORS / name) == 0) is valid, f"xmlsec1 disagrees on {name}"
    node = install_xadesjs()
    signer = VECTORS / "pki" / ("doctor-ec.pem" if "-ec" in name else "doctor-rsa.pem")
    assert (xadesjs_verify(node, VECTORS / name, signer).returncode == 0) is valid, f"xadesjs disagrees on {name}"

"""Regenerate tests/vectors/ (run from the repository root: ``.venv/bin/python -m tests.vectors.make_vectors``).

The vectors are committed; this script is their provenance: which tool, which version, which
call made each file. Private keys live only while it runs (in memory and a temporary directory):
the repository holds certificates and signed documents, never a key. It records all of that in ``manifest.json``, which tests/unit/test_vectors.py
reads. Regenerating replaces every key and certificate, so only do it on purpose.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESSigner

from ezla.document.codec import build_sick_leave_xml
from ezla.issuance.samples import sample_sick_leave
from ezla.xades import sign_enveloped
from tests.e2e.tools import install_xadesjs, xadesjs_sign
from tests.pki import Hierarchy

HERE = Path(__file__).resolve().parent
NPWZ = "5425740"  # check digit valid (tests/identifiers.py)


def _pem(cert: Any) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _tool_version(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]


def _signing_time(signed: bytes) -> str:
    root = etree.fromstring(signed)
    found = root.findtext(".//{http://uri.etsi.org/01903/v1.3.2#}SigningTime")
    assert found, "no SigningTime"
    return found.strip()


def main() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ca = Hierarchy.shaped_like_ours(now)
    doctors = {kind: ca.doctor(NPWZ, when=now, kind=kind) for kind in ("ec", "rsa")}
    (HERE / "pki").mkdir(exist_ok=True)
    (HERE / "pki" / "root.pem").write_bytes(_pem(ca.root))
    (HERE / "pki" / "issuing.pem").write_bytes(_pem(ca.issuing))
    for kind, d in doctors.items():
        (HERE / "pki" / f"doctor-{kind}.pem").write_bytes(_pem(d.cert))

    xml = build_sick_leave_xml(sample_sick_leave(today=now.date(), npwz=NPWZ))
    (HERE / "sick-leave.xml").write_bytes(xml)
    entries: dict[str, dict[str, Any]] = {}

    def put(name: str, data: bytes, **meta: Any) -> None:
        path = HERE / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        entries[name] = meta

    # xadesjs (npm, pinned in tests/e2e/xadesjs/package-lock.json)
    node = install_xadesjs()
    xadesjs_version = json.loads((HERE.parent / "e2e/xadesjs/node_modules/xadesjs/package.json").read_text())["version"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.xml"
        src.write_bytes(xml)
        for kind, c14n in (("ec", "exc-c14n"), ("rsa", "c14n")):
            key, certs = Path(tmp) / "key.pem", Path(tmp) / "certs.pem"
            key.write_bytes(_key_pem(doctors[kind].key))
            certs.write_bytes(_pem(doctors[kind].cert) + _pem(ca.issuing))
            signed = xadesjs_sign(node, src, key, certs, kind, c14n)
            put(
                f"xades/xadesjs-{kind}-{c14n}.xml",
                signed,
                made_by=f"xadesjs {xadesjs_version} on node {_tool_version([node, '--version'])}",
                command=f"node tests/e2e/xadesjs/sign.mjs sick-leave.xml (doctor-{kind} key) doctor-{kind}.pem+issuing.pem {kind} {c14n}",
                signing_time=_signing_time(signed),
                expect="valid",
            )

    # stock signxml, as a clinic integrator would call it
    d = doctors["rsa"]
    signer = XAdESSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    stock = etree.tostring(
        signer.sign(
            etree.fromstring(xml), key=_key_pem(d.key), cert=[_pem(d.cert).decode(), _pem(ca.issuing).decode()]
        ),
        xml_declaration=True,
        encoding="UTF-8",
    )
    put(
        "xades/signxml-rsa-c14n.xml",
        stock,
        made_by=f"signxml {version('signxml')}",
        command="XAdESSigner(RSA_SHA256, SHA256, CANONICAL_XML_1_0).sign(sick-leave.xml, (doctor-rsa key), [doctor-rsa.pem, issuing.pem])",
        signing_time=_signing_time(stock),
        expect="valid",
    )

    # ezla's own signer (the SDK's)
    ours = sign_enveloped(xml, doctors["ec"].key, doctors["ec"].cert, (ca.issuing,), signing_time=now)
    put(
        "xades/ezla-ec.xml",
        ours,
        made_by=f"ezla.xades.sign_enveloped (signxml {version('signxml')})",
        command="sign_enveloped(sick-leave.xml, (doctor-ec key), doctor-ec.pem, [issuing.pem])",
        signing_time=_signing_time(ours),
        expect="valid",
    )

    # hand-made attacks on the signxml vector
    tampered = stock.replace(b"<Icd10>", b"<Icd10>Z", 1)
    put(
        "attacks/tampered-diagnosis.xml",
        tampered,
        made_by="hand edit of xades/signxml-rsa-c14n.xml",
        command="the first <Icd10> value prefixed with Z after signing",
        signing_time=_signing_time(stock),
        expect="signature-invalid",
    )
    root = etree.fromstring(stock)
    sig = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert sig is not None
    decoy = etree.fromstring(xml)  # a second, unsigned SickLeave wrapping the signed one
    obj = etree.SubElement(sig, "{http://www.w3.org/2000/09/xmldsig#}Object")
    obj.append(etree.fromstring(etree.tostring(root)))
    decoy.append(sig)
    wrapped = etree.tostring(decoy, xml_declaration=True, encoding="UTF-8")
    put(
        "attacks/wrapped-in-object.xml",
        wrapped,
        made_by="hand edit of xades/signxml-rsa-c14n.xml",
        command="signature moved under an unsigned copy of the document, the signed original inside ds:Object",
        signing_time=_signing_time(stock),
        expect="signature-scope",
    )

    # CSRs from openssl, as clinic software without our SDK makes them
    openssl = _tool_version(["openssl", "version"])
    for curve, expect in (("P-256", "valid"), ("secp256k1", "key-too-weak")):
        with tempfile.TemporaryDirectory() as tmp:
            args = [
                "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{curve}",
                "-nodes", "-keyout", f"{tmp}/key.pem", "-subj", f"/C=PL/CN=Anna Nowak/serialNumber={NPWZ}",
            ]  # fmt: skip
            csr = subprocess.run(args, capture_output=True, check=True).stdout
        put(
            f"csr/openssl-{curve.lower()}.csr.pem",
            csr,
            made_by=openssl,
            command=" ".join([*args[:-4], "-keyout", "(discarded)", "-subj", args[-1]]),
            expect=expect,
        )

    manifest = {
        "made_at": now.isoformat(),
        "pki": {
            "root": "pki/root.pem",
            "issuing": "pki/issuing.pem",
            "made_by": "tests/pki.py Hierarchy.shaped_like_ours (ezla.ca.profile builders, ezla.ca.signer lint)",
            "note": "test-only CA, trusted by nothing; no private key is kept",
        },
        "vectors": entries,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

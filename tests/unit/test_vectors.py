"""Fixed inputs with provenance (tests/vectors/README.md, manifest.json): signatures made by
xadesjs, stock signxml and our signer, hand-made attacks on them, CSRs from openssl. Each is judged
as of its own signing time, so the committed files stay valid however old they get."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ezla.ca.enrollment import parse_csr
from ezla.ca.profile import npwz_of
from ezla.errors import EzlaError
from ezla.xades import DOCUMENT_SIGNING_EKU, SigningTimePolicy, verify_enveloped

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text())


def _cert(rel: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTORS / rel).read_bytes())


def _of_kind(prefix: str) -> list[str]:
    return sorted(name for name in MANIFEST["vectors"] if name.startswith(prefix))


def test_every_vector_file_is_in_the_manifest() -> None:
    on_disk = {
        str(p.relative_to(VECTORS)) for d in ("xades", "attacks", "csr") for p in (VECTORS / d).iterdir() if p.is_file()
    }
    assert on_disk == set(MANIFEST["vectors"])
    for meta in MANIFEST["vectors"].values():
        assert meta["made_by"] and meta["command"] and meta["expect"]


@pytest.mark.parametrize("name", _of_kind("xades/") + _of_kind("attacks/"))
def test_signed_vector(name: str) -> None:
    meta = MANIFEST["vectors"][name]
    at = datetime.fromisoformat(meta["signing_time"].replace("Z", "+00:00"))
    verify = lambda: verify_enveloped(  # noqa: E731
        (VECTORS / name).read_bytes(),
        trust_roots=[_cert(MANIFEST["pki"]["root"])],
        intermediates=[_cert(MANIFEST["pki"]["issuing"])],
        at=at,
        require_eku=DOCUMENT_SIGNING_EKU,
        policy=SigningTimePolicy(max_delay_days=None),
    )
    if meta["expect"] == "valid":
        result = verify()
        assert npwz_of(result.signer) == "5425740"
        assert result.report.indication.value == "TOTAL-PASSED"
    else:
        with pytest.raises(EzlaError) as caught:
            verify()
        assert caught.value.code == meta["expect"]


@pytest.mark.parametrize("name", _of_kind("csr/"))
def test_openssl_csr_vector(name: str) -> None:
    expect = MANIFEST["vectors"][name]["expect"]
    pem = (VECTORS / name).read_text()
    if expect == "valid":
        assert parse_csr(pem).is_signature_valid
    else:
        with pytest.raises(EzlaError) as caught:
            parse_csr(pem)
        assert caught.value.code == expect

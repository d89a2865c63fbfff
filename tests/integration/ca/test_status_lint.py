"""CRLs and OCSP responses lint clean with pkilint (an independent RFC 5280 / 6960 checker)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ezla.ca.keystore import load_cert
from tests.factories import enroll

BIN = Path(sys.executable).parent


def _lint(tool: str, *args: str) -> None:
    out = subprocess.run(
        [str(BIN / tool), "lint", "-s", "WARNING", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_crl_with_revocations_and_ocsp_responses_lint_clean(client, operator_token, pki_dir, tmp_path):
    good, bad = enroll(client, operator_token), enroll(client, operator_token)
    r = client.post(
        f"/v1/ca/certificates/{bad.serial}/revocation",
        # With the compromise date the CRL entry carries an invalidityDate, which pkilint checks too.
        json={"reason": "keyCompromise", "compromised_at": datetime.now(UTC).replace(microsecond=0).isoformat()},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert r.status_code == 200
    (tmp_path / "crl.der").write_bytes(client.get("/v1/ca/crl").content)
    _lint("lint_crl", "-t", "CRL", "-p", "PKIX", str(tmp_path / "crl.der"))
    (tmp_path / "root.crl").write_bytes(client.get("/v1/ca/root.crl").content)
    _lint("lint_crl", "-t", "ARL", "-p", "PKIX", str(tmp_path / "root.crl"))
    issuing = load_cert(pki_dir, "issuing")
    for doctor, status in ((good, ocsp.OCSPCertStatus.GOOD), (bad, ocsp.OCSPCertStatus.REVOKED)):
        req = ocsp.OCSPRequestBuilder().add_certificate(doctor.cert, issuing, hashes.SHA256()).build()
        resp = client.post(
            "/v1/ca/ocsp",
            content=req.public_bytes(serialization.Encoding.DER),
            headers={"content-type": "application/ocsp-request"},
        )
        assert ocsp.load_der_ocsp_response(resp.content).certificate_status == status
        path = tmp_path / f"{doctor.serial}.ocsp"
        path.write_bytes(resp.content)
        _lint("lint_ocsp_response", str(path))

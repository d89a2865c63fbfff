"""The service's signed ``Receipt``: XAdES-T, the service seal from our own CA and a signature
time-stamp from its TSA."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from ezla.ca import evidence
from ezla.ca.keystore import OnlineKeys
from ezla.document.schema import NS, validate
from ezla.xades import sign_enveloped


def build_receipt(
    *,
    series: str,
    number: int,
    document_id: str,
    document_sha256: str,
    accepted_at: datetime,
    keys: OnlineKeys,
    notices: Sequence[str] = (),
) -> bytes:
    """``notices``: the verifier's notes on why an expired or benignly revoked signer was accepted."""
    root = etree.Element(f"{{{NS}}}Receipt", nsmap={None: NS})  # type: ignore[dict-item]
    for name, value in (
        ("Series", series),
        ("Number", f"{number:07d}"),
        ("DocumentId", document_id),
        ("DocumentSha256", document_sha256),
        ("AcceptedAt", accepted_at.isoformat(timespec="seconds")),
        ("Status", "accepted"),
    ):
        etree.SubElement(root, f"{{{NS}}}{name}").text = value
    for notice in notices:
        etree.SubElement(root, f"{{{NS}}}SignerNotice").text = notice
    validate(root)
    # Leaf only in KeyInfo: xadesjs, verifying without a given key, tries every KeyInfo certificate and
    # trips over an EC issuer under an RSA seal. Relying parties take the chain from /v1/ca/chain.
    sealed = sign_enveloped(root, keys.service_key, keys.service, (), signing_time=accepted_at)
    return evidence.timestamped(sealed, keys, now=accepted_at)  # XAdES-T: when we accepted, proven by our TSA

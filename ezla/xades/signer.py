"""Signing an enveloped XAdES-BES (the SDK, the CLI, receipts): signxml's XAdES signer, tuned.

Choices (see docs/design "Interoperability facts"):
- Inclusive Canonical XML 1.0 everywhere. signxml's default (c14n 1.1) is unknown to xadesjs, and
  with exclusive c14n signxml digests SignedProperties/KeyInfo without writing a Transform, so
  every other verifier (and signxml itself) falls back to c14n 1.0 and fails.
- One SigningCertificateV2 entry (the signer), the chain only in KeyInfo, Reference URI="".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import lxml.etree
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESDataObjectFormat, XAdESSigner

from ezla.errors import KeyCertificateMismatch
from ezla.keys import check_key
from ezla.xades.algorithms import XADES
from ezla.xades.parsing import parse_xml

C14N = CanonicalizationMethod.CANONICAL_XML_1_0


def signed_document_digest(data: bytes) -> str:
    """Hex SHA-256 of the exact bytes received (what receipts quote)."""
    return hashlib.sha256(data).hexdigest()


class Signer(XAdESSigner):
    """signxml's XAdES signer with a caller-chosen SigningTime, one SigningCertificateV2 entry and URI=""."""

    def __init__(self, signing_time: datetime, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        el = etree.SubElement(signed_signature_properties, f"{{{XADES}}}SigningTime", nsmap=self.namespaces)
        when = self._signing_time.astimezone(UTC)
        el.text = when.isoformat(timespec="seconds").replace("+00:00", "Z")

    def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        # Only the signer: the chain certs travel in KeyInfo; several Cert entries confuse some verifiers.
        only_signer = replace(signing_settings, cert_chain=signing_settings.cert_chain[:1])
        super().add_signing_certificate(signed_signature_properties, sig_root, only_signer)

    def _unpack(self, data, references):  # type: ignore[no-untyped-def]
        # signxml would reference "#<Id>" when the root carries an Id; we always sign the whole document.
        sig_root, doc_root, c14n_inputs, refs = super()._unpack(data, references)
        return sig_root, doc_root, c14n_inputs, [replace(r, URI="") for r in refs]


def sign_enveloped(
    xml: bytes | lxml.etree._Element,
    key: PrivateKeyTypes,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: datetime | None = None,
) -> bytes:
    """Append an enveloped XAdES-BES ds:Signature (c14n 1.0, SHA-256) as the root's last child.

    KeyInfo carries ``cert`` then ``chain``. Leave ``chain`` empty when relying parties may use
    xadesjs without an explicit key: it tries every KeyInfo certificate with the signature
    algorithm and throws on one of another key type (an RSA seal under our EC issuing CA).
    """
    check_key(key)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyCertificateMismatch()
    root = parse_xml(xml) if isinstance(xml, bytes) else xml
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    method = SignatureMethod.RSA_SHA256 if is_rsa else SignatureMethod.ECDSA_SHA256
    signer = Signer(
        signing_time or datetime.now(UTC),
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=C14N,
        data_object_format=XAdESDataObjectFormat(Description="Signed XML document", MimeType="text/xml"),
    )
    signed = signer.sign(root, key=key, cert=[cert, *chain], always_add_key_value=False)  # type: ignore[arg-type]
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")

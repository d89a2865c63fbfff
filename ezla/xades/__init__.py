"""Enveloped XAdES-BES: hardened parsing, signing and strict, bounded-cost verification.

Used by issuance (doctors' e-ZLA and cancellations), receipts, the registry, the SDK and the CLI.
Modules: ``parsing`` (hardened parse, cost limits), ``algorithms`` (what we accept, c14n),
``certificates`` (parsed-once certificates, cached paths), ``signing_time`` (what SigningTime
means for expiry and revocation), ``verifier``, ``report`` (ETSI-style validation report),
``signer``.
"""

from ezla.xades.algorithms import DOCUMENT_SIGNING_EKU, DS, XADES
from ezla.xades.parsing import LIMITS, MAX_DEPTH, MAX_XML_BYTES, Limits, parse_xml
from ezla.xades.report import Check, Indication, ValidationReport
from ezla.xades.signer import sign_enveloped, signed_document_digest
from ezla.xades.signing_time import Revocation, SigningTimePolicy
from ezla.xades.verifier import VerifiedSignature, check_revocation, refuse_with_report, verify_enveloped

NS = {"ds": DS, "xades": XADES}

__all__ = [
    "DOCUMENT_SIGNING_EKU",
    "DS",
    "LIMITS",
    "MAX_DEPTH",
    "MAX_XML_BYTES",
    "NS",
    "XADES",
    "Check",
    "Indication",
    "Limits",
    "Revocation",
    "SigningTimePolicy",
    "ValidationReport",
    "VerifiedSignature",
    "check_revocation",
    "parse_xml",
    "refuse_with_report",
    "sign_enveloped",
    "signed_document_digest",
    "verify_enveloped",
]

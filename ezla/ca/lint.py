"""Lint before sign (style.md): our profile clauses plus pkilint's validators.

Any ERROR (or WARNING for the doctor profile, as the issue's pkilint call demands) aborts issuance.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkilint import etsi, finding_filter, loader, pkix
from pkilint.etsi import etsi_constants
from pkilint.pkix import certificate, crl, extension, name, ocsp
from pkilint.validation import ValidationFindingSeverity

from ezla.ca.profile import npwz_of
from ezla.errors import LintFailed
from ezla.keys import key_problem
from ezla.xades import DOCUMENT_SIGNING_EKU

Check = Callable[[x509.Certificate], str | None]


def _serial_entropy(cert: x509.Certificate) -> str | None:
    # 1 prefix byte + 16 random bytes; RFC 5280 4.1.2.2 caps the encoding at 20 octets.
    n = cert.serial_number
    if n <= 0 or n.bit_length() > 159 or n.bit_length() < 64 + 8:
        return "serial must be positive, <= 20 octets, with >= 64 random bits"
    return None


def _doctor_key_usage(cert: x509.Certificate) -> str | None:
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    v = ku.value
    if not ku.critical or not v.content_commitment or v.digital_signature or v.key_cert_sign:
        return "doctor keyUsage must be critical nonRepudiation only (EN 319 412-2 4.3.2)"
    return None


def _doctor_eku(cert: x509.Certificate) -> str | None:
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    return None if list(eku) == [DOCUMENT_SIGNING_EKU] else "doctor EKU must be documentSigning only"


def _doctor_npwz(cert: x509.Certificate) -> str | None:
    npwz = npwz_of(cert)
    return None if npwz and len(npwz) == 7 and npwz.isdigit() else "subject serialNumber must carry the NPWZ"


def _doctor_validity(cert: x509.Certificate) -> str | None:
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    return None if span <= timedelta(days=731) else "doctor certificate valid longer than 730 days"


def _key_strength(cert: x509.Certificate) -> str | None:
    problem = key_problem(cert.public_key())
    return None if problem is None else problem.detail


def _status_pointers(cert: x509.Certificate) -> str | None:
    try:
        cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return "AIA and CRL distribution point are required"
    return None


DOCTOR_CHECKS: tuple[Check, ...] = (
    _serial_entropy,
    _doctor_key_usage,
    _doctor_eku,
    _doctor_npwz,
    _doctor_validity,
    _key_strength,
    _status_pointers,
)
LEAF_CHECKS: tuple[Check, ...] = (_serial_entropy, _key_strength)


@functools.cache
def _validators(etsi_natural_person: bool) -> tuple[Any, list[Any]]:
    """pkilint's validator containers, built once: building them parses the public suffix list
    (hundreds of milliseconds), which every issuance paid before. pkilint's own REST service reuses
    them the same way; ``_LINT`` serialises their use, as they are not documented as thread-safe."""
    if etsi_natural_person:
        ctype = etsi_constants.CertificateType.NCP_NATURAL_PERSON_CERTIFICATE
        container = certificate.create_pkix_certificate_validator_container(
            etsi.create_decoding_validators(ctype), etsi.create_validators(ctype)
        )
        return container, etsi.create_etsi_finding_filters(ctype)
    container = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    return container, []


_LINT = threading.Lock()


def pkilint_findings(der: bytes, *, etsi_natural_person: bool) -> list[str]:
    """pkilint's PKIX validators (and ETSI NCP natural person for doctors) at WARNING and above."""

    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "tbs")
    with _LINT:
        container, filters = _validators(etsi_natural_person)
        results = container.validate(doc.root)
    if filters:
        results, _ = finding_filter.filter_results(filters, results)
    return _at_least_warning(results)


def _at_least_warning(results: list[Any]) -> list[str]:
    threshold = ValidationFindingSeverity.WARNING
    return [
        f"{f.finding.severity}: {f.finding.code} {f.message or ''}".strip()
        for result in results
        for f in result.finding_descriptions
        if f.finding.severity <= threshold
    ]


def _crl_checks(crl_: x509.CertificateRevocationList) -> list[str]:
    """Our own CRL profile (RFC 5280 5.2): a number, the issuer's key id, a bounded validity."""
    problems = []
    try:
        crl_.extensions.get_extension_for_class(x509.CRLNumber)
        crl_.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        problems.append("a CRL needs cRLNumber and authorityKeyIdentifier (RFC 5280 5.2.1, 5.2.3)")
    next_update = crl_.next_update_utc
    if next_update is None or not (timedelta(0) < next_update - crl_.last_update_utc <= timedelta(days=10)):
        problems.append("nextUpdate must follow thisUpdate by at most 10 days")
    return problems


@functools.cache
def _crl_validator() -> Any:
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )


@functools.cache
def _ocsp_validator() -> Any:
    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def lint_crl(crl_: x509.CertificateRevocationList) -> None:
    """Raise LintFailed on a CRL (signed with a throwaway key) that our profile or pkilint refuses."""
    doc = loader.RFC5280CertificateListDocumentLoader().load_der_document(crl_.public_bytes(Encoding.DER), "crl")
    with _LINT:
        results = _crl_validator().validate(doc.root)
    problems = _crl_checks(crl_) + _at_least_warning(results)
    if problems:
        raise LintFailed("; ".join(problems))


def lint_ocsp_response(der: bytes) -> None:
    """Raise LintFailed on an OCSP response (signed with a throwaway key) that pkilint refuses."""
    doc = loader.RFC6960OCSPResponseDocumentLoader().load_der_document(der, "ocsp")
    with _LINT:
        results = _ocsp_validator().validate(doc.root)
    problems = _at_least_warning(results)
    if problems:
        raise LintFailed("; ".join(problems))


def lint_certificate(cert: x509.Certificate, *, doctor: bool) -> None:
    """Raise LintFailed listing every problem; called on a throwaway-key copy before real signing."""
    problems = [p for check in (DOCTOR_CHECKS if doctor else LEAF_CHECKS) if (p := check(cert))]
    problems += pkilint_findings(cert.public_bytes(Encoding.DER), etsi_natural_person=doctor)
    if problems:
        raise LintFailed("; ".join(problems))

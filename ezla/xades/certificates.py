"""Certificates as the verifier sees them: parsed once, facts precomputed, paths cached by window.

Clinic software sends the same doctor certificate thousands of times; parsing it, hashing it and
building its path each time was a third of the old verifier's cost. Parsed certificates are cached
by their base64 text, validated paths by (signer, trust anchors, extras) with the window in which
every certificate on the path is valid. Revocation is never cached here.
"""

from __future__ import annotations

import threading
from base64 import b64decode
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from ezla.errors import (
    CertificateNotForSigning,
    CertificateUntrusted,
    SignatureAlgorithmWeak,
    SignatureInvalid,
)
from ezla.keys import key_problem

K = TypeVar("K")
V = TypeVar("V")
_SHA256 = hashes.SHA256()


class LruCache(Generic[K, V]):
    """Bounded, thread-safe LRU map (functools.lru_cache cannot be keyed by our own key)."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class CertInfo:
    """A parsed certificate and the facts the verifier asks of it on every call."""

    cert: x509.Certificate
    public_key: CertificatePublicKeyTypes
    fingerprint: bytes  # SHA-256 of the DER
    is_ca: bool
    signs_documents: bool  # keyUsage absent, or digitalSignature / nonRepudiation set
    ekus: frozenset[x509.ObjectIdentifier]

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertInfo:
        try:
            public_key = cert.public_key()
            exts = cert.extensions  # parsed lazily by cryptography: fail here, not deep in a check
        except Exception as exc:  # ValueError, UnsupportedAlgorithm, DuplicateExtension, ...
            raise SignatureInvalid(f"unreadable X509Certificate: {type(exc).__name__}") from None
        try:
            is_ca = exts.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        try:
            ku = exts.get_extension_for_class(x509.KeyUsage).value
            signs = ku.digital_signature or ku.content_commitment
        except x509.ExtensionNotFound:
            signs = True
        try:
            ekus = frozenset(exts.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            ekus = frozenset()
        return cls(cert, public_key, cert.fingerprint(_SHA256), is_ca, signs, ekus)


_BY_TEXT: LruCache[str, CertInfo] = LruCache(8192)
_BY_IDS: LruCache[tuple[int, ...], tuple[tuple[x509.Certificate, ...], tuple[CertInfo, ...]]] = LruCache(256)


def from_base64(text: str) -> CertInfo:
    """A KeyInfo X509Certificate, parsed once per distinct text."""
    key = "".join(text.split())
    info = _BY_TEXT.get(key)
    if info is None:
        try:
            cert = x509.load_der_x509_certificate(b64decode(key, validate=True))
        except Exception as exc:  # ValueError, InvalidVersion, ...: all mean "not a certificate"
            raise SignatureInvalid(f"unreadable X509Certificate: {type(exc).__name__}") from None
        info = CertInfo.of(cert)
        _BY_TEXT.put(key, info)
    return info


def infos_of(certs: Sequence[x509.Certificate]) -> tuple[CertInfo, ...]:
    """Facts about caller-given certificates (trust anchors, intermediates). Callers pass the same
    objects on every call, so the cache is keyed by identity; the entry holds the certificates
    themselves, so an id cannot be reused while its entry lives."""
    key = tuple(map(id, certs))
    hit = _BY_IDS.get(key)
    if hit is not None:
        return hit[1]
    infos = tuple(CertInfo.of(c) for c in certs)
    _BY_IDS.put(key, (tuple(certs), infos))
    return infos


# cryptography's web-PKI EE defaults demand SAN and keyUsage digitalSignature and check EKU against
# clientAuth; doctor certificates are nonRepudiation + documentSigning without SAN, so those three
# are relaxed here and KU/EKU are checked by ``check_usage``. Chain building, CA constraints,
# validity and signatures along the path stay cryptography's job.
_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
_PATHS: LruCache[tuple[bytes, ...], tuple[datetime, datetime]] = LruCache(4096)


def check_path(
    signer: CertInfo, extra: Sequence[CertInfo], trust_roots: Sequence[CertInfo], *, at: datetime
) -> tuple[datetime, datetime]:
    """A valid path from ``signer`` to one of ``trust_roots`` at ``at``; returns the window in
    which the whole path is valid. Validation depends on ``at`` only through validity periods, so
    a path validated once holds for any time inside that window: the ~1.5 ms build is skipped."""
    if not trust_roots:
        raise CertificateUntrusted("no trust roots configured")
    key = (signer.fingerprint, *(c.fingerprint for c in trust_roots), b"|", *(c.fingerprint for c in extra))
    window = _PATHS.get(key)
    if window is not None and window[0] <= at <= window[1]:
        return window
    verifier = (
        PolicyBuilder()
        .store(Store([c.cert for c in trust_roots]))
        .time(at)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(signer.cert, [c.cert for c in extra]).chain
    except VerificationError as exc:
        raise CertificateUntrusted(f"no valid chain to a trusted root: {exc}") from None
    window = (max(c.not_valid_before_utc for c in chain), min(c.not_valid_after_utc for c in chain))
    _PATHS.put(key, window)
    return window


def check_key(signer: CertInfo) -> None:
    """Before any signature maths (any certificate can sit in KeyInfo, so this runs before the path
    is known to be ours): the one key policy of ``ezla.keys``."""
    problem = key_problem(signer.public_key)
    if problem is not None:
        raise (SignatureAlgorithmWeak if problem.too_weak else SignatureInvalid)(problem.detail)


def check_usage(signer: CertInfo, require_eku: x509.ObjectIdentifier | None) -> None:
    if not signer.signs_documents:
        raise CertificateNotForSigning("keyUsage allows neither digitalSignature nor nonRepudiation")
    if require_eku is not None and require_eku not in signer.ekus:
        raise CertificateNotForSigning(f"extendedKeyUsage lacks {require_eku.dotted_string}")

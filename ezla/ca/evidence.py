"""Evidence that keeps a signature verifiable for decades (XAdES-T and the LT ingredients).

A sick-leave certificate is evidence in benefit disputes years after the doctor's two-year
certificate expired. When an e-ZLA is accepted, the service adds to a copy of it:
- a signature time-stamp from the CA's own TSA over the doctor's SignatureValue (proof that the
  signature existed then);
- the certificates needed to check everything offline (signer, issuing CA, root, TSA, OCSP
  responder);
- an OCSP response for the signer's certificate as of that moment.
Receipts get the time-stamp (XAdES-T). Pure CPU: callers run this outside any transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding

from ezla.ca import ocsp, tsa
from ezla.ca.keystore import OnlineKeys
from ezla.xades import Revocation
from ezla.xades.unsigned import TimestampTrust, add

# A signer's status response is reused this long (it is valid for ocsp.RESPONSE_VALIDITY, an hour):
# a doctor sends many e-ZLA a day, and each fresh response costs a lint and a signature. The cache
# key includes the status this node just read from the database, so a revocation is never hidden.
STATUS_REUSE = timedelta(minutes=10)
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[bytes, int, str, datetime | None, str | None], tuple[datetime, bytes]] = OrderedDict()
_cache_lock = threading.Lock()


def timestamp_trust(keys: OnlineKeys) -> TimestampTrust:
    """Whose time-stamps a submitted document may carry: our TSA's root and any TSA root the
    operator placed in ``pki/trust/tsa/`` (see keystore)."""
    return TimestampTrust(roots=keys.tsa_roots, intermediates=keys.intermediates)


def stamper(keys: OnlineKeys, *, now: datetime) -> Callable[[bytes], bytes]:
    """A SHA-256 digest in, a DER TimeStampToken from our TSA out (certificates included)."""
    chain = (keys.generation_of(keys.tsa).issuing,)
    return lambda digest: tsa.stamp("sha256", digest, cert=keys.tsa, key=keys.tsa_key, chain=chain, now=now)


def status_response(keys: OnlineKeys, cert: x509.Certificate, revocation: Revocation | None, *, now: datetime) -> bytes:
    state = "revoked" if revocation is not None and revocation.at <= now else "good"
    revoked_at = revocation.at if state == "revoked" and revocation is not None else None
    reason = revocation.reason if revoked_at and revocation else None
    key = (keys.generation_of(cert).issuing.fingerprint(SHA256()), cert.serial_number, state, revoked_at, reason)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and timedelta(0) <= now - hit[0] < STATUS_REUSE:
            _cache.move_to_end(key)
            return hit[1]
    status = ocsp.Status(state, cert, revoked_at, reason)
    der = ocsp.status_response(status, keys, now=now)
    with _cache_lock:
        _cache[key] = (now, der)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return der


def long_term(
    signed_xml: bytes, signer: x509.Certificate, revocation: Revocation | None, keys: OnlineKeys, *, now: datetime
) -> bytes:
    """The signed document as received, plus its signature time-stamp, certificates and the
    signer's OCSP status (XAdES baseline LT). The signed bytes' meaning is untouched."""
    gen, tsa_issuer = keys.generation_of(signer), keys.generation_of(keys.tsa)
    certificates = _unique((signer, gen.issuing, keys.root, keys.tsa, tsa_issuer.issuing, gen.ocsp))
    return add(
        signed_xml,
        stamp=stamper(keys, now=now),
        certificates=certificates,
        ocsp_responses=(status_response(keys, signer, revocation, now=now),),
    )


def timestamped(signed_xml: bytes, keys: OnlineKeys, *, now: datetime) -> bytes:
    """XAdES-T: the document with a signature time-stamp over its SignatureValue."""
    return add(signed_xml, stamp=stamper(keys, now=now))


def _unique(certs: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    out = []
    for cert in certs:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return out

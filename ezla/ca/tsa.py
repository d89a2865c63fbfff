"""RFC 3161 time-stamping: the responder's core, pure (no database, no Litestar).

``stamp`` makes a TimeStampToken (CMS SignedData over a TSTInfo) with asn1crypto, as RFC 5816
profiles it: signingCertificateV2 with a SHA-256 ESSCertIDv2, so current verifiers (OpenSSL's
``ts -verify`` among them) find the TSA certificate by hash. ``respond`` answers a TimeStampReq
with a TimeStampResp and, whatever the bytes, a well-formed one: a refusal is a status, never an
exception (RFC 3161 2.4.2).

The key is only asked to ``sign`` (and for its public key, curve or size): a PKCS#11 token-backed
key implements no more.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from ezla.ca.signer import hash_for

# ETSI EN 319 421 "best practices time-stamp policy"; a deployment with its own CP passes another.
TSA_POLICY = "0.4.0.2023.1.1"
ACCURACY_SECONDS = 1
# A TimeStampReq is a hash, a policy and a nonce: ~150 octets. Anything near this cap is not one.
MAX_QUERY_BYTES = 4096
# Message imprints we stamp, with their digest lengths; SHA-1 and weaker get badAlg (practical collisions).
IMPRINT_HASHES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 2.4.2's TimeStampResp: asn1crypto's makes the token mandatory, so it cannot say no."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _name(cert_name: x509.Name) -> asn1_x509.Name:
    return asn1_x509.Name.load(cert_name.public_bytes())


@dataclass(frozen=True)
class _Issuer:
    """What every token of one TSA certificate repeats, encoded once: asn1crypto re-encodes any
    value built from Python objects on every dump, which made a token cost 20 ms instead of 1."""

    tsa_name: bytes  # GeneralName DER
    sid: bytes  # SignerIdentifier DER
    signing_certificate: bytes  # the signingCertificateV2 CMSAttribute DER
    certificates: tuple[bytes, ...]  # DER, the TSA's first


@lru_cache(maxsize=8)
def _issuer(cert_der: bytes, chain_der: tuple[bytes, ...]) -> _Issuer:
    cert = x509.load_der_x509_certificate(cert_der)
    ess_cert_id = tsp.ESSCertIDv2(
        {
            # hashAlgorithm left out: SHA-256 is its DEFAULT, and DER omits defaults.
            "cert_hash": cert.fingerprint(hashes.SHA256()),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(name="directory_name", value=_name(cert.issuer))],
                "serial_number": cert.serial_number,
            },
        }
    )
    return _Issuer(
        tsa_name=asn1_x509.GeneralName(name="directory_name", value=_name(cert.subject)).dump(),
        sid=cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": _name(cert.issuer), "serial_number": cert.serial_number},
        ).dump(),
        signing_certificate=cms.CMSAttribute(
            {"type": "signing_certificate_v2", "values": [{"certs": [ess_cert_id]}]}
        ).dump(),
        certificates=(cert_der, *chain_der),
    )


def _signed_attributes(issuer: _Issuer, content_digest: bytes, gen_time: datetime) -> cms.CMSAttributes:
    return cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [content_digest]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time(name="utc_time", value=gen_time)]}),
            cms.CMSAttribute.load(issuer.signing_certificate),
        ]
    )


def _sign(key: CertificateIssuerPrivateKeyTypes, data: bytes, algorithm: hashes.HashAlgorithm) -> tuple[str, bytes]:
    """(CMS signatureAlgorithm name, signature): a DER ECDSA-Sig-Value is what CMS carries (RFC 5753)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"{algorithm.name}_ecdsa", key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        return f"{algorithm.name}_rsa", key.sign(data, padding.PKCS1v15(), algorithm)
    raise TypeError("the TSA key must be EC or RSA")


def stamp(
    message_imprint_hash: str,
    digest: bytes,
    *,
    cert: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    now: datetime,
    nonce: int | None = None,
    policy: str = TSA_POLICY,
    include_certs: bool = True,
    serial: int | None = None,
) -> bytes:
    """A DER TimeStampToken over ``digest`` (the requester's hash, by ``message_imprint_hash``)."""
    if IMPRINT_HASHES.get(message_imprint_hash) != len(digest):
        raise ValueError(f"not a {message_imprint_hash} digest we stamp")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if key.public_key() != cert.public_key():
        raise ValueError("the TSA key does not belong to the TSA certificate")
    issuer = _issuer(cert.public_bytes(Encoding.DER), tuple(c.public_bytes(Encoding.DER) for c in chain))
    gen_time = now.astimezone(UTC).replace(microsecond=0)  # whole seconds: the accuracy is 1 s anyway
    info: dict[str, object] = {
        "version": "v1",
        "policy": policy,
        "message_imprint": {"hash_algorithm": {"algorithm": message_imprint_hash}, "hashed_message": digest},
        # RFC 3161 2.4.2: unique per TSA, up to 160 bits; random, so nodes need not coordinate.
        "serial_number": serial if serial is not None else secrets.randbelow(2**128 - 1) + 1,
        "gen_time": gen_time,
        "accuracy": {"seconds": ACCURACY_SECONDS},
        "tsa": asn1_x509.GeneralName.load(issuer.tsa_name),
    }
    if nonce is not None:
        info["nonce"] = nonce
    tst_info = tsp.TSTInfo(info)
    content = tst_info.dump()

    algorithm = hash_for(key)
    content_hash = hashes.Hash(algorithm)
    content_hash.update(content)
    attributes = _signed_attributes(issuer, content_hash.finalize(), gen_time)
    # RFC 5652 5.4: the signature covers the attributes as a SET OF (tag 0x31), not as the [0] field.
    signature_name, signature = _sign(key, attributes.dump(), algorithm)

    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier.load(issuer.sid),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": algorithm.name}),
            "signed_attrs": attributes,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_name}),
            "signature": signature,
        }
    )
    signed: dict[str, object] = {
        "version": "v3",  # eContentType is not id-data (RFC 5652 5.1)
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": algorithm.name})],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    if include_certs:
        signed["certificates"] = [asn1_x509.Certificate.load(der) for der in issuer.certificates]
    token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed)})
    return bytes(token.dump())


class _Refused(Exception):
    """A query we answer with status rejection: the failInfo bit (asn1crypto's name) and a text."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info, self.text = fail_info, text

    def response(self) -> bytes:
        info = {"status": "rejection", "status_string": [self.text], "fail_info": {self.fail_info}}
        return bytes(TimeStampResp({"status": tsp.PKIStatusInfo(info)}).dump())


def _parse(query_der: bytes, policy: str) -> tuple[str, bytes, int | None, bool]:
    """(hash name, digest, nonce, certReq) of a query we grant; raises _Refused otherwise."""
    if len(query_der) > MAX_QUERY_BYTES:
        raise _Refused("bad_data_format", "The request is too large.")
    try:
        req = tsp.TimeStampReq.load(query_der, strict=True)
        algorithm = req["message_imprint"]["hash_algorithm"]
        name = algorithm["algorithm"].native
    except Exception:  # ValueError, TypeError, OverflowError ...: all mean "not a TimeStampReq"
        raise _Refused("bad_data_format", "The request cannot be parsed.") from None
    if name not in IMPRINT_HASHES:
        raise _Refused("bad_alg", "Message digest algorithm is not supported.")
    try:  # absent or NULL only (RFC 5754 2); asn1crypto raises on anything but NULL
        superfluous = algorithm["parameters"].native is not None
    except Exception:
        superfluous = True
    if superfluous:
        raise _Refused("bad_alg", "Superfluous message digest parameter.")
    try:
        native = req.native  # asn1crypto parses lazily: make every field fail here or not at all
        requested_policy = req["req_policy"].dotted if native["req_policy"] is not None else None
    except Exception:
        raise _Refused("bad_data_format", "The request cannot be parsed.") from None
    if native["version"] != "v1":
        raise _Refused("bad_data_format", "Unsupported request version.")
    digest = native["message_imprint"]["hashed_message"]
    if len(digest) != IMPRINT_HASHES[name]:
        raise _Refused("bad_data_format", "Bad message digest.")
    if requested_policy is not None and requested_policy != policy:
        raise _Refused("unaccepted_policy", "Requested policy is not supported.")
    if native["extensions"] is not None:
        raise _Refused("unaccepted_extensions", "Extensions are not supported.")
    return name, digest, native["nonce"], bool(native["cert_req"])


def respond(
    query_der: bytes,
    *,
    cert: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    now: datetime,
    policy: str = TSA_POLICY,
) -> bytes:
    """A DER TimeStampResp: granted with a token, or rejection with its failInfo.

    A failure of the key itself (a token pulled out, say) is ours, not the requester's: it
    propagates, so the caller logs it and answers 500 rather than a signed-looking refusal."""
    try:
        name, digest, nonce, cert_req = _parse(query_der, policy)
    except _Refused as refused:
        return refused.response()
    # RFC 3161 2.4.1: certificates only when certReq asks for them.
    token = stamp(
        name, digest, cert=cert, key=key, chain=chain, now=now, nonce=nonce, policy=policy, include_certs=cert_req
    )
    granted = tsp.PKIStatusInfo({"status": "granted"})
    return bytes(TimeStampResp({"status": granted, "time_stamp_token": cms.ContentInfo.load(token)}).dump())

"""Verified submissions per second: ezla's verification path next to stock signxml, same documents.

    .venv/bin/python bench/verify_bench.py [-n 200] [--no-submit]

A throwaway PKI is made in a temp directory (``ezla.ca.ceremony.init_pki``), one EC P-256 doctor
certificate is issued from it (``ezla.ca.profile.doctor_builder`` + ``ezla.ca.signer.issue``) and N
distinct e-ZLA are signed with it (``ezla.xmlsec.sign_enveloped``). Every path then verifies the
SAME N documents in the same run:

- ezla verify: ``ezla.xmlsec.verify_enveloped`` as ``ezla.issuance.service.verify_signed`` calls it
  (hardened parse, scope and algorithm checks, chain to our root, EKU, SigningCertificate), minus
  the two database look-ups (revoked? recorded?);
- ezla pipeline: the above plus the rest of ``submit`` that needs no database (schema, signer is
  the named doctor, business rules);
- ezla submit: the real ``ezla.issuance.service.submit`` into a temp SQLite database (numbering,
  receipt signed with the service seal, outbox rows, commit), unless ``--no-submit``;
- signxml x509_cert: ``XAdESVerifier().verify`` with the signer certificate given (maths only, no
  chain), configured to accept our documents (3 references, c14n 1.0 default for references);
- signxml ca_pem_file: the same with the chain checked against root + issuing in a PEM file (and an
  end-entity policy that allows our nonRepudiation-only key usage).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import Criticality, ExtensionPolicy
from signxml import CanonicalizationMethod
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from ezla.ca import profile, serials
from ezla.ca.ceremony import init_pki
from ezla.ca.keystore import OnlineKeys
from ezla.ca.signer import issue
from ezla.issuance import document, rules
from ezla.issuance.document import build_sick_leave_xml
from ezla.issuance.samples import sample_sick_leave
from ezla.issuance.service import local_date
from ezla.xmlsec import sign_enveloped, verify_enveloped

PASSPHRASE = "bench-passphrase-not-secret"
PUBLIC_URL = "http://ezla.bench.example.org"
NPWZ = "5425740"
DEFAULT_N = 200


@dataclasses.dataclass(frozen=True)
class Setup:
    pki_dir: Path
    keys: OnlineKeys
    doctor_key: ec.EllipticCurvePrivateKey
    doctor: x509.Certificate
    documents: tuple[bytes, ...]
    now: datetime


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def make_setup(directory: Path, n: int) -> Setup:
    now = datetime.now(UTC)
    pki_dir = directory / "pki"
    init_pki(pki_dir, PASSPHRASE, PUBLIC_URL, now)
    keys = OnlineKeys.load(pki_dir, PASSPHRASE)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = profile.doctor_builder(
        profile.DoctorIdentity(NPWZ, "Anna", "Nowak"),
        key.public_key(),
        keys.issuing,
        serials.new_serial(1),
        now,
        profile.Profile.load(pki_dir),
        profile.Urls(PUBLIC_URL),
    )
    cert = issue(builder, keys.issuing_key, doctor=True)
    today = local_date(now)
    # Leaf only in KeyInfo, as clinic software typically sends it; the chain comes from our CA.
    docs = tuple(
        sign_enveloped(build_sick_leave_xml(sample_sick_leave(today=today, npwz=NPWZ)), key, cert) for _ in range(n)
    )
    return Setup(pki_dir, keys, key, cert, docs, now)


# --- the paths ------------------------------------------------------------------------------------
def ezla_verifier(s: Setup) -> Callable[[bytes], object]:
    def verify(data: bytes) -> object:
        return verify_enveloped(
            data,
            trust_roots=[s.keys.root],
            intermediates=[s.keys.issuing],
            at=s.now,
            is_revoked=lambda _cert: False,  # the database look-up; not what this measures
            require_eku=profile.DOCUMENT_SIGNING_EKU,
        )

    return verify


def ezla_pipeline(s: Setup) -> Callable[[bytes], object]:
    verify = ezla_verifier(s)
    today = local_date(s.now)

    def run(data: bytes) -> object:
        verified = verify(data)
        sick_leave = document.parse_sick_leave(verified.signed_root)  # type: ignore[attr-defined]
        if profile.npwz_of(verified.signer) != sick_leave.doctor.npwz:  # type: ignore[attr-defined]
            raise AssertionError("signer is not the named doctor")
        rules.check_sick_leave(sick_leave, today=today, received_at=today)
        return sick_leave

    return run


_STOCK_CONFIG = XAdESSignatureConfiguration(
    expect_references=3,  # data, SignedProperties, KeyInfo: what our signer writes
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,  # signxml's default is 1.1
)


def signxml_with_cert(s: Setup) -> Callable[[bytes], object]:
    def verify(data: bytes) -> object:
        return XAdESVerifier().verify(data, x509_cert=s.doctor, expect_config=_STOCK_CONFIG)

    return verify


def signxml_with_ca_file(s: Setup, directory: Path) -> Callable[[bytes], object]:
    ca_pem = directory / "ca.pem"
    ca_pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (s.keys.issuing, s.keys.root)))
    # signxml's default end-entity policy demands keyUsage digitalSignature; ours is nonRepudiation.
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )

    def verify(data: bytes) -> object:
        return XAdESVerifier().verify(data, ca_pem_file=str(ca_pem), ee_policy=ee, expect_config=_STOCK_CONFIG)

    return verify


def ezla_submit(s: Setup, directory: Path) -> Callable[[bytes], object]:
    """The real service function into a fresh SQLite database, one transaction per document."""
    from ezla.ca.models import Certificate
    from ezla.db import make_engine, make_sessionmaker, transaction
    from ezla.issuance import service
    from ezla.migrate import upgrade

    url = f"sqlite:///{directory}/bench.sqlite3"
    upgrade(url)
    factory = make_sessionmaker(make_engine(url))
    with transaction(factory) as session:  # the CA's record of the doctor certificate (is_known)
        session.add(
            Certificate(
                serial=serials.to_hex(s.doctor.serial_number),
                kind="doctor",
                status="issued",
                der=s.doctor.public_bytes(serialization.Encoding.DER),
                not_before=s.doctor.not_valid_before_utc,
                not_after=s.doctor.not_valid_after_utc,
                created_at=s.now,
            )
        )

    def submit(data: bytes) -> object:
        with transaction(factory) as session:
            accepted = service.submit(session, s.keys, data, now=datetime.now(UTC), node_id="bench")
        if not accepted.created:
            raise AssertionError("every bench document is new")
        return accepted

    return submit


def measure(name: str, fn: Callable[[bytes], object], documents: Sequence[bytes], *, warmup: int = 3) -> Result:
    for data in documents[:warmup]:  # imports, caches, compiled schema
        fn(data)
    start = time.perf_counter()
    for data in documents:
        fn(data)
    return Result(name, len(documents), time.perf_counter() - start)


def run(n: int = DEFAULT_N, *, submit: bool = True, out: Callable[[str], object] = print) -> dict[str, Result]:
    with tempfile.TemporaryDirectory(prefix="ezla-bench-") as tmp:
        directory = Path(tmp)
        out(f"preparing: PKI in {directory}, {n} e-ZLA signed by one EC P-256 doctor certificate ...")
        s = make_setup(directory, n)
        paths: list[tuple[str, Callable[[bytes], object]]] = [
            ("ezla verify_enveloped (chain, EKU, scope)", ezla_verifier(s)),
            ("ezla pipeline (+ schema, doctor, rules)", ezla_pipeline(s)),
            ("signxml XAdESVerifier (x509_cert)", signxml_with_cert(s)),
            ("signxml XAdESVerifier (ca_pem_file)", signxml_with_ca_file(s, directory)),
        ]
        results = {name: measure(name, fn, s.documents) for name, fn in paths}
        if submit:
            # No warm-up here: every document must be new to the database (the paths above warmed up).
            name = "ezla submit into SQLite (full)"
            results[name] = measure(name, ezla_submit(s, directory), s.documents, warmup=0)
    report(results, n, out)
    return results


def report(results: dict[str, Result], n: int, out: Callable[[str], object]) -> None:
    out(
        f"\n{n} documents, signxml {version('signxml')}, cryptography {version('cryptography')}, lxml {version('lxml')}"
    )
    out(f"{'path':<44}{'docs/s':>10}{'ms/doc':>10}")
    for r in results.values():
        out(f"{r.name:<44}{r.rate:>10.1f}{1000 / r.rate:>10.2f}")
    ours = results["ezla verify_enveloped (chain, EKU, scope)"].rate
    for stock in ("signxml XAdESVerifier (x509_cert)", "signxml XAdESVerifier (ca_pem_file)"):
        out(f"ratio ezla verify / {stock}: {ours / results[stock].rate:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=DEFAULT_N, help="documents per path (default 200)")
    parser.add_argument("--no-submit", action="store_true", help="skip the full submit into SQLite")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    run(args.count, submit=not args.no_submit)
    return 0


if __name__ == "__main__":
    sys.exit(main())

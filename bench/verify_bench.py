"""Verified e-ZLA per second, ezla next to two peers on the same documents, and the cost of refusing
hostile ones.

    .venv/bin/python bench/verify_bench.py [-n 300] [--quick] [--submit] [--json PATH]

One run, one throwaway PKI (``ezla.ca.ceremony.init_pki`` in a temp directory) and two doctor
certificates issued from it, EC P-256 and RSA-2048. N distinct e-ZLA are signed, split evenly over
four signers times both keys, leaf certificate only in KeyInfo:

- ``ezla-sdk``: our ``sign_enveloped`` (3 references: document, SignedProperties, KeyInfo);
- ``signxml``: stock ``signxml.xades.XAdESSigner`` with inclusive c14n 1.0 (3 references);
- ``xadesjs-exc`` / ``xadesjs-c14n``: xadesjs (``tests/e2e/xadesjs/sign.mjs``) with exclusive or
  inclusive c14n (2 references). One node process per document; when that is slow, fewer are
  signed and reused round-robin, and the output says so.

Every verifier first has to accept every document (the run stops, naming the signer, if not), then
is timed over all of them on one core (single-threaded, pinned to one CPU where the OS allows):

- ezla: ``verify_enveloped`` with our root, issuing CA, time and the documentSigning EKU: hardened
  parse, scope, algorithms, chain, EKU, SigningCertificate, signature maths;
- signxml: ``XAdESVerifier().verify`` with the CA bundle (root + issuing) as ``ca_pem_file``: chain
  and maths, XAdES properties as signxml reads them, none of our scope rules;
- xmlsec: libxmlsec1 via python-xmlsec with the signer's certificate as the key: signature value
  and reference digests only; no chain, no XAdES properties, no scope rules.

Then the cost attacks of ``bench/cost_attacks.py``: for each hostile variant of one genuine e-ZLA,
how long ``verify_enveloped`` takes to refuse it next to the time to merely read the same bytes
(SHA-256 and a hardened lxml parse). Figures go to stdout and to a JSON file; nothing is asserted
on timings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import Criticality, ExtensionPolicy
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

from ezla.business_time import local_date
from ezla.ca import profile, serials
from ezla.ca.ceremony import init_pki
from ezla.ca.keystore import OnlineKeys
from ezla.ca.models import Certificate
from ezla.ca.signer import issue
from ezla.db import make_engine, make_sessionmaker, transaction
from ezla.document.codec import build_sick_leave_xml
from ezla.issuance import service
from ezla.issuance.samples import sample_sick_leave
from ezla.migrate import upgrade
from ezla.xades import Revocation, sign_enveloped, verify_enveloped

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (HERE, ROOT):  # cost_attacks next door; tests.e2e.tools for xadesjs (appended: never shadows ezla)
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from cost_attacks import CORPUS  # noqa: E402

from tests.e2e.tools import install_xadesjs, xadesjs_sign  # noqa: E402

PASSPHRASE = "bench-passphrase-not-secret"
PUBLIC_URL = "http://ezla.bench.example.org"
NPWZ = "5425740"
DEFAULT_N = 300
QUICK_N = 30
SIZES = (1_000, 10_000, 20_000)
QUICK_SIZES = (1_000, 10_000)
MAX_BYTES = 1_000_000  # ezla refuses a larger body by its size alone
SLOW_SECONDS = 5.0
XADESJS_PER_VARIANT = 20  # distinct xadesjs documents per c14n variant when signing them all is slow
XADESJS_BUDGET_SECONDS = 10.0  # wall time allowed for signing every xadesjs share
WARMUP = 3
SIGNERS = ("ezla-sdk", "signxml", "xadesjs-exc", "xadesjs-c14n")
KINDS = ("ec", "rsa")
DEFAULT_JSON = HERE / "results" / "verify.json"


def hardened_parser() -> etree.XMLParser:
    """What reading untrusted bytes costs at least: no entities, no network, libxml2's default limits."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class BenchFailure(SystemExit):
    """A verifier refused a genuine document, or a tool is missing: the figures would be wrong."""


# --- the PKI ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Doctor:
    kind: str  # "ec" | "rsa", as sign.mjs spells it
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate
    key_pem: Path  # unencrypted PKCS#8, for xadesjs
    cert_pem: Path  # the leaf alone: what goes into KeyInfo


@dataclass(frozen=True)
class Pki:
    keys: OnlineKeys
    now: datetime
    doctors: dict[str, Doctor]
    ca_pem: Path  # root + issuing, for signxml's ca_pem_file


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _issue_doctor(pki_dir: Path, keys: OnlineKeys, now: datetime, kind: str) -> Doctor:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    )
    builder = profile.doctor_builder(
        profile.DoctorIdentity(NPWZ, "Anna", "Nowak"),  # one doctor holding two certificates
        key.public_key(),
        keys.issuing,
        serials.new_serial(1),
        now,
        profile.Profile.load(pki_dir),
        profile.Urls(PUBLIC_URL),
    )
    cert = issue(builder, keys.issuing_key, doctor=True)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_pem = _pem(pki_dir / f"doctor-{kind}.key.pem", pkcs8)
    cert_pem = _pem(pki_dir / f"doctor-{kind}.crt.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Doctor(kind, key, cert, key_pem, cert_pem)


def make_pki(directory: Path) -> Pki:
    now = datetime.now(UTC)
    pki_dir = directory / "pki"
    init_pki(pki_dir, PASSPHRASE, PUBLIC_URL, now)
    keys = OnlineKeys.load(pki_dir, PASSPHRASE)
    doctors = {kind: _issue_doctor(pki_dir, keys, now, kind) for kind in KINDS}
    bundle = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (keys.issuing, keys.root))
    return Pki(keys, now, doctors, _pem(directory / "ca.pem", bundle))


# --- the documents ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signed:
    signer: str  # one of SIGNERS
    kind: str  # one of KINDS
    data: bytes
    references: int  # ds:Reference elements in SignedInfo

    @property
    def group(self) -> str:
        return f"{self.signer}/{self.kind}"


@dataclass
class Corpus:
    groups: dict[str, list[Signed]]  # "signer/kind" -> documents, in timing order
    unique: dict[str, int]  # "signer/kind" -> distinct documents among them
    notes: list[str] = field(default_factory=list)

    @property
    def documents(self) -> list[Signed]:
        return [d for docs in self.groups.values() for d in docs]


def unsigned_document(pki: Pki) -> bytes:
    """A fresh e-ZLA (new DocumentId) issued today by the doctor of both certificates."""
    return build_sick_leave_xml(sample_sick_leave(today=local_date(pki.now), npwz=NPWZ))


def sign_with_ezla(xml: bytes, doctor: Doctor) -> bytes:
    return bytes(sign_enveloped(xml, doctor.key, doctor.cert))


def sign_with_signxml(xml: bytes, doctor: Doctor) -> bytes:
    method = SignatureMethod.ECDSA_SHA256 if doctor.kind == "ec" else SignatureMethod.RSA_SHA256
    signer = XAdESSigner(
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,  # its default, c14n 1.1, is unknown to peers
    )
    signed = signer.sign(etree.fromstring(xml), key=doctor.key, cert=[doctor.cert], always_add_key_value=False)
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    # The root carries no Id, so signxml references the whole document; a "#id" here would mean it
    # changed that and the documents would no longer be comparable with the others.
    if b'<ds:Reference URI=""' not in data:
        raise BenchFailure('signxml no longer writes Reference URI="" for the root; subclass _unpack to force it')
    return bytes(data)


def _xadesjs_c14n(signer: str) -> str:
    return "exc-c14n" if signer == "xadesjs-exc" else "c14n"


def sign_with_xadesjs(node: str, workdir: Path, xml: bytes, doctor: Doctor, c14n: str) -> bytes:
    with tempfile.NamedTemporaryFile("wb", suffix=".xml", dir=workdir, delete=False) as src:
        src.write(xml)
    return xadesjs_sign(node, Path(src.name), doctor.key_pem, doctor.cert_pem, doctor.kind, c14n)


def install_node() -> str:
    """node with the committed xadesjs helpers installed (tests/e2e/tools.py)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchFailure("node and npm are required: the bench signs part of its documents with xadesjs")

    return install_xadesjs()


def _share(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _round_robin(docs: list[Signed], count: int) -> list[Signed]:
    return [docs[i % len(docs)] for i in range(count)]


def _xadesjs_groups(
    pki: Pki, counts: dict[str, int], node: str, workdir: Path, out: Callable[[str], object]
) -> tuple[dict[str, list[Signed]], list[str]]:
    """Sign the xadesjs groups, one node process per document, several at a time (not timed).

    When signing every share would take longer than XADESJS_BUDGET_SECONDS, only
    XADESJS_PER_VARIANT documents per c14n variant are signed and reused round-robin.
    """
    groups = [g for g in counts if g.startswith("xadesjs")]
    workers = os.cpu_count() or 2

    def sign(group: str) -> Signed:
        signer, kind = group.split("/")
        xml = unsigned_document(pki)
        return Signed(signer, kind, sign_with_xadesjs(node, workdir, xml, pki.doctors[kind], _xadesjs_c14n(signer)), 2)

    start = time.perf_counter()
    probe = sign(groups[0])
    per_doc = time.perf_counter() - start
    reuse = per_doc * sum(counts[g] for g in groups) / workers > XADESJS_BUDGET_SECONDS
    cap = XADESJS_PER_VARIANT // len(KINDS)
    jobs = [g for g in groups for _ in range(min(counts[g], cap) if reuse else counts[g])][1:]  # the probe was first
    out(f"  xadesjs: {per_doc * 1000:.0f} ms per document (one node process each); signing {len(jobs) + 1}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        signed = [probe, *pool.map(sign, jobs)]
    distinct = {g: [d for d in signed if d.group == g] for g in groups}
    notes = []
    if reuse:
        notes.append(
            f"xadesjs signs one document per node process ({per_doc * 1000:.0f} ms each): {cap} distinct documents "
            f"per xadesjs signer and key ({XADESJS_PER_VARIANT} per c14n variant), reused round-robin"
        )
    return {g: _round_robin(distinct[g], counts[g]) for g in groups}, notes


def make_corpus(pki: Pki, n: int, workdir: Path, out: Callable[[str], object]) -> Corpus:
    names = [f"{s}/{k}" for s in SIGNERS for k in KINDS]
    counts = dict(zip(names, _share(n, len(names)), strict=True))
    python_signers = {"ezla-sdk": (sign_with_ezla, 3), "signxml": (sign_with_signxml, 3)}
    groups: dict[str, list[Signed]] = {}
    for name in names:
        signer, kind = name.split("/")
        if signer in python_signers:
            sign, refs = python_signers[signer]
            doctor = pki.doctors[kind]
            groups[name] = [
                Signed(signer, kind, sign(unsigned_document(pki), doctor), refs) for _ in range(counts[name])
            ]
    xadesjs_groups, notes = _xadesjs_groups(pki, counts, install_node(), workdir, out)
    groups.update(xadesjs_groups)
    ordered = {name: groups[name] for name in names}
    unique = {name: len({d.data for d in docs}) for name, docs in ordered.items()}
    return Corpus(ordered, unique, notes)


# --- the verifiers ----------------------------------------------------------------------------------
Verify = Callable[[Signed], object]


@dataclass(frozen=True)
class Verifier:
    key: str  # short name in the JSON
    label: str
    checks: str  # what it does and does not check, for the report
    verify: Verify


def ezla_verify(pki: Pki, at: datetime) -> Callable[[bytes], object]:
    """``verify_enveloped`` bound to our trust anchors and a time (what the cost attacks call too),
    with revocation looked up per call in an in-memory map (the service reads its database row)."""
    revoked: dict[int, Revocation] = {}

    def verify(data: bytes) -> object:
        return verify_enveloped(
            data,
            trust_roots=[pki.keys.root],
            intermediates=[pki.keys.issuing],
            at=at,
            require_eku=profile.DOCUMENT_SIGNING_EKU,
            revocation_of=lambda cert: revoked.get(cert.serial_number),
        )

    return verify


def ezla_path(verify: Callable[[bytes], object]) -> Verifier:
    checks = "full: hardened parse, scope, algorithms, chain to our root, EKU, SigningCertificate, maths"
    label = f"ezla verify_enveloped ({verify_enveloped.__module__})"
    return Verifier("ezla", label, checks, lambda doc: verify(doc.data))


def _signxml_configs() -> dict[int, XAdESSignatureConfiguration]:
    # Ours and signxml's carry 3 references (document, SignedProperties, KeyInfo), xadesjs's 2;
    # references without a c14n Transform use c14n 1.0 (XMLDSig's default, signxml's is 1.1).
    return {
        refs: XAdESSignatureConfiguration(
            expect_references=refs, default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0
        )
        for refs in (2, 3)
    }


def signxml_path(pki: Pki) -> Verifier:
    configs = _signxml_configs()
    # signxml's default end-entity policy demands keyUsage digitalSignature; ours is nonRepudiation.
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )
    ca_pem = str(pki.ca_pem)

    def verify(doc: Signed) -> object:
        config = configs[doc.references]
        return XAdESVerifier().verify(doc.data, ca_pem_file=ca_pem, ee_policy=ee, expect_config=config)

    checks = "chain (ca_pem_file), maths, XAdES SigningCertificate; no scope rules, no EKU"
    return Verifier("signxml", "signxml XAdESVerifier (ca_pem_file)", checks, verify)


def xmlsec_path(pki: Pki) -> Verifier:
    keys = {
        kind: xmlsec.Key.from_memory(
            d.cert.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
        )
        for kind, d in pki.doctors.items()
    }  # loaded once per signer certificate, outside the timing
    parser = hardened_parser()

    def verify(doc: Signed) -> object:
        root = etree.fromstring(doc.data, parser)
        xmlsec.tree.add_ids(root, ["Id"])
        sig = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
        if sig is None:
            raise xmlsec.Error("no ds:Signature")
        ctx = xmlsec.SignatureContext()
        ctx.key = keys[doc.kind]
        ctx.verify(sig)
        return None

    checks = "signature value + reference digests only (signer cert given); no chain, no XAdES properties"
    return Verifier("xmlsec", f"libxmlsec1 {_libxmlsec()} bare (python-xmlsec)", checks, verify)


# --- timing -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / self.count if self.count else 0.0

    def as_json(self) -> dict[str, float]:
        return {"documents": self.count, "seconds": self.seconds, "docs_per_s": self.rate, "ms_per_doc": self.ms}


@dataclass(frozen=True)
class PathResult:
    path: Verifier
    groups: dict[str, Timing]

    @property
    def total(self) -> Timing:
        return Timing(sum(t.count for t in self.groups.values()), sum(t.seconds for t in self.groups.values()))


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin this process to one CPU while timing (Linux); yields the CPU or None."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def accept_all(path: Verifier, corpus: Corpus) -> None:
    """Every genuine document must verify; otherwise stop and say whose documents failed."""
    failures: dict[str, tuple[int, str]] = {}
    for name, docs in corpus.groups.items():
        for doc in docs:
            try:
                path.verify(doc)
            except Exception as exc:  # reported below, then the run stops
                count, first = failures.get(name, (0, f"{type(exc).__name__}: {exc}"))
                failures[name] = (count + 1, first)
    if failures:
        lines = [
            f"  {name}: {count}/{len(corpus.groups[name])} refused, first: {first[:300]}"
            for name, (count, first) in failures.items()
        ]
        raise BenchFailure(f"{path.label} refuses genuine documents:\n" + "\n".join(lines))


def time_path(path: Verifier, corpus: Corpus) -> PathResult:
    for docs in corpus.groups.values():  # imports, caches, compiled schema
        for doc in docs[:WARMUP]:
            path.verify(doc)
    groups = {}
    for name, docs in corpus.groups.items():
        start = time.perf_counter()
        for doc in docs:
            path.verify(doc)
        groups[name] = Timing(len(docs), time.perf_counter() - start)
    return PathResult(path, groups)


def time_paths(paths: Sequence[Verifier], corpus: Corpus, rounds: int) -> dict[str, PathResult]:
    """Each path timed ``rounds`` times, the paths interleaved round by round, keeping each path's
    fastest round per signer: a burst of noise on a shared machine then hits every path alike
    instead of deciding a ratio."""
    best: dict[str, PathResult] = {}
    for _ in range(rounds):
        for path in paths:
            result = time_path(path, corpus)
            kept = best.get(path.key)
            if kept is not None:
                result = PathResult(
                    path, {g: min(t, kept.groups[g], key=lambda x: x.seconds) for g, t in result.groups.items()}
                )
            best[path.key] = result
    return best


# --- the optional submit path -----------------------------------------------------------------------
def submit_path(pki: Pki, directory: Path) -> tuple[Callable[[bytes], object] | None, str]:
    """``ezla.issuance.service.submit`` into a fresh SQLite database: verification, schema, rules,
    numbering, the receipt signed with the RSA-3072 seal, the record and its outbox rows."""

    url = f"sqlite:///{directory}/bench.sqlite3"
    upgrade(url)
    factory = make_sessionmaker(make_engine(url))
    with transaction(factory) as session:  # the CA's record of the doctor certificates
        for doctor in pki.doctors.values():
            cert = doctor.cert
            session.add(
                Certificate(
                    serial=serials.to_hex(cert.serial_number),
                    kind="doctor",
                    status="issued",
                    der=cert.public_bytes(serialization.Encoding.DER),
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    created_at=pki.now,
                )
            )

    def submit(data: bytes) -> object:
        accepted = service.submit(factory, pki.keys, data, now=datetime.now(UTC), node_id="bench")
        if not accepted.created:
            raise BenchFailure("every bench document is new to the database")
        return accepted

    return submit, "submit(sessions, ...) into a temp SQLite database, the service's own transactions"


def time_submit(pki: Pki, corpus: Corpus, directory: Path, out: Callable[[str], object]) -> dict[str, Any]:
    """Submit each distinct document once; the first is a trial run, since the service may be mid-change."""
    fn, note = submit_path(pki, directory)
    first, *rest = list({d.data: d for d in corpus.documents}.values())  # each must be new to the database
    try:
        if fn is not None:
            fn(first.data)
    except Exception as exc:  # optional path: say why and keep the other figures
        fn, note = None, f"skipped: submit fails on a genuine {first.group} document: {type(exc).__name__}: {exc}"
    if fn is None:
        out(f"\nezla submit: {note}")
        return {"skipped": note}
    start = time.perf_counter()
    for doc in rest:
        fn(doc.data)
    timing = Timing(len(rest), time.perf_counter() - start)
    out(f"\nezla submit ({note}): {timing.rate:.1f} docs/s, {timing.ms:.2f} ms/doc over {timing.count} documents")
    return {"note": note, **timing.as_json()}


# --- cost attacks -----------------------------------------------------------------------------------
class _Slow(BaseException):
    """Raised by the alarm; a BaseException so that no verifier's ``except Exception`` eats it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, main thread only; elsewhere: no limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(_signum: int, _frame: object) -> None:
        raise _Slow

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _outcome(exc: Exception) -> str:
    return str(getattr(exc, "code", None) or type(exc).__name__)


def time_refusal(verify: Callable[[bytes], object], data: bytes, reps: int) -> tuple[float | None, str]:
    """Best time of ``reps`` calls and what they ended with; (None, "SLOW") past SLOW_SECONDS."""
    best, outcome = float("inf"), ""
    for _ in range(reps):
        start = time.perf_counter()
        try:
            with deadline(SLOW_SECONDS):
                verify(data)
            outcome = "accepted"
        except _Slow:
            return None, "SLOW"
        except Exception as exc:  # any refusal is the expected outcome
            outcome = _outcome(exc)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        if elapsed > SLOW_SECONDS:
            return None, "SLOW"
    return best, outcome


def time_read(data: bytes, reps: int) -> tuple[float, float, str]:
    """Best seconds to SHA-256 the bytes and to parse them with a hardened parser, and the parse outcome."""
    sha, parse, outcome = float("inf"), float("inf"), "ok"
    for _ in range(reps):
        start = time.perf_counter()
        hashlib.sha256(data).digest()
        middle = time.perf_counter()
        try:
            etree.fromstring(data, hardened_parser())
        except etree.XMLSyntaxError as exc:
            outcome = f"XMLSyntaxError: {str(exc)[:60]}"
        end = time.perf_counter()
        sha, parse = min(sha, middle - start), min(parse, end - middle)
    return sha, parse, outcome


def attack_row(
    attack: str, n: int, data: bytes, verify: Callable[[bytes], object], reps: int, *, hostile: bool = True
) -> dict[str, Any]:
    row: dict[str, Any] = {"attack": attack, "n": n, "bytes": len(data), "hostile": hostile}
    refuse, outcome = time_refusal(verify, data, reps)
    sha, parse, parsed = time_read(data, reps)
    kb = len(data) / 1024
    row |= {
        "status": "SLOW" if refuse is None else ("accepted" if outcome == "accepted" else "refused"),
        "code": outcome,
        "refuse_ms": None if refuse is None else 1000 * refuse,
        "refuse_us_per_kb": None if refuse is None else 1e6 * refuse / kb,
        "sha256_ms": 1000 * sha,
        "parse_ms": 1000 * parse,
        "read_us_per_kb": 1e6 * (sha + parse) / kb,
        "parse": parsed,
    }
    return row


def run_attacks(
    base: bytes, verify: Callable[[bytes], object], sizes: Sequence[int], reps: int, out: Callable[[str], object]
) -> dict[str, Any]:
    rows = []
    for attack, build in CORPUS.items():
        for n in sizes:
            data = build(base, n)
            if len(data) > MAX_BYTES:  # refused by size alone: the oversized case below covers it
                rows.append(
                    {
                        "attack": attack,
                        "n": n,
                        "bytes": len(data),
                        "hostile": True,
                        "status": "skipped",
                        "code": "over 1 MB",
                    }
                )
            else:
                rows.append(attack_row(attack, n, data, verify, reps))
            out(_attack_line(rows[-1]))
    oversized_n = (MAX_BYTES - len(base)) // len(b"<x/>") + 1_000
    oversized = attack_row("wide_tree (oversized)", oversized_n, CORPUS["wide_tree"](base, oversized_n), verify, reps)
    out(_attack_line(oversized))
    baseline = attack_row("genuine (no attack)", 0, base, verify, reps, hostile=False)
    out(_attack_line(baseline))
    return {
        "sizes": list(sizes),
        "max_bytes": MAX_BYTES,
        "slow_seconds": SLOW_SECONDS,
        "repetitions": reps,
        "table": rows,
        "oversized": oversized,
        "baseline": baseline,
    }


# --- the report -------------------------------------------------------------------------------------
def _libxmlsec() -> str:
    return ".".join(map(str, xmlsec.get_libxmlsec_version()))  # type: ignore[attr-defined]  # not in its stubs


def _node_versions() -> dict[str, str]:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    manifest = ROOT / "tests" / "e2e" / "xadesjs" / "node_modules" / "xadesjs" / "package.json"
    xadesjs = json.loads(manifest.read_text())["version"] if manifest.is_file() else "?"
    return {"node": node, "xadesjs": xadesjs}


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "signxml": version("signxml"),
        "cryptography": version("cryptography"),
        "lxml": version("lxml"),
        "libxml2": ".".join(map(str, etree.LIBXML_VERSION)),
        "libxml2 (xmlsec)": ".".join(map(str, xmlsec.get_libxml_version())),
        "xmlsec": version("xmlsec"),
        "libxmlsec1": _libxmlsec(),
        **_node_versions(),
    }


def machine(cpu: int | None) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "pinned_cpu": cpu,
    }


def _ratio(ours: Timing, peer: Timing) -> dict[str, float]:
    return {"time_per_doc": ours.ms / peer.ms, "docs_per_s": ours.rate / peer.rate}


def print_paths(results: dict[str, PathResult], corpus: Corpus, out: Callable[[str], object]) -> None:
    keys = list(results)
    out(f"\n{'docs/s':<24}{'docs':>6}" + "".join(f"{k:>11}" for k in keys))
    for name, docs in corpus.groups.items():
        reused = "*" if corpus.unique[name] < len(docs) else " "
        rates = "".join(f"{results[k].groups[name].rate:>11.1f}" for k in keys)
        out(f"{name:<24}{len(docs):>5}{reused}{rates}")
    out(f"{'all':<24}{len(corpus.documents):>6}" + "".join(f"{results[k].total.rate:>11.1f}" for k in keys))
    out(f"{'ms/doc (all)':<30}" + "".join(f"{results[k].total.ms:>11.2f}" for k in keys))
    for r in results.values():
        out(f"  {r.path.key}: {r.path.label} - {r.path.checks}")
    if any(corpus.unique[n] < len(d) for n, d in corpus.groups.items()):
        out("  * fewer distinct documents, reused round-robin (see notes)")
    ezla = results["ezla"].total
    for peer in ("signxml", "xmlsec"):
        ratio = _ratio(ezla, results[peer].total)
        per_doc, rate = ratio["time_per_doc"], ratio["docs_per_s"]
        out(f"ratio ezla/{peer}: {per_doc:.2f}x the time per document ({rate:.2f}x the docs/s)")


def _attack_line(row: dict[str, Any]) -> str:
    head = f"  {row['attack']:<24}{row['n']:>8}{row['bytes']:>10}"
    if row["status"] == "skipped":
        return f"{head}  skipped: {row['code']}"
    refuse = "SLOW (>5 s)" if row["refuse_ms"] is None else f"{row['refuse_ms']:.2f}"
    per_kb = "-" if row["refuse_us_per_kb"] is None else f"{row['refuse_us_per_kb']:.1f}"
    read = f"{row['sha256_ms']:.2f}+{row['parse_ms']:.2f}"
    code = "ACCEPTED: a hostile variant verified!" if row["hostile"] and row["status"] == "accepted" else row["code"]
    return f"{head}{refuse:>12}{per_kb:>9}{read:>14}{row['read_us_per_kb']:>9.1f}  {code}"


def attack_header() -> str:
    cols = f"{'n':>8}{'bytes':>10}{'refuse ms':>12}{'µs/KB':>9}{'read ms':>14}{'µs/KB':>9}  refused with"
    return f"  {'attack':<24}{cols}\n  {'':<24}{'':>18}{'(ezla)':>12}{'':>9}{'(sha256+parse)':>14}"


# --- the run ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    n: int = DEFAULT_N
    sizes: tuple[int, ...] = SIZES
    reps: int = 3
    rounds: int = 5
    submit: bool = False
    json_path: Path = DEFAULT_JSON


def run(settings: Settings, out: Callable[[str], object] = print) -> dict[str, Any]:
    """The whole bench; returns what it writes to ``settings.json_path``."""
    with tempfile.TemporaryDirectory(prefix="ezla-bench-") as tmp:
        directory = Path(tmp)
        out(f"preparing: PKI in {directory}, {settings.n} e-ZLA over {len(SIGNERS)} signers x EC P-256/RSA-2048 ...")
        pki = make_pki(directory)
        corpus = make_corpus(pki, settings.n, directory, out)
        # Received now, after every document was signed (their SigningTime is never in the future).
        ezla = ezla_verify(pki, datetime.now(UTC))
        paths = [ezla_path(ezla), signxml_path(pki), xmlsec_path(pki)]
        for path in paths:
            accept_all(path, corpus)
        out(f"all {len(corpus.documents)} documents accepted by every verifier; timing ...")
        with one_core() as cpu:
            results = time_paths(paths, corpus, settings.rounds)
            print_paths(results, corpus, out)
            out(f"\ncost attacks (ezla refusal, best of {settings.reps}; bail out at {SLOW_SECONDS:.0f} s):")
            out(attack_header())
            base = corpus.groups["ezla-sdk/ec"][0].data
            attacks = run_attacks(base, ezla, settings.sizes, settings.reps, out)
            submitted = time_submit(pki, corpus, directory, out) if settings.submit else None
    for note in corpus.notes:
        out(f"note: {note}")
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": machine(cpu),
        "n": settings.n,
        "signers": {name: {"documents": len(d), "unique": corpus.unique[name]} for name, d in corpus.groups.items()},
        "notes": corpus.notes,
        "paths": {
            k: {
                "label": r.path.label,
                "checks": r.path.checks,
                **r.total.as_json(),
                "per_signer": {g: t.as_json() for g, t in r.groups.items()},
            }
            for k, r in results.items()
        },
        "ratios": {f"ezla/{p}": _ratio(results["ezla"].total, results[p].total) for p in ("signxml", "xmlsec")},
        "attacks": attacks,
        "submit": submitted,
    }
    settings.json_path.parent.mkdir(parents=True, exist_ok=True)
    settings.json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out(f"\nwrote {settings.json_path}")
    return report


def parse_settings(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, help=f"documents (default {DEFAULT_N}; {QUICK_N} with --quick)")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: N={QUICK_N}, sizes {QUICK_SIZES}")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per cost attack (best is kept)")
    parser.add_argument(
        "--rounds", type=int, help="timing rounds, paths interleaved, best kept (default 5; 1 with --quick)"
    )
    parser.add_argument("--submit", action="store_true", help="also time ezla's submit into a temp SQLite")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    n = args.count or (QUICK_N if args.quick else DEFAULT_N)
    if n < len(SIGNERS) * len(KINDS):
        parser.error(f"--count must be at least {len(SIGNERS) * len(KINDS)} (one document per signer and key)")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    sizes = QUICK_SIZES if args.quick else SIZES
    rounds = args.rounds or (1 if args.quick else 5)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    return Settings(n=n, sizes=sizes, reps=args.reps, rounds=rounds, submit=args.submit, json_path=args.json)


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_settings(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CA over HTTP, keys in the PEM keystore vs in a PKCS#11 token (SoftHSM2), and the TSA.

    .venv/bin/python bench/ca_bench.py [--issuances 60] [--seconds 8] [--json PATH]

For each keystore: a fresh PKI (``ezla pki init``, with ``--pkcs11`` for the token), a node
(``ezla serve`` on SQLite, rate limits off), then
- **issuances/s**: doctors registered in the node's database beforehand; their enrollments (a CSR
  each, the real lint-before-sign, intent and TBS checks) posted by 4 client threads;
- **OCSP responses/s**: wrk, GET for one doctor's certificate (each answer is linted and signed
  anew: the responder keeps no pre-signed responses);
- **TSA time-stamps/s**: wrk, POST of one TimeStampReq to /v1/tsa (each answer a new token).
Figures go to stdout and to bench/results/ca.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from ezla.ca.service import register_doctor  # noqa: E402
from ezla.client import make_csr  # noqa: E402
from ezla.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from ezla.identifiers import make_npwz  # noqa: E402
from tests.e2e.procs import EZLA, Proc, free_port  # noqa: E402
from tests.identifiers import make_pesel  # noqa: E402
from tests.softhsm import PIN, new_token_for_a_child_process  # noqa: E402

DEFAULT_JSON = HERE / "results" / "ca.json"
WRK_BODY = HERE / "wrk_body.lua"
URL = "http://ezla.127.0.0.1.nip.io:8000"


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("EZLA_")},  # make exports some
        "EZLA_VAR_DIR": str(home / "var"),
        "EZLA_PKI_DIR": str(home / "pki"),
        "EZLA_DATABASE_URL": f"sqlite:///{home}/var/ezla.sqlite3",
        "EZLA_CA_KEY_PASSPHRASE": PIN,
        "EZLA_PUBLIC_URL": URL,
        "EZLA_WORKER": "0",
        "EZLA_LOG_LEVEL": "WARNING",
        "EZLA_RATE_LIMITS": "enrollment=0,ocsp=0,tsa=0",
        **extra,
    }


def _codes(home: Path, n: int) -> list[str]:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{home}/var/ezla.sqlite3"))
    codes = []
    with transaction(sessions) as session:
        for i in range(n):
            npwz = next(c for j in range(10) if (c := make_npwz(f"{(700000 + i * 10 + j) % 1_000_000:06d}")))
            reg = register_doctor(
                session,
                npwz=npwz,
                pesel=make_pesel(date(1980, 1, 1) + timedelta(days=i), i % 1000, female=bool(i % 2)),
                given_name="Anna",
                family_name=f"Bench{i}",
                ttl=timedelta(hours=1),
                now=datetime.now(UTC),
            )
            codes.append(reg.activation_code)
    return codes


def _issuances(url: str, codes: list[str], clients: int = 4) -> tuple[float, str]:
    csrs = [make_csr(ec.generate_private_key(ec.SECP256R1())) for _ in codes]
    work = list(zip(codes, csrs, strict=True))
    pems: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    if not work:
                        return
                    code, csr = work.pop()
                r = http.post("/v1/ca/enrollments", json={"activation_code": code, "csr_pem": csr})
                r.raise_for_status()
                with lock:
                    pems.append(r.json()["certificate_pem"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(pems) / (time.perf_counter() - start), pems[0]


def _wrk(wrk: str, url: str, seconds: int, *body: str) -> float:
    """Requests/s over ``seconds``; ``body``: a file and its content type, POSTed (wrk_body.lua)."""
    script = ["-s", str(WRK_BODY), url, "--", *body] if body else [url]
    out = subprocess.run(
        [wrk, "-t", "2", "-c", "8", "-d", f"{seconds}s", "--latency", *script],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk: {errors.group(1)} error answers from {url}\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    return float(found.group(1))


def _ocsp_url(base: str, pem: str, pki: Path) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    issuing = x509.load_pem_x509_certificate((pki / "issued" / "issuing.pem").read_bytes())
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuing, hashes.SHA256()).build()
    return f"{base}/v1/ca/ocsp/{quote(b64encode(req.public_bytes(serialization.Encoding.DER)).decode(), safe='')}"


def _tsa_query(path: Path) -> None:
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": secrets.token_bytes(32)},
            "cert_req": True,
        }
    )
    path.write_bytes(query.dump())


def run_keystore(kind: str, args: argparse.Namespace, wrk: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"ezla-ca-bench-{kind}-"))
    try:
        extra: dict[str, str] = {}
        init = [EZLA, "pki", "init"]
        if kind == "pkcs11":
            token = new_token_for_a_child_process(f"bench-{os.getpid()}")
            extra["SOFTHSM2_CONF"] = os.environ["SOFTHSM2_CONF"]
            init += ["--pkcs11", token.module, "--token", token.label]
        env = _env(home, extra)
        subprocess.run(init, env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([EZLA, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
        codes = _codes(home, args.issuances)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        node = Proc(
            f"node-{kind}", [EZLA, "serve", "--port", str(port)], env, home / "node.log", f"{base}/health/ready"
        )
        node.start()
        try:
            issued, pem = _issuances(base, codes)
            ocsp_rate = _wrk(wrk, _ocsp_url(base, pem, home / "pki"), args.seconds)
            _tsa_query(home / "query.tsq")
            tsa_rate = _wrk(wrk, f"{base}/v1/tsa", args.seconds, str(home / "query.tsq"), "application/timestamp-query")
        finally:
            node.stop()
        return {"issuances_per_s": round(issued, 1), "ocsp_per_s": round(ocsp_rate, 1), "tsa_per_s": round(tsa_rate, 1)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issuances", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: make bench-deps installs it")
    results = {kind: run_keystore(kind, args, wrk) for kind in ("pem", "pkcs11")}
    print(f"CA over HTTP on {os.cpu_count()} cores (node on SQLite; wrk -t2 -c8 {args.seconds}s):")
    print(f"{'':<22}{'PEM keystore':>14}{'PKCS#11 token':>16}{'token/PEM':>11}")
    for key, label in (
        ("issuances_per_s", "issuances/s"),
        ("ocsp_per_s", "OCSP responses/s"),
        ("tsa_per_s", "TSA time-stamps/s"),
    ):
        pem, token = results["pem"][key], results["pkcs11"][key]
        print(f"{label:<22}{pem:>14.1f}{token:>16.1f}{token / pem:>10.2f}x")
    report = {
        "machine": {"cpu_count": os.cpu_count()},
        "issuances": args.issuances,
        "seconds": args.seconds,
        "keystores": results,
        "ratios_token_over_pem": {k: round(results["pkcs11"][k] / results["pem"][k], 3) for k in results["pem"]},
        "notes": [
            "token: SoftHSM2 (Debian softhsm2), one logged-in session per node process, signatures serialised",
            "every OCSP response is linted (pkilint) and signed anew; an issuance lints the certificate first",
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

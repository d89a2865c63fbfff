"""End-to-end throughput and delivery lag on the twin-node cluster (``make bench``, after the
verification figures).

Starts what ``make cluster`` starts (HAProxy, nodes A and B, the registry) on free loopback ports
against the local PostgreSQL with fresh databases, enrolls a doctor, signs N e-ZLA beforehand, then
has C clients post them through HAProxy as fast as they are answered. Reports accepted e-ZLA/s and
latency, the delivery lag to each recipient (commit of the outbox row to its delivery), and the
verify-only limit: ezla's verifier on the same documents in this process, times the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography import x509

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # tools.cluster and tests.factories (appended: never shadows ezla)

from ezla.ca.ceremony import init_pki  # noqa: E402
from ezla.xades import DOCUMENT_SIGNING_EKU, SigningTimePolicy, verify_enveloped  # noqa: E402
from tests.conftest import pg_create, pg_drop  # noqa: E402
from tests.e2e.procs import free_port  # noqa: E402
from tests.factories import enroll, signed_sick_leave  # noqa: E402
from tools.cluster import Cluster, ezla_command, find_haproxy  # noqa: E402

PASSPHRASE = "bench-passphrase-not-secret"
XML = {"Content-Type": "application/xml"}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def verify_only(docs: list[bytes], root: Path) -> float:
    """Documents per second through ezla's verifier alone, one core."""
    trust = x509.load_pem_x509_certificate((root / "issued" / "root.pem").read_bytes())
    issuing = x509.load_pem_x509_certificate((root / "issued" / "issuing.pem").read_bytes())
    now = datetime.now(UTC)
    start = time.perf_counter()
    for d in docs:
        verify_enveloped(
            d,
            trust_roots=[trust],
            intermediates=[issuing],
            at=now,
            require_eku=DOCUMENT_SIGNING_EKU,
            policy=SigningTimePolicy(max_delay_days=None),
        )
    return len(docs) / (time.perf_counter() - start)


def drip_receiver() -> str:
    """A webhook receiver that sends its status line and then one byte every 0.2 s, forever."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while True:
                    time.sleep(0.2)
                    conn.sendall(b"X")
            except OSError:
                return

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/hook"


def _hostile_payer(cluster: Cluster, http: httpx.Client) -> None:
    """Every e-ZLA's payer (the sample's NIP) points its webhook at a receiver that drips."""
    made = subprocess.run(
        [*ezla_command(), "account", "add", "--role", "employer", "--nip", "5260250274", "--json"],
        env=cluster.child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    r = http.put(
        "/v1/employer/webhook",
        json={"url": drip_receiver(), "secret": "s3cret-s3cret-s3cret"},
        headers={"Authorization": f"Bearer {json.loads(made.stdout)['token']}"},
    )
    r.raise_for_status()


def post_all(url: str, docs: list[bytes], clients: int) -> tuple[float, dict[str, float], dict[int, int]]:
    """The Python fallback generator (httpx in threads): it shares the 2 cores and costs about as much
    CPU per request as a node, so the figures are lower than with wrk."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(reversed(docs))

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    doc = queue.pop()
                t = time.perf_counter()
                r = http.post("/v1/ezla", content=doc, headers=XML)
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    percentiles = {"p50": round(_pct(latencies, 0.5) * 1000, 1), "p99": round(_pct(latencies, 0.99) * 1000, 1)}
    return time.perf_counter() - start, percentiles, statuses


def post_with_wrk(
    wrk: str, url: str, docs: list[bytes], clients: int
) -> tuple[float, dict[str, float], dict[int, int]]:
    """wrk posts every document once (bench/wrk_post.lua): C threads, one connection each. Each
    thread marks its end in a file; the run ends when all have, and SIGINT makes wrk report."""
    with tempfile.TemporaryDirectory(prefix="ezla-wrk-") as tmp:
        folder = Path(tmp)
        for i, doc in enumerate(docs):
            (folder / f"{i}.xml").write_bytes(doc)
        command = [wrk, "-t", str(clients), "-c", str(clients), "-d", "3600s", "--timeout", "30s",
                   "-s", str(HERE / "wrk_post.lua"), url, "--", tmp, str(len(docs)), str(clients)]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        while len(list(folder.glob("done-*"))) < clients:
            if proc.poll() is not None:
                raise SystemExit(f"wrk ended early ({proc.returncode})")
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        statuses: dict[int, int] = {}
        for mark in folder.glob("done-*"):
            for code, n in json.loads(mark.read_text()).items():
                statuses[int(code)] = statuses.get(int(code), 0) + n
    report = json.loads(next(line for line in out.splitlines() if line.startswith("WRK "))[4:])
    if report["errors"]:
        # A socket error makes wrk reconnect and move on: that document was not answered, and the
        # thread's counts shift by one (the DB count below is what "accepted" reports).
        print(f"wrk: {report['errors']} socket errors or timeouts:\n{out}", file=sys.stderr)
    percentiles = {k: round(v / 1000, 1) for k, v in report["latency_us"].items()}
    return seconds, percentiles, statuses


def post(wrk: str | None, url: str, docs: list[bytes], clients: int) -> tuple[float, dict[str, float], dict[int, int]]:
    if wrk:
        return post_with_wrk(wrk, url, docs, clients)
    print("wrk not found (apt-get install wrk): the Python generator posts instead", file=sys.stderr)
    return post_all(url, docs, clients)


def stored_count(db_url: str, statuses: dict[int, int]) -> int:
    """Accepted e-ZLA, counted where they are kept; the answers (200: accepted on an earlier
    attempt that HAProxy retried) are only cross-checked."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM ezla_sick_leaves").fetchone()
    stored = int(row[0]) if row else 0
    answered = statuses.get(201, 0) + statuses.get(200, 0)
    if stored != answered:
        print(f"{answered} answered 200/201 but {stored} e-ZLA stored", file=sys.stderr)
    return stored


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_component(cluster: Cluster) -> dict[str, float]:
    """Where the CPU goes: each process of the cluster, PostgreSQL's backends, this load generator."""
    pids = {f"node {n}": h.process.pid for n, h in cluster.nodes.items() if h.process and h.process.pid}
    if cluster.registry and cluster.registry.pid:
        pids["registry"] = cluster.registry.pid
    if cluster.balancer and cluster.balancer.pid:
        pids["haproxy"] = cluster.balancer.pid
    out = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    postgres = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False).stdout.split()
    out["postgresql"] = sum(_cpu_seconds(int(p)) for p in postgres)
    out["load generator"] = _cpu_seconds(os.getpid())
    return out


def start_profiles(cluster: Cluster, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy (https://github.com/benfred/py-spy, not a dependency: install it to profile) on each
    node and the registry while the load runs; collapsed stacks, one file per process."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    out.mkdir(parents=True, exist_ok=True)
    pids = {f"node-{n}": h.process.pid for n, h in cluster.nodes.items() if h.process}
    if cluster.registry:
        pids["registry"] = cluster.registry.pid
    return [
        subprocess.Popen(
            [spy, "record", "--format", "raw", "--rate", "200", "--gil", "--pid", str(pid),
             "--output", str(out / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]  # fmt: skip


def stop_profiles(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for spy in spies:
        spy.wait(60)


def delivery_lags(db_url: str, n: int, timeout: float = 120) -> dict[str, list[float]]:
    """Waits until every delivery but the (hostile) webhooks' is done; lags of the delivered ones."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            pending = conn.execute(
                "SELECT count(*) FROM dist_deliveries WHERE status = 'pending' AND recipient <> 'employer_webhook'"
            ).fetchone()
            if pending and pending[0] == 0:
                break
            time.sleep(0.25)
        rows = conn.execute(
            "SELECT recipient, EXTRACT(EPOCH FROM delivered_at - created_at) FROM dist_deliveries "
            "WHERE status = 'delivered'"
        ).fetchall()
    lags: dict[str, list[float]] = {}
    for recipient, lag in rows:
        lags.setdefault(recipient, []).append(float(lag))
    return lags


def _report(result: dict[str, Any], lags: dict[str, list[float]], limit_one_core: float) -> None:
    hostile = ", the payer's webhook dripping" if result["hostile_webhook"] else ""
    head = f"{result['clients']} clients, {result['submitted']} e-ZLA on {result['cores']} cores{hostile}"
    print(f"\nthrough HAProxy, 2 nodes, {head}, posted by {result['generator']}")
    print(f"  accepted        {result['accepted_per_s']:8.1f} e-ZLA/s   (statuses {result['statuses']})")
    print(f"  latency         p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms")
    limit = result["verify_only_per_s"]
    print(f"  verify-only     {limit:8.1f} docs/s   ({limit_one_core:.0f}/s x {result['cores']} cores)")
    print(f"  share of limit  {result['share_of_verify_limit']:8.1%}")
    for r, v in sorted(lags.items()):
        print(
            f"  lag {r:<17} p50 {_pct(v, 0.5):.3f} s  p99 {_pct(v, 0.99):.3f} s  (n={len(v)}, mean {statistics.mean(v):.3f})"
        )
    cpu = sorted(result["cpu_ms_per_ezla"].items(), key=lambda kv: -kv[1])
    print("  CPU per e-ZLA   " + ", ".join(f"{k} {v} ms" for k, v in cpu))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=1500, help="e-ZLA to submit")
    parser.add_argument("-c", "--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--hostile", action="store_true", help="the payer's webhook drips (see issue 11)")
    parser.add_argument("--python-client", action="store_true", help="post with httpx threads, not wrk")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy each process into this directory")
    args = parser.parse_args()

    find_haproxy()
    name = f"ezla_load_{secrets.token_hex(4)}"
    db_url, registry_db_url = pg_create(name), pg_create(f"{name}_registry")
    work = Path(tempfile.mkdtemp(prefix="ezla-load-"))
    pki = work / "pki"
    init_pki(pki, PASSPHRASE, "http://ezla.127.0.0.1.nip.io:8000", datetime.now(UTC) - timedelta(days=1))
    env = {
        **os.environ,
        "EZLA_CA_KEY_PASSPHRASE": PASSPHRASE,
        "EZLA_REGISTRY_TOKEN": secrets.token_urlsafe(16),
        "EZLA_REGISTRY_READ_TOKEN": secrets.token_urlsafe(16),
        "EZLA_LOG_LEVEL": "WARNING",
        "EZLA_WEBHOOK_ALLOW_INSECURE": "1",  # the hostile receiver listens on loopback, over http
        "EZLA_RATE_LIMITS": "submission=0",  # the load generator is one client address
    }
    cluster = Cluster(
        lb_port=free_port(),
        node_ports={"A": free_port(), "B": free_port()},
        registry_port=free_port(),
        stats_port=free_port(),
        database_url=db_url,
        registry_database_url=registry_db_url,
        var_dir=work / "var",
        pki_dir=pki,
        env=env,
    )
    try:
        cluster.start()
        operator = cluster.operator_token()
        with httpx.Client(base_url=cluster.lb_url, timeout=30) as http:
            doctor = enroll(http, operator)
            if args.hostile:
                _hostile_payer(cluster, http)
        print(f"signing {args.count} e-ZLA ...", file=sys.stderr)
        docs = [signed_sick_leave(doctor) for _ in range(args.count)]
        limit_one_core = verify_only(docs[: min(300, len(docs))], pki)
        cores = os.cpu_count() or 1
        before = cpu_by_component(cluster)
        spies = start_profiles(cluster, args.profile) if args.profile else []
        wrk = None if args.python_client else shutil.which("wrk")
        seconds, latency_ms, statuses = post(wrk, cluster.lb_url, docs, args.clients)
        accepted = stored_count(db_url, statuses)
        lags = delivery_lags(db_url, accepted)
        stop_profiles(spies)
        after = cpu_by_component(cluster)
        cpu_ms = {k: round((after[k] - before.get(k, 0.0)) * 1000 / max(accepted, 1), 2) for k in after}
    finally:
        cluster.stop()
        pg_drop(name)
        pg_drop(f"{name}_registry")

    rate = accepted / seconds
    limit = limit_one_core * cores
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": cores,
        "clients": args.clients,
        "hostile_webhook": args.hostile,
        "submitted": args.count,
        "statuses": statuses,
        "accepted_per_s": round(rate, 1),
        "generator": "wrk" if wrk else "python",
        "latency_ms": latency_ms,
        "verify_only_per_s": round(limit, 1),
        "share_of_verify_limit": round(rate / limit, 3),
        "cpu_ms_per_ezla": cpu_ms,
        "delivery_lag_s": {
            r: {"p50": round(_pct(v, 0.5), 3), "p99": round(_pct(v, 0.99), 3), "n": len(v)} for r, v in lags.items()
        },
    }
    _report(result, lags, limit_one_core)
    out = args.json or HERE / "results" / f"load-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  json            {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

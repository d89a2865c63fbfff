"""Two twin nodes, the registry and HAProxy on one machine, without Docker (``make cluster``).

``python -m tools.cluster`` prepares once (databases created if missing, ``ezla pki init``,
``ezla db upgrade``, ``ezla registry db-upgrade``, a registry token in ``var/``), then starts the
registry, node A, node B and HAProxy (rendered from ``deploy/haproxy.cfg``), prints the URLs and
process ids, and stops everything on Ctrl-C or SIGTERM: nodes drain first (readiness 503,
in-flight requests finish, leases released), then HAProxy and the registry.

The end-to-end chaos tests drive the same ``Cluster`` class on free ports and use ``Cluster.node``
handles to kill, freeze, thaw and drain-restart a node.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx

from ezla.migrate import ensure_database, redact
from tools.formation import Formation
from tools.processes import ClusterError, Process

__all__ = ["Cluster", "ClusterError", "Formation", "NodeHandle", "Process", "find_haproxy"]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ezla"
DEFAULT_REGISTRY_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ezla_registry"
NODE_LETTERS = "ABCDEFGHIJ"  # node names: A, B, C, ... (the node byte of serials comes from them)
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def ezla_command() -> list[str]:
    """The ``ezla`` entry point of this interpreter's environment (a venv need not be activated)."""
    script = Path(sys.executable).parent / "ezla"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ezla.cli import main; main()"]


def find_haproxy(explicit: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("EZLA_HAPROXY"), shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ClusterError("haproxy not found: install it (Debian: apt-get install haproxy) or set EZLA_HAPROXY")


def find_template() -> Path:
    candidates = [
        Path(os.environ["EZLA_HAPROXY_TEMPLATE"]) if os.environ.get("EZLA_HAPROXY_TEMPLATE") else None,
        Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg",  # a source checkout
        Path.cwd() / "deploy" / "haproxy.cfg",
    ]
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise ClusterError("deploy/haproxy.cfg not found (run from the repository or set EZLA_HAPROXY_TEMPLATE)")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{name}}`` outside comments; an unknown name is an error, not an empty string."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ClusterError(f"haproxy template: no value for {{{{{name}}}}}")
        return values[name]

    return "".join(
        line if line.lstrip().startswith("#") else _PLACEHOLDER.sub(sub, line)
        for line in template.splitlines(keepends=True)
    )


def public_url_for(host: str, port: int) -> str:
    """The URL put into AIA / CRL distribution points. pkilint refuses IP addresses and internal
    names there, so an IP becomes its nip.io name (public DNS that resolves back to the IP)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    return f"http://ezla.{ip}.nip.io:{port}" if ip.version == 4 else f"http://[{ip}]:{port}"


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


@dataclass
class NodeHandle:
    """A node of the cluster, for operators' scripts and the chaos tests."""

    name: str
    host: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.alive()

    def start(self, *, wait: bool = True) -> None:
        self.process.start(wait=wait)

    def kill(self) -> None:
        self.process.kill()

    def sigstop(self) -> None:
        """Freeze the node (a hung process: the kernel still accepts connections, nobody answers)."""
        self.process.send(signal.SIGSTOP)

    def sigcont(self) -> None:
        self.process.send(signal.SIGCONT)

    def drain(self) -> None:
        """SIGTERM without waiting: readiness turns 503 at once, the node exits after draining."""
        self.process.terminate()

    def wait(self, timeout: float = 30.0) -> int | None:
        """Wait for a draining node to exit; SIGKILL after ``timeout``."""
        return self.process.stop(timeout, signalled=True)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful stop: drain, finish in-flight requests, release leases, exit."""
        return self.process.stop(timeout)

    def drain_restart(self, *, timeout: float = 30.0) -> int | None:
        """One step of a rolling update: drain and stop, then start again and wait until ready."""
        rc = self.stop(timeout)
        self.start()
        return rc


@dataclass
class Cluster:
    """The twin-node topology on loopback. ``start()`` prepares and starts; ``stop()`` drains."""

    host: str = "127.0.0.1"
    lb_port: int = 8080
    node_ports: Mapping[str, int] = field(default_factory=lambda: {"A": 8001, "B": 8002})
    registry_port: int = 8100
    stats_port: int = 8404
    database_url: str = DEFAULT_DATABASE_URL
    registry_database_url: str = DEFAULT_REGISTRY_DATABASE_URL
    var_dir: Path = Path("var")
    pki_dir: Path | None = None  # default: EZLA_PKI_DIR or pki/
    public_url: str | None = None  # default: EZLA_PUBLIC_URL or the load balancer's nip.io name
    env: Mapping[str, str] | None = None  # base environment for every child (default: os.environ)
    haproxy: str | None = None
    template: Path | None = None
    # A pg_auto_failover formation, one data node per twin: each twin is app + database. Without
    # one, both nodes share the PostgreSQL at ``database_url``.
    formation: Formation | None = None
    nodes: dict[str, NodeHandle] = field(default_factory=dict, init=False)
    registry: Process | None = field(default=None, init=False)
    balancer: Process | None = field(default=None, init=False)

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "cluster"

    @property
    def lb_url(self) -> str:
        return f"http://{self.host}:{self.lb_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.host}:{self.stats_port}/stats"

    @property
    def node_urls(self) -> list[str]:
        return [self.nodes[n].url for n in self.nodes] or [f"http://{self.host}:{p}" for p in self.node_ports.values()]

    def node(self, name: str) -> NodeHandle:
        return self.nodes[name]

    # --- preparation ------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env["EZLA_DATABASE_URL"] = self.database_url
        env["EZLA_REGISTRY_DATABASE_URL"] = self.registry_database_url
        env["EZLA_REGISTRY_URL"] = self.registry_url
        env["EZLA_VAR_DIR"] = str(self.var_dir)
        env["EZLA_PKI_DIR"] = str(self.pki_dir or env.get("EZLA_PKI_DIR") or "pki")
        env["EZLA_PUBLIC_URL"] = (
            self.public_url or env.get("EZLA_PUBLIC_URL") or public_url_for(self.host, self.lb_port)
        )
        env.setdefault("EZLA_LOG_LEVEL", "INFO")
        env.setdefault("EZLA_TRUSTED_PROXIES", "127.0.0.1")  # HAProxy: its X-Forwarded-For names the client
        for name, default in (
            ("EZLA_REGISTRY_TOKEN", "registry-token"),
            ("EZLA_REGISTRY_READ_TOKEN", "registry-read-token"),
        ):
            if not env.get(name):  # the nodes write with one, people read with the other
                token_file = Path(env.get(f"{name}_FILE") or self.var_dir / default)
                if not token_file.exists():
                    token_file.parent.mkdir(parents=True, exist_ok=True)
                    token_file.touch(mode=0o600)
                    token_file.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
                env[f"{name}_FILE"] = str(token_file)
        return env

    def operator_token(self) -> str:
        """A new operator account on the cluster's database; its bearer token (for scripts and tests)."""
        made = subprocess.run(
            [*ezla_command(), "account", "add", "--role", "operator", "--json"],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return str(json.loads(made.stdout)["token"])

    def prepare(self, env: Mapping[str, str]) -> None:
        """Everything that must happen once, before any node starts."""
        for url in (self.database_url, self.registry_database_url):
            if not _is_postgres(url):
                # SQLite is the single-node default; two nodes need one shared PostgreSQL.
                raise ClusterError(f"two nodes need PostgreSQL, not {redact(url)}")
            ensure_database(url)
        for args in (["pki", "init"], ["db", "upgrade"], ["registry", "db-upgrade"]):
            done = subprocess.run(
                [*ezla_command(), *args], env=dict(env), capture_output=True, text=True, timeout=180, check=False
            )
            if done.returncode != 0:
                raise ClusterError(f"ezla {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def render_haproxy(self) -> Path:
        template = (self.template or find_template()).read_text(encoding="utf-8")
        ports = dict(self.node_ports)
        config = render_template(
            template,
            {
                "bind": f"{self.host}:{self.lb_port}",
                # One line per node: nothing assumes two (make cluster NODES=3).
                "servers": "\n".join(
                    f"    server {name} {self.host}:{port} check" for name, port in ports.items()
                ).lstrip(),
                "stats_bind": f"{self.host}:{self.stats_port}",
            },
        )
        path = self.run_dir / "haproxy.cfg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config, encoding="utf-8")
        return path

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> Cluster:
        if len(self.node_ports) < 2:
            raise ClusterError("a cluster has two nodes or more")
        haproxy = find_haproxy(self.haproxy)
        try:
            if self.formation is not None:
                self.formation.start()
                self.database_url = self.formation.url("ezla")
                self.registry_database_url = self.formation.url("ezla_registry")
            env = self.child_env()
            self.prepare(env)
        except BaseException:
            if self.formation is not None:
                self.formation.stop()
            raise
        cfg = self.render_haproxy()
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise ClusterError(f"haproxy rejects {cfg}:\n{check.stdout}{check.stderr}")
        logs = self.run_dir / "logs"
        ezla = ezla_command()
        try:
            self.registry = Process(
                "registry",
                [*ezla, "registry", "serve", "--host", self.host, "--port", str(self.registry_port)],
                {**env, "EZLA_NODE_ID": "registry"},
                logs / "registry.log",
                f"{self.registry_url}/health/ready",
            )
            self.registry.start()
            for name, port in self.node_ports.items():
                proc = Process(
                    f"node-{name.lower()}",
                    [*ezla, "serve", "--host", self.host, "--port", str(port), "--node-id", name],
                    {**env, "EZLA_NODE_ID": name},
                    logs / f"node-{name.lower()}.log",
                    f"http://{self.host}:{port}/health/ready",
                )
                self.nodes[name] = NodeHandle(name, self.host, port, proc)
                proc.start(wait=False)
            for handle in self.nodes.values():
                handle.process.wait_ready()
            self.balancer = Process("haproxy", [haproxy, "-db", "-f", str(cfg)], env, logs / "haproxy.log")
            self.balancer.start()
            self.wait_balanced(set(self.node_ports))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Drain both nodes at once, then stop HAProxy and the registry; bounded by ``timeout``."""
        for handle in self.nodes.values():
            handle.drain()
        for handle in self.nodes.values():
            handle.wait(timeout)
        for proc in (self.balancer, self.registry):
            if proc is not None:
                proc.stop(10)
        for proc in [*(h.process for h in self.nodes.values()), self.balancer, self.registry]:
            if proc is not None:
                proc.close_log()
        if self.formation is not None:
            self.formation.stop()

    # --- whole twins ------------------------------------------------------------------------
    def kill_twin(self, name: str) -> None:
        """SIGKILL a twin's app and its PostgreSQL together (the machine is gone)."""
        self.node(name).kill()
        if self.formation is not None:
            self.formation.kill(name)

    def restart_twin(self, name: str) -> None:
        """Bring a killed twin back: its database rejoins as the standby, its app takes traffic."""
        if self.formation is not None:
            self.formation.start_node(name)
        if not self.node(name).alive():
            self.node(name).start()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- load balancer view -----------------------------------------------------------------
    def lb_servers(self) -> dict[str, str]:
        """HAProxy's view of each node: ``UP``, ``DOWN``, ``MAINT``, ``UP 1/2`` (from the stats CSV)."""
        r = httpx.get(f"{self.stats_url};csv", timeout=2)
        r.raise_for_status()
        rows = csv.DictReader(io.StringIO(r.text.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "ezla_nodes" and row["svname"] not in {"FRONTEND", "BACKEND"}
        }

    def wait_balanced(self, up: set[str], *, timeout: float = 30.0) -> None:
        """Wait until HAProxy sends traffic to exactly the nodes in ``up`` (others not UP)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.lb_servers()
            except httpx.HTTPError:
                seen = {}
            if seen and all((seen.get(n) == "UP") == (n in up) for n in self.node_ports):
                return
            time.sleep(0.05)
        raise ClusterError(f"HAProxy did not converge to {sorted(up)} UP within {timeout:.0f} s: {seen}")

    def describe(self) -> str:
        lines = [
            f"HAProxy   {self.lb_url}   (pid {self.balancer.pid if self.balancer else '-'}; stats {self.stats_url})"
        ]
        lines += [f"node {h.name}    {h.url}   (pid {h.pid})" for h in self.nodes.values()]
        lines.append(f"registry  {self.registry_url}   (pid {self.registry.pid if self.registry else '-'})")
        lines.append(f"database  {redact(self.database_url)}")
        if self.formation is not None:
            lines.append(
                f"formation monitor :{self.formation.monitor_port}, data nodes "
                + ", ".join(f"{t}:{p}" for t, p in self.formation.node_ports.items())
                + f" ({self.formation.data_root})"
            )
        lines.append(f"logs      {self.run_dir / 'logs'}/*.log")
        return "\n".join(lines)


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--host", envvar="EZLA_CLUSTER_HOST", default="127.0.0.1", show_default=True)
@click.option("--lb-port", envvar="EZLA_CLUSTER_LB_PORT", type=int, default=8080, show_default=True)
@click.option(
    "--nodes", envvar="EZLA_CLUSTER_NODES", type=click.IntRange(2, len(NODE_LETTERS)), default=2, show_default=True
)
@click.option(
    "--node-port",
    envvar="EZLA_CLUSTER_NODE_PORT",
    type=int,
    default=8001,
    show_default=True,
    help="Node A's port; B, C, ... take the next ones.",
)
@click.option("--registry-port", envvar="EZLA_CLUSTER_REGISTRY_PORT", type=int, default=8100, show_default=True)
@click.option("--stats-port", envvar="EZLA_CLUSTER_STATS_PORT", type=int, default=8404, show_default=True)
@click.option("--database-url", envvar="EZLA_DATABASE_URL", default=DEFAULT_DATABASE_URL)
@click.option("--registry-database-url", envvar="EZLA_REGISTRY_DATABASE_URL", default=DEFAULT_REGISTRY_DATABASE_URL)
@click.option("--var-dir", envvar="EZLA_VAR_DIR", type=click.Path(path_type=Path), default=Path("var"))
@click.option("--haproxy", default=None, help="haproxy binary (default: EZLA_HAPROXY or PATH)")
@click.option(
    "--formation/--shared-postgres",
    default=True,
    show_default=True,
    help="Each twin with its own PostgreSQL in a pg_auto_failover formation (monitor + one data node per "
    "twin), or both on the shared server at --database-url.",
)
@click.option("--pg-monitor-port", envvar="EZLA_CLUSTER_PG_MONITOR_PORT", type=int, default=6000, show_default=True)
@click.option(
    "--pg-port",
    envvar="EZLA_CLUSTER_PG_PORT",
    type=int,
    default=6001,
    show_default=True,
    help="Twin A's PostgreSQL port; B, C, ... take the next ones.",
)
def main(
    host: str,
    lb_port: int,
    nodes: int,
    node_port: int,
    registry_port: int,
    stats_port: int,
    database_url: str,
    registry_database_url: str,
    var_dir: Path,
    haproxy: str | None,
    formation: bool,
    pg_monitor_port: int,
    pg_port: int,
) -> None:
    cluster = Cluster(
        host=host,
        lb_port=lb_port,
        node_ports={NODE_LETTERS[i]: node_port + i for i in range(nodes)},
        registry_port=registry_port,
        stats_port=stats_port,
        database_url=database_url,
        registry_database_url=registry_database_url,
        var_dir=var_dir,
        haproxy=haproxy,
        # One formation per node count: a formation made for three twins does not run with two.
        formation=Formation(
            pg_monitor_port,
            {NODE_LETTERS[i]: pg_port + i for i in range(nodes)},
            root=Path(tempfile.gettempdir()) / f"ezla-formation-{pg_monitor_port}-{nodes}",
        )
        if formation
        else None,
    )
    stopping = threading.Event()

    def on_signal(signum: int, _: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    names = ", ".join(NODE_LETTERS[:nodes])
    click.echo(
        "starting: "
        + (f"PostgreSQL formation (monitor; data nodes {names}), " if formation else "")
        + f"migrations, registry, nodes {names}, HAProxy ..."
    )
    try:
        cluster.start()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(cluster.describe())
    click.echo("Ctrl-C stops everything (nodes drain first).")
    reported: set[str] = set()
    while not stopping.wait(1.0):
        # Someone killed a node by hand (chaos by hand is welcome): say so once, keep running.
        for proc in [*(h.process for h in cluster.nodes.values()), cluster.registry, cluster.balancer]:
            if proc is not None and not proc.alive() and proc.name not in reported:
                reported.add(proc.name)
                click.echo(f"{proc.name} (pid {proc.pid}) exited with {proc.returncode}", err=True)
    click.echo("stopping: draining nodes ...")
    cluster.stop()
    click.echo("stopped")


if __name__ == "__main__":
    main()

"""A pg_auto_failover formation on loopback: a monitor and one PostgreSQL per twin (``make cluster``).

Each twin node (A, B, ...) is an app *and* a PostgreSQL data node (a, b, ...). While the standby
is healthy the primary commits synchronously to it (pg_auto_failover sets
``synchronous_standby_names``), so an acknowledged e-ZLA is on both before the client hears of it.
The monitor (in production a small third site) health-checks the data nodes and promotes the
standby when the primary is gone; the old primary rejoins as the standby when it comes back
(pg_rewind). Apps connect with a libpq host list and ``target_session_attrs=read-write``.

The monitor's health checks are tightened from pg_auto_failover's production defaults (a node is
declared unhealthy after 20 s) to about a second, so a whole-twin loss heals within a few seconds
on loopback; docs/postgres-ha.md says what to choose on a real network.

PostgreSQL refuses to run as root: as root, every ``pg_autoctl`` runs as the ``postgres`` user,
and the data lives in a directory that user owns.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tools.processes import ClusterError, Process

# The monitor's failover timing, shared with compose's monitor: a dead primary is noticed in 1-2 s
# and its standby promoted within about 8 s (deploy/pg_auto_failover/monitor-failover.conf says why
# each value is safe together with KEEPER_TIMEOUTS).
MONITOR_CONF = Path(__file__).resolve().parents[1] / "deploy" / "pg_auto_failover" / "monitor-failover.conf"


def _monitor_settings(path: Path = MONITOR_CONF) -> dict[str, str]:
    settings: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


FAST_MONITOR = _monitor_settings()
KEEPER_TIMEOUTS = {"timeout.network_partition_timeout": "2"}
POSTGRES_USER = "postgres"
SETTLED = frozenset({"single", "primary", "wait_primary", "secondary"})


def find_iptables() -> str:
    found = shutil.which("iptables")
    if found is None:
        raise ClusterError("iptables not found: the partition test needs it (Debian: apt-get install iptables)")
    return found


def _partition_rule(port: str) -> list[str]:
    return [
        "-p",
        "tcp",
        "--dport",
        port,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
        "-m",
        "comment",
        "--comment",
        "ezla",
    ]


def _iptables(*args: str) -> None:
    done = subprocess.run([find_iptables(), "-w", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise ClusterError(f"iptables {' '.join(args)}: {done.stderr.strip()}")


def find_pg_autoctl() -> str:
    found = shutil.which("pg_autoctl") or ("/usr/bin/pg_autoctl" if Path("/usr/bin/pg_autoctl").exists() else None)
    if found is None:
        raise ClusterError(
            "pg_autoctl not found: install pg_auto_failover "
            "(Debian: apt-get install postgresql-15-auto-failover pg-auto-failover-cli)"
        )
    return found


def postgres_bindir() -> str:
    """pg_autoctl drives pg_ctl, initdb and pg_rewind: the newest installed PostgreSQL's."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        found = shutil.which("pg_ctl")
        if found is None:
            raise ClusterError("PostgreSQL's pg_ctl not found (Debian: apt-get install postgresql)")
        return str(Path(found).parent)
    return str(Path(candidates[-1]).parent)


@dataclass
class DataNode:
    name: str  # the twin's name, lower case: a, b, ...
    port: int
    process: Process | None = None


@dataclass
class Formation:
    """Monitor on ``monitor_port``; one data node per twin on ``node_ports`` (``{"A": 6001, ...}``)."""

    monitor_port: int = 6000
    node_ports: Mapping[str, int] = field(default_factory=lambda: {"A": 6001, "B": 6002})
    root: Path | None = None  # default: a directory in the system temp dir, named after the monitor port
    host: str = "127.0.0.1"
    monitor: Process | None = field(default=None, init=False)
    nodes: dict[str, DataNode] = field(default_factory=dict, init=False)
    partitioned: set[str] = field(default_factory=set, init=False)  # twins cut off by ``partition``

    # --- where things are -------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        return self.root or Path(tempfile.gettempdir()) / f"ezla-formation-{self.monitor_port}"

    def pgdata(self, name: str) -> Path:
        return self.data_root / name.lower()

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@{self.host}:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def url(self, dbname: str) -> str:
        """What the apps use: every data node, and libpq picks the one that accepts writes."""
        hosts = ",".join(f"{self.host}:{port}" for port in self.node_ports.values())
        return f"postgresql://{POSTGRES_USER}@{hosts}/{dbname}?target_session_attrs=read-write&connect_timeout=2"

    def node_url(self, twin: str, dbname: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@{self.host}:{self.node_ports[twin]}/{dbname}?connect_timeout=2"

    # --- running pg_autoctl -----------------------------------------------------------------
    def _as_postgres(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", POSTGRES_USER, "--", *args]
        return args

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "EZLA_"))}
        env["PATH"] = f"{postgres_bindir()}:{env.get('PATH', '/usr/bin:/bin')}"
        # pg_autoctl keeps its config and state files by pgdata path under XDG dirs: keep them with
        # the data, so a formation made again at the same path starts clean.
        for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "share"), ("XDG_RUNTIME_DIR", "run")):
            env[var] = str(self.data_root / "xdg" / sub)
        return env

    def autoctl(self, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run(
            self._as_postgres([find_pg_autoctl(), *args]),
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.data_root,
        )
        if done.returncode != 0:
            raise ClusterError(f"pg_autoctl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _prepare_root(self) -> None:
        for path in (self.data_root, *(self.data_root / "xdg" / d for d in ("config", "share", "run"))):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700 if "xdg" in path.parts else 0o755)
            if os.geteuid() == 0:
                shutil.chown(path, POSTGRES_USER, POSTGRES_USER)
        if os.geteuid() == 0:
            shutil.chown(self.data_root / "xdg", POSTGRES_USER, POSTGRES_USER)

    def _keeper(self, name: str, args: list[str]) -> Process:
        log = self.data_root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = Process(f"pg-{name}", self._as_postgres([find_pg_autoctl(), *args]), self._env(), log)
        proc.start(wait=False)
        return proc

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, *, timeout: float = 120.0) -> Formation:
        """Create (first time) or run (afterwards) the monitor and every data node; returns when
        the formation has a primary and every other node is its secondary."""
        self._prepare_root()
        monitor_data = self.pgdata("monitor")
        if (monitor_data / "PG_VERSION").exists():
            self.monitor = self._keeper("monitor", ["run", "--pgdata", str(monitor_data)])
        else:
            self.monitor = self._keeper(
                "monitor",
                [
                    "create", "monitor", "--pgdata", str(monitor_data), "--pgport", str(self.monitor_port),
                    "--hostname", self.host, "--auth", "trust", "--no-ssl", "--run",
                ],
            )  # fmt: skip
        self._wait(lambda: self._accepts(self.monitor_port, "pg_auto_failover"), timeout, "the monitor to be ready")
        self._tune_monitor()
        existing = [t for t in self.node_ports if (self.pgdata(t) / "PG_VERSION").exists()]
        for twin, port in self.node_ports.items():
            self.nodes[twin] = DataNode(twin.lower(), port)
        for twin in existing:  # known to the monitor: all at once, each resumes its role
            self.start_node(twin)
        for twin, port in self.node_ports.items():
            if twin in existing:
                continue
            self.start_node(twin)
            # New nodes one at a time: the first becomes primary, the next ones clone it as standbys.
            self._wait(
                lambda t=twin, port=port: self._reported(t) in SETTLED and self._accepts(port),
                timeout,
                f"data node {twin} to join",
            )
            self._set_keeper_timeouts(twin)
        self.wait_healthy(timeout=timeout)
        return self

    def start_node(self, twin: str) -> None:
        """Start (or restart, after a kill) a twin's data node: a returning old primary rejoins as the
        standby by itself."""
        node = self.nodes[twin]
        data = self.pgdata(node.name)
        if (data / "PG_VERSION").exists():
            args = ["run", "--pgdata", str(data)]
        else:
            args = [
                "create", "postgres", "--pgdata", str(data), "--pgport", str(node.port), "--name", node.name,
                "--hostname", self.host, "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl", "--run",
            ]  # fmt: skip
        node.process = self._keeper(node.name, args)

    def stop(self) -> None:
        """The monitor first, so that stopping the data nodes is not taken for a failure (a stopped
        primary would otherwise be failed over in the middle of the shutdown), then the data nodes."""
        for twin in list(self.partitioned):  # never leave a firewall rule behind
            self.heal(twin)
        if self.monitor is not None:
            self.monitor.stop(30)
            self._kill_postmaster(self.pgdata("monitor"))
        for node in self.nodes.values():
            if node.process is not None:
                self._signal_node(node, signal.SIGCONT)
                node.process.stop(30)
            self._kill_postmaster(self.pgdata(node.name))  # a keeper killed earlier left none, or one
        for proc in [self.monitor, *(n.process for n in self.nodes.values())]:
            if proc is not None:
                proc.close_log()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)

    # --- chaos ----------------------------------------------------------------------------------
    def kill(self, twin: str) -> None:
        """SIGKILL the twin's keeper and its PostgreSQL together: the machine is gone."""
        node = self.nodes[twin]
        self._signal_node(node, signal.SIGKILL)
        self._kill_postmaster(self.pgdata(node.name))
        if node.process is not None:
            node.process.wait(10)

    def freeze(self, twin: str) -> None:
        """SIGSTOP keeper and PostgreSQL: the node answers nobody, as when its network is cut."""
        self._signal_node(self.nodes[twin], signal.SIGSTOP)

    def thaw(self, twin: str) -> None:
        self._signal_node(self.nodes[twin], signal.SIGCONT)

    def partition(self, twin: str) -> None:
        """Cut the twin's database host off the network while everything on it keeps running.

        Its PostgreSQL port refuses every packet (iptables, with a TCP reset): the apps, the
        standby's replication and the monitor's health checks all lose it, established connections
        included. A reset rather than a silent drop: a dropped packet leaves a connection in TCP's
        retransmission backoff, and after the heal the old primary's own keeper waited a minute on
        one before it could step down (long partitions end that way too: connections time out).
        Its keeper is frozen, as if its own link to the monitor were cut too (on one loopback, a rule cannot tell
        its packets from the other keeper's); PostgreSQL itself runs on, so commits in flight on it
        wait for a standby they cannot reach, and none is acknowledged.
        """
        port = str(self.nodes[twin].port)
        _iptables("-I", "INPUT", *_partition_rule(port))
        self.partitioned.add(twin)
        self._signal_keepers(self.nodes[twin], signal.SIGSTOP)

    def heal(self, twin: str) -> None:
        """Undo ``partition``: idempotent, so a fixture can always call it."""
        if twin not in self.partitioned:
            return
        port = str(self.nodes[twin].port)
        with suppress(ClusterError):  # already gone
            while True:
                _iptables("-D", "INPUT", *_partition_rule(port))
        self.partitioned.discard(twin)
        self._signal_keepers(self.nodes[twin], signal.SIGCONT)

    def _signal_keepers(self, node: DataNode, sig: int) -> None:
        """The node's pg_autoctl processes (keeper, supervisor), not its PostgreSQL."""
        if node.process is None or not node.process.alive():
            return
        group = os.getpgid(node.process.pid)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() == "pg_autoctl" and os.getpgid(int(entry.name)) == group:
                    os.kill(int(entry.name), sig)
            except (OSError, ProcessLookupError):
                continue

    def switchover(self, *, timeout: float = 60.0) -> None:
        """The planned way: the primary hands over to the standby (``pg_autoctl perform switchover``),
        with writes fenced first.

        pg_auto_failover 2.0 (Debian 12's) can, in the middle of a switchover, give the old primary
        ``wait_primary`` for a moment: its standby has left ``secondary`` (it is being promoted), so
        the monitor's "no healthy standby" rule turns synchronous replication off (upstream #774,
        fixed after 2.0). A commit acknowledged in that moment exists only on the old primary and is
        rewound away. So the primary stops taking writes before the monitor is asked: clients get
        503s and retry on the new primary a few seconds later, as they would anyway.
        """
        old = self.primary()
        if old is not None:
            self._fence_writes(old)
        try:
            self.autoctl(
                "perform", "switchover", "--pgdata", str(self.pgdata("monitor")), "--formation", "default",
                timeout=timeout,
            )  # fmt: skip
        finally:
            if old is not None:
                self._unfence_writes(old, timeout=timeout)

    def _fence_writes(self, twin: str, *, grace: float = 5.0) -> None:
        """New transactions on ``twin`` are read-only; every transaction begun before that ends,
        within ``grace`` on its own or else terminated (its client sees an error, never a commit)."""
        with psycopg.connect(self.node_url(twin), autocommit=True, connect_timeout=2) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only TO on")
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.1)  # backends take the reload at their next command
            fenced_at = conn.execute("SELECT clock_timestamp()").fetchone()
            assert fenced_at is not None
            older = (
                "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND xact_start < %s"
            )
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                row = conn.execute(f"SELECT count(*) {older}", fenced_at).fetchone()
                if row is not None and row[0] == 0:
                    return
                time.sleep(0.05)
            conn.execute(f"SELECT pg_terminate_backend(pid) {older}", fenced_at)

    def _unfence_writes(self, twin: str, *, timeout: float) -> None:
        """Back to the default on the old primary, now a standby (or still the primary, if the
        switchover failed). pg_autoctl sets the same setting itself when it promotes a node."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.node_url(twin), autocommit=True, connect_timeout=2) as conn:
                    conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                    conn.execute("SELECT pg_reload_conf()")
                    return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _signal_node(self, node: DataNode, sig: int) -> None:
        if node.process is not None and node.process.alive():
            with suppress(ProcessLookupError):
                os.killpg(node.process.pid, sig)  # the keeper's session: keeper, postgres, backends
        pid = self._postmaster_pid(self.pgdata(node.name))
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)

    @staticmethod
    def _postmaster_pid(data: Path) -> int | None:
        try:
            first = (data / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    def _kill_postmaster(self, data: Path) -> None:
        pid = self._postmaster_pid(data)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return

    def _set_keeper_timeouts(self, twin: str) -> None:
        """Once, after the node joined: kept in its pg_autoctl.cfg across restarts."""
        data = self.pgdata(self.nodes[twin].name)
        for key, value in KEEPER_TIMEOUTS.items():
            self.autoctl("config", "set", "--pgdata", str(data), key, value)
        self.autoctl("reload", "--pgdata", str(data))

    # --- state ----------------------------------------------------------------------------------
    def state(self) -> list[dict[str, object]]:
        out = self.autoctl("show", "state", "--pgdata", str(self.pgdata("monitor")), "--json", timeout=20)
        return list(json.loads(out))

    def _reported(self, twin: str) -> str | None:
        name = twin.lower()
        try:
            for node in self.state():
                if node.get("nodename") == name:
                    return str(node.get("current_group_state"))
        except (ClusterError, ValueError, subprocess.TimeoutExpired):
            return None
        return None

    def primary(self) -> str | None:
        """The twin whose data node accepts writes now (asked of PostgreSQL, not of the monitor)."""
        for twin in self.node_ports:
            try:
                with psycopg.connect(self.node_url(twin), connect_timeout=1) as conn:
                    # Out of recovery is not enough: a standby being promoted stays read-only until
                    # the monitor knows the old primary is gone (what target_session_attrs checks).
                    row = conn.execute("SHOW transaction_read_only").fetchone()
                    if row is not None and row[0] == "off":
                        return twin
            except psycopg.Error:
                continue
        return None

    def wait_healthy(self, *, timeout: float = 120.0) -> None:
        """Until there is one primary and every other node reports secondary."""

        def healthy() -> bool:
            try:
                states = {str(n.get("nodename")): str(n.get("current_group_state")) for n in self.state()}
            except (ClusterError, ValueError, subprocess.TimeoutExpired):
                return False
            wanted = {t.lower() for t in self.node_ports}
            states = {name: state for name, state in states.items() if name in wanted}  # a node left out
            if set(states) != wanted:
                return False
            values = sorted(states.values())
            if values.count("primary") != 1 or values.count("secondary") != len(wanted) - 1:
                return False
            # The monitor may still hold what it knew before a restart: ask the databases too.
            return all(self._accepts(port) for port in self.node_ports.values()) and self.primary() is not None

        self._wait(healthy, timeout, "a primary with its standbys")

    def _accepts(self, port: int, dbname: str = "postgres") -> bool:
        try:
            with psycopg.connect(f"postgresql://{POSTGRES_USER}@{self.host}:{port}/{dbname}", connect_timeout=1):
                return True
        except psycopg.Error:
            return False

    def _tune_monitor(self) -> None:
        with psycopg.connect(
            f"postgresql://{POSTGRES_USER}@{self.host}:{self.monitor_port}/pg_auto_failover", autocommit=True
        ) as conn:
            for name, value in FAST_MONITOR.items():
                conn.execute(f"ALTER SYSTEM SET {name} TO '{value}'")  # our own deploy file, not input
            conn.execute("SELECT pg_reload_conf()")

    def _wait(self, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(ready) and ready():
                return
            for proc in [self.monitor, *(n.process for n in self.nodes.values())]:
                if proc is not None and proc.popen is not None and not proc.alive():
                    raise ClusterError(f"{proc.name} exited while waiting for {what}:\n{proc.log_tail()}")
            time.sleep(0.3)
        # The keepers' own words are what explains a stuck node: keep them in the error (CI logs).
        tails = "".join(
            f"\n--- {n.name} keeper (last lines) ---\n{n.process.log_tail(2500)}"
            for n in self.nodes.values()
            if n.process is not None
        )
        raise ClusterError(
            f"timed out waiting for {what}; state: {self._describe_state()} "
            f"(a formation left in a bad state can be started afresh by deleting {self.data_root}){tails}"
        )

    def _describe_state(self) -> str:
        try:
            return "; ".join(f"{n.get('nodename')}={n.get('current_group_state')}" for n in self.state())
        except (ClusterError, ValueError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"

    @contextmanager
    def running(self) -> Iterator[Formation]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

"""Environment-backed settings (design.md "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path


def _secret(name: str) -> str | None:
    """``NAME`` or the contents of the file named by ``NAME_FILE`` (Docker/K8s secrets)."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _rate_limits(text: str, defaults: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """``EZLA_RATE_LIMITS="ocsp=3000,submission=0"`` changes some buckets and keeps the rest."""
    limits = dict(defaults)
    for item in _items(text):
        name, _, value = item.partition("=")
        if name.strip() not in limits or not value.strip().isdigit():
            raise ValueError(f"EZLA_RATE_LIMITS: unknown bucket or bad number in {item!r}")
        limits[name.strip()] = int(value)
    return tuple(limits.items())


@dataclass(frozen=True)
class Settings:
    var_dir: Path = Path("var")
    database_url: str = ""
    registry_database_url: str = ""
    registry_url: str = "http://127.0.0.1:8100"
    registry_token: str | None = field(default=None, repr=False)  # the nodes write with it
    registry_read_token: str | None = field(default=None, repr=False)  # ZUS staff and tests read with it
    node_id: str = "A"
    pki_dir: Path = Path("pki")
    ca_key_passphrase: str | None = field(default=None, repr=False)
    # Goes into AIA and CRL distribution points. The default host is a public-DNS name that resolves
    # to 127.0.0.1, so certificates made on a laptop still lint clean (pkilint refuses internal names).
    public_url: str = "http://ezla.127.0.0.1.nip.io:8000"
    log_level: str = "INFO"
    log_json: bool = True
    # Worker knobs; tests shorten them.
    worker_enabled: bool = True
    worker_poll_seconds: float = 0.2
    lease_seconds: float = 30.0
    dead_letter_after_seconds: float = 24 * 3600.0
    retry_cap_seconds: float = 300.0
    # One remote attempt (connect .. response headers) ends within this; leases outlast it.
    delivery_deadline_seconds: float = 10.0
    delivery_concurrency: int = 32
    delivery_per_destination: int = 4
    # http:// and loopback/private webhook targets: development and tests only.
    webhook_allow_insecure: bool = False
    webhook_ports: tuple[int, ...] = (443,)
    # Behind HAProxy the peer is the proxy: its X-Forwarded-For names the client (rate limits).
    trusted_proxies: tuple[str, ...] = ()
    # Requests per minute per client address, per node (0: no limit); see ezla/ratelimit.py.
    rate_limits: tuple[tuple[str, int], ...] = (
        ("challenge", 60),
        ("login", 60),
        ("enrollment", 20),
        ("lookup", 120),
        ("ocsp", 1200),
        ("tsa", 1200),
        ("submission", 6000),
    )
    crl_validity_hours: int = 24
    crl_refresh_hours: int = 1
    activation_code_ttl_hours: int = 72
    # Numbers reserved for offline work stay usable this long (ezla/issuance/reservations.py).
    reservation_ttl_days: int = 30

    @property
    def published_dir(self) -> Path:
        """The CA's public certificates and CRL (``<role>.pem``, ``root.crl``): what relying parties,
        the registry among them, read without touching the CA's keys or code."""
        return self.pki_dir / "issued"

    @property
    def passphrase_file(self) -> Path:
        """Where a development passphrase lives when none is configured (see pki/README.md)."""
        return self.var_dir / "ca-passphrase"

    @property
    def node_number(self) -> int:
        """Node id as a byte 0x01-0x7f: the first byte of every serial this node mints."""
        return (sum(self.node_id.encode()) % 0x7F) + 1

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(os.environ.get("EZLA_VAR_DIR", "var"))
        passphrase = _secret("EZLA_CA_KEY_PASSPHRASE")
        if passphrase is None and (var_dir / "ca-passphrase").exists():
            passphrase = (var_dir / "ca-passphrase").read_text(encoding="utf-8").strip()
        return cls(
            var_dir=var_dir,
            # URLs may carry a password, so they also come from secret files.
            database_url=_secret("EZLA_DATABASE_URL") or f"sqlite:///{var_dir}/ezla.sqlite3",
            registry_database_url=_secret("EZLA_REGISTRY_DATABASE_URL") or f"sqlite:///{var_dir}/registry.sqlite3",
            registry_url=os.environ.get("EZLA_REGISTRY_URL", "http://127.0.0.1:8100"),
            registry_token=_secret("EZLA_REGISTRY_TOKEN"),
            registry_read_token=_secret("EZLA_REGISTRY_READ_TOKEN"),
            node_id=os.environ.get("EZLA_NODE_ID", "A"),
            pki_dir=Path(os.environ.get("EZLA_PKI_DIR", "pki")),
            ca_key_passphrase=passphrase,
            public_url=os.environ.get("EZLA_PUBLIC_URL", cls.public_url).rstrip("/"),
            log_level=os.environ.get("EZLA_LOG_LEVEL", "INFO").upper(),
            log_json=os.environ.get("EZLA_LOG_FORMAT", "json") == "json",
            worker_enabled=os.environ.get("EZLA_WORKER", "1") != "0",
            worker_poll_seconds=float(os.environ.get("EZLA_WORKER_POLL_SECONDS", cls.worker_poll_seconds)),
            lease_seconds=float(os.environ.get("EZLA_LEASE_SECONDS", cls.lease_seconds)),
            dead_letter_after_seconds=float(
                os.environ.get("EZLA_DEAD_LETTER_AFTER_SECONDS", cls.dead_letter_after_seconds)
            ),
            webhook_allow_insecure=os.environ.get("EZLA_WEBHOOK_ALLOW_INSECURE", "0") == "1",
            webhook_ports=tuple(int(p) for p in _items(os.environ.get("EZLA_WEBHOOK_PORTS", "443"))),
            trusted_proxies=tuple(_items(os.environ.get("EZLA_TRUSTED_PROXIES", ""))),
            rate_limits=_rate_limits(os.environ.get("EZLA_RATE_LIMITS", ""), cls.rate_limits),
            retry_cap_seconds=float(os.environ.get("EZLA_RETRY_CAP_SECONDS", cls.retry_cap_seconds)),
            delivery_deadline_seconds=float(
                os.environ.get("EZLA_DELIVERY_DEADLINE_SECONDS", cls.delivery_deadline_seconds)
            ),
            delivery_concurrency=int(os.environ.get("EZLA_DELIVERY_CONCURRENCY", cls.delivery_concurrency)),
            delivery_per_destination=int(os.environ.get("EZLA_DELIVERY_PER_DESTINATION", cls.delivery_per_destination)),
            reservation_ttl_days=int(os.environ.get("EZLA_RESERVATION_TTL_DAYS", cls.reservation_ttl_days)),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()

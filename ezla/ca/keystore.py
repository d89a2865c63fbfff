"""The CA's home (``EZLA_PKI_DIR``): certificates in the clear, keys in one of two keystores.

Layout: ``issued/<role>.pem``, ``issued/root.crl``, and either ``keys/<role>.key.pem`` (PKCS#8,
encrypted with ``EZLA_CA_KEY_PASSPHRASE``: the embedded default, ``make run``) or
``keys/pkcs11.toml``, naming the PKCS#11 token that holds every key (``ezla pki init --pkcs11``;
the passphrase is then the token's user PIN; see ``token``). Roles: root, issuing, ocsp, service,
audit, tsa. The root key is only needed by ``ezla pki init`` (the key ceremony); nodes never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes

from ezla.ca.token import TokenConfig, open_token
from ezla.errors import PkiNotInitialised, PkiPassphraseWrong
from ezla.files import write_private

ROLES = ("root", "issuing", "ocsp", "service", "audit", "tsa")


CURRENT_FILE = "current-issuing"  # in issued/: the generation that issues new certificates


def generation_roles(n: int) -> tuple[str, str]:
    """(issuing role, OCSP role) of the n-th issuing CA: the first keeps the plain names."""
    return ("issuing", "ocsp") if n == 1 else (f"issuing-{n}", f"ocsp-{n}")


def generations(pki_dir: Path) -> list[int]:
    """Every issuing CA generation on disk, oldest first."""
    found = [1] if cert_path(pki_dir, "issuing").exists() else []
    for path in (pki_dir / "issued").glob("issuing-*.pem"):
        number = path.stem.removeprefix("issuing-")
        if number.isdigit():
            found.append(int(number))
    return sorted(found)


def current_generation(pki_dir: Path) -> int:
    path = pki_dir / "issued" / CURRENT_FILE
    return int(path.read_text(encoding="utf-8").strip()) if path.exists() else 1


def token_config(pki_dir: Path) -> TokenConfig | None:
    """The PKCS#11 token holding this PKI's keys, or None for the PEM keystore."""
    return TokenConfig.load(pki_dir / "keys")


def key_path(pki_dir: Path, role: str) -> Path:
    return pki_dir / "keys" / f"{role}.key.pem"


def cert_path(pki_dir: Path, role: str) -> Path:
    return pki_dir / "issued" / f"{role}.pem"  # Settings.published_dir


def save_key(pki_dir: Path, role: str, key: PrivateKeyTypes, passphrase: str) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    write_private(key_path(pki_dir, role), pem)


def save_cert(pki_dir: Path, role: str, cert: x509.Certificate) -> None:
    path = cert_path(pki_dir, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_cert(pki_dir: Path, role: str) -> x509.Certificate:
    path = cert_path(pki_dir, role)
    if not path.exists():
        raise PkiNotInitialised()
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(pki_dir: Path, role: str, passphrase: str | None) -> CertificateIssuerPrivateKeyTypes:
    token = token_config(pki_dir)
    if token is not None:
        if not passphrase:
            raise PkiNotInitialised("EZLA_CA_KEY_PASSPHRASE (or _FILE) must be the PKCS#11 token's user PIN")
        return open_token(token, passphrase).key(role)
    path = key_path(pki_dir, role)
    if not path.exists():
        raise PkiNotInitialised()
    if not passphrase:
        raise PkiNotInitialised("EZLA_CA_KEY_PASSPHRASE (or _FILE) is not set")
    try:
        return _decrypt(str(path), path.stat().st_mtime_ns, passphrase)
    except ValueError:
        # Typically var/ was deleted (with its generated ca-passphrase) and pki/ kept.
        raise PkiPassphraseWrong(
            f"{path} was encrypted with another passphrase: restore the one it was made with "
            "(EZLA_CA_KEY_PASSPHRASE, _FILE, or var/ca-passphrase), or move the PKI away to start a new CA"
        ) from None


@lru_cache(maxsize=64)
def _decrypt(path: str, _mtime_ns: int, passphrase: str) -> CertificateIssuerPrivateKeyTypes:
    """The key file's KDF costs about 70 ms a key: a process that loads the keys again (a CA
    reload after a rollover, every app the tests make) decrypts each file once."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), passphrase.encode())
    return key  # type: ignore[return-value]


def is_initialised(pki_dir: Path) -> bool:
    if not all(cert_path(pki_dir, r).exists() for r in ROLES):
        return False
    return token_config(pki_dir) is not None or all(key_path(pki_dir, r).exists() for r in ROLES if r != "root")


def _matching(
    cert: x509.Certificate, key: CertificateIssuerPrivateKeyTypes, role: str
) -> CertificateIssuerPrivateKeyTypes:
    # A token or key file from another ceremony would sign things no relying party can verify.
    if cert.public_key() != key.public_key():
        raise PkiNotInitialised(f"the {role} key does not belong to issued/{role}.pem: another ceremony's keys?")
    return key


@dataclass(frozen=True)
class Generation:
    """One issuing CA and its delegated OCSP responder."""

    number: int
    issuing: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    ocsp: x509.Certificate
    ocsp_key: CertificateIssuerPrivateKeyTypes

    def issued(self, cert: x509.Certificate) -> bool:
        """Did this CA issue ``cert``? (Names alone could repeat across a re-keyed CA.)"""
        if cert.issuer != self.issuing.subject:
            return False
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            ski = self.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return True
        return aki == ski


@dataclass(frozen=True)
class OnlineKeys:
    """What a running node holds: the issuing CA, the OCSP responder, the receipt seal and the
    audit log's checkpoint key."""

    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    ocsp: x509.Certificate
    ocsp_key: CertificateIssuerPrivateKeyTypes
    service: x509.Certificate
    service_key: CertificateIssuerPrivateKeyTypes
    audit: x509.Certificate
    audit_key: CertificateIssuerPrivateKeyTypes
    tsa: x509.Certificate
    tsa_key: CertificateIssuerPrivateKeyTypes
    # Roots of other TSAs whose time-stamps submitted documents may carry (pki/trust/tsa/*.pem).
    other_tsa_roots: tuple[x509.Certificate, ...] = ()
    # Every issuing CA, oldest first; ``issuing``/``ocsp`` above are the current one's, which issues
    # new certificates. Older ones keep answering OCSP and publishing CRLs for what they issued.
    generations: tuple[Generation, ...] = ()

    @property
    def all_generations(self) -> tuple[Generation, ...]:
        return self.generations or (self.current,)

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return tuple(g.issuing for g in self.all_generations)

    def generation_of(self, cert: x509.Certificate) -> Generation:
        """The issuing CA that issued ``cert`` (the current one when none did)."""
        return next((g for g in self.generations if g.issued(cert)), self.current)

    def generation(self, number: int) -> Generation | None:
        return next((g for g in self.generations if g.number == number), None)

    @property
    def current(self) -> Generation:
        for g in self.generations:
            if g.issuing == self.issuing:
                return g
        return Generation(1, self.issuing, self.issuing_key, self.ocsp, self.ocsp_key)

    @property
    def tsa_roots(self) -> tuple[x509.Certificate, ...]:
        return (self.root, *self.other_tsa_roots)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Every issuing CA (newest first), then the root: what relying parties need."""
        return (*reversed(self.intermediates), self.root)

    @property
    def in_token(self) -> bool:
        return type(self.issuing_key).__module__ == "ezla.ca.token"

    @classmethod
    def load(cls, pki_dir: Path, passphrase: str | None) -> OnlineKeys:
        found: dict[str, object] = {"root": load_cert(pki_dir, "root")}
        for role in ("service", "audit", "tsa"):
            cert = found[role] = load_cert(pki_dir, role)
            found[f"{role}_key"] = _matching(cert, load_key(pki_dir, role, passphrase), role)
        gens = []
        for n in generations(pki_dir):
            issuing_role, ocsp_role = generation_roles(n)
            issuing, ocsp = load_cert(pki_dir, issuing_role), load_cert(pki_dir, ocsp_role)
            gens.append(
                Generation(
                    n,
                    issuing,
                    _matching(issuing, load_key(pki_dir, issuing_role, passphrase), issuing_role),
                    ocsp,
                    _matching(ocsp, load_key(pki_dir, ocsp_role, passphrase), ocsp_role),
                )
            )
        if not gens:
            raise PkiNotInitialised()
        wanted = current_generation(pki_dir)
        current = next((g for g in gens if g.number == wanted), None)
        if current is None:  # the marker came before the new CA's files (an rsync, say): not yet
            raise PkiNotInitialised(f"issued/{CURRENT_FILE} names issuing CA {wanted}, whose files are not here yet")
        found.update(
            issuing=current.issuing,
            issuing_key=current.issuing_key,
            ocsp=current.ocsp,
            ocsp_key=current.ocsp_key,
            generations=tuple(gens),
        )
        found["other_tsa_roots"] = tuple(
            x509.load_pem_x509_certificate(path.read_bytes())
            for path in sorted((pki_dir / "trust" / "tsa").glob("*.pem"))
        )
        return cls(**found)  # type: ignore[arg-type]

"""File helpers shared by the server and the SDK (which must not import server code)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a private key, a PKCS#12): owner-only from the moment the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_certificate(path: Path) -> x509.Certificate:
    """A published PEM certificate; FileNotFoundError when it is not there."""
    return x509.load_pem_x509_certificate(path.read_bytes())

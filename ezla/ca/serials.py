"""Serial numbers: RFC 5280 4.1.2.2 (positive, <= 20 octets), CA/B-style >= 64 random bits.

Layout (Boulder's): one prefix byte = the node number (0x01-0x7f, so the integer stays positive
and two nodes can never mint the same serial), then 16 random bytes (128 bits).
"""

from __future__ import annotations

import secrets
from typing import NewType

Serial = NewType("Serial", str)  # lower-case hex, no separators


def new_serial(node_number: int) -> int:
    if not 0x01 <= node_number <= 0x7F:
        raise ValueError("node number must be 0x01..0x7f")
    return int.from_bytes(bytes([node_number]) + secrets.token_bytes(16), "big")


def to_hex(serial: int) -> Serial:
    return Serial(format(serial, "x"))


def parse_hex(value: str) -> int | None:
    """The serial from its hex spelling (case-insensitive, optional ':' separators), or None."""
    cleaned = value.replace(":", "").strip().lower()
    if not cleaned or len(cleaned) > 40 or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    return int(cleaned, 16)

"""Polish identifiers and their check digits (domain.md "Rules ezla enforces"): PESEL, NIP,
REGON and NPWZ. The bottom layer: the CA, issuance, the CLI and the web use it; it imports nothing
of ours. Generators for tests live in ``tests/identifiers.py``; ``make_npwz`` stays here because
``ezla demo`` registers a fresh doctor with it."""

from __future__ import annotations

import re
from datetime import date
from typing import Final, NewType

# Kinds of identifier, so that a PESEL cannot be passed where an NPWZ is meant (mypy checks it).
Pesel = NewType("Pesel", str)
Nip = NewType("Nip", str)
Regon = NewType("Regon", str)
Npwz = NewType("Npwz", str)

# [0-9], not \d: \d also matches non-ASCII digits, which int() would happily read.
_DIGITS = {n: re.compile(f"[0-9]{{{n}}}") for n in (7, 9, 10, 11, 14)}

_PESEL_W: Final = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_NIP_W: Final = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_REGON9_W: Final = (8, 9, 2, 3, 4, 5, 6, 7)
_REGON14_W: Final = (2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8)
# PESEL month offset -> century
_CENTURY: Final = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}


def _digits(s: object, n: int) -> list[int] | None:
    if not isinstance(s, str) or not _DIGITS[n].fullmatch(s):
        return None
    return [int(c) for c in s]


def _weighted(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights, strict=False))


def _pesel_check(d: list[int]) -> int:
    return (10 - _weighted(d, _PESEL_W) % 10) % 10


def check_digit(kind: str, body: str) -> int | None:
    """The check digit that completes ``body`` (PESEL: first 10 digits; NIP: 9; REGON: 8 or 13;
    NPWZ: the last 6, its check coming first), or None where no digit fits (NIP: 10; NPWZ: 0 or 10)."""
    digits = [int(c) for c in body]
    if kind == "pesel":
        return _pesel_check(digits)
    if kind == "nip":
        check = _weighted(digits, _NIP_W) % 11
        return None if check == 10 else check
    if kind == "regon":
        return _regon_check(digits, _REGON9_W if len(digits) == 8 else _REGON14_W)
    if kind == "npwz":
        check = _npwz_check(digits)
        return None if check in (0, 10) else check
    raise ValueError(f"unknown identifier kind {kind!r}")


def pesel_birth_date(s: str) -> date:
    """The date of birth a PESEL encodes (the month carries the century).

    Raises ValueError if ``s`` is not 11 digits or the date does not exist; does not look at the
    check digit (``pesel_valid`` does both).
    """
    d = _digits(s, 11)
    if d is None:
        raise ValueError("not a PESEL")
    yy, mm, dd = d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5]
    offset = (mm // 20) * 20
    century = _CENTURY.get(offset)
    if century is None:  # unreachable with two digits, kept for clarity
        raise ValueError("not a PESEL")
    return date(century + yy, mm - offset, dd)  # ValueError for a month 13 or a 30th February


def pesel_valid(s: str) -> bool:
    """11 ASCII digits, a correct check digit and an existing date of birth."""
    d = _digits(s, 11)
    if d is None or _pesel_check(d) != d[10]:
        return False
    try:
        pesel_birth_date(s)
    except ValueError:
        return False
    return True


def pesel_is_female(s: str) -> bool:
    """The sex digit (10th) is even for women."""
    return int(s[9]) % 2 == 0


def nip_valid(s: str) -> bool:
    """10 digits; weights 6,5,7,2,3,4,5,6,7, sum mod 11 is the check; 10 means no valid NIP."""
    d = _digits(s, 10)
    if d is None:
        return False
    check = _weighted(d, _NIP_W) % 11
    return check != 10 and check == d[9]


def _regon_check(d: list[int], weights: tuple[int, ...]) -> int:
    return _weighted(d, weights) % 11 % 10  # 10 -> 0


def regon_valid(s: str) -> bool:
    """REGON of 9 or 14 digits with a correct check digit.

    As domain.md says, a 14-digit REGON is checked on its own; its first 9 digits (the parent
    unit's REGON) are not checked separately.
    """
    if (d := _digits(s, 9)) is not None:
        return _regon_check(d, _REGON9_W) == d[8]
    if (d := _digits(s, 14)) is not None:
        return _regon_check(d, _REGON14_W) == d[13]
    return False


def _npwz_check(tail: list[int]) -> int:
    return sum(d * w for d, w in zip(tail, range(1, 7), strict=True)) % 11


def npwz_valid(s: str) -> bool:
    """7 digits; the first is the check = (digits 2-7 weighted 1..6) mod 11 and is never 0."""
    d = _digits(s, 7)
    if d is None or d[0] == 0:
        return False
    return _npwz_check(d[1:]) == d[0]


def make_npwz(tail6: str) -> str | None:
    """The valid NPWZ ending with these 6 digits, or None when the check would be 0 or 10."""
    if not isinstance(tail6, str) or not re.fullmatch(r"[0-9]{6}", tail6):
        raise ValueError("tail6 must be 6 digits")
    check = check_digit("npwz", tail6)
    return None if check is None else str(check) + tail6

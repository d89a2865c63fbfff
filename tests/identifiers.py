"""Generators of valid Polish identifiers for tests (``ezla.identifiers`` checks them)."""

from __future__ import annotations

import re
from datetime import date

from ezla.identifiers import check_digit, make_npwz

__all__ = ["make_nip", "make_npwz", "make_pesel", "make_regon9", "make_regon14"]

# PESEL month offset per century (domain.md)
_OFFSETS = {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}


def make_pesel(birth: date, serial: int, female: bool) -> str:
    """A valid PESEL for ``birth`` (years 1800-2299); ``serial`` 0..4999 picks one of the 5000
    numbers available per date and sex."""
    if not 0 <= serial < 5000:
        raise ValueError("serial must be in 0..4999")
    offset = _OFFSETS.get(birth.year // 100 * 100)
    if offset is None:
        raise ValueError("PESEL covers the years 1800-2299")
    ordinal = serial * 2 + (0 if female else 1)  # 4 digits, the last one the sex
    body = f"{birth.year % 100:02d}{birth.month + offset:02d}{birth.day:02d}{ordinal:04d}"
    return body + str(check_digit("pesel", body))


def make_nip(prefix9: str) -> str | None:
    """The valid NIP starting with these 9 digits, or None if no check digit fits (sum mod 11 = 10)."""
    if not isinstance(prefix9, str) or not re.fullmatch(r"[0-9]{9}", prefix9):
        raise ValueError("prefix9 must be 9 digits")
    check = check_digit("nip", prefix9)
    return None if check is None else prefix9 + str(check)


def make_regon9(prefix8: str) -> str:
    """The valid 9-digit REGON starting with these 8 digits."""
    if not isinstance(prefix8, str) or not re.fullmatch(r"[0-9]{8}", prefix8):
        raise ValueError("prefix8 must be 8 digits")
    return prefix8 + str(check_digit("regon", prefix8))


def make_regon14(prefix13: str) -> str:
    """The valid 14-digit REGON starting with these 13 digits."""
    if not isinstance(prefix13, str) or not re.fullmatch(r"[0-9]{13}", prefix13):
        raise ValueError("prefix13 must be 13 digits")
    return prefix13 + str(check_digit("regon", prefix13))

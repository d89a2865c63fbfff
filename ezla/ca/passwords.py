"""The PKCS#12 password rule, small and documented (design.md "Enrollment"):

at least 12 characters; at least 6 different characters; not a run of the keyboard, the alphabet
or the digits (``123456789012``, ``qwertyuiopasdf``), in either direction; and the words
"password", "hasło"/"haslo", "ezla" count for nothing (``Password1234`` has four characters left). The KDF (PBES2, 200,000 rounds) makes each guess slow; this rule
keeps the first guesses from being right.
"""

from __future__ import annotations

from ezla.errors import Pkcs12PasswordWeak

MIN_LENGTH = 12
MIN_DISTINCT = 6
_RUNS = ("1234567890" * 3, "abcdefghijklmnopqrstuvwxyz" * 2, "qwertyuiopasdfghjklzxcvbnm" * 2)
_WORDS = ("password", "haslo", "hasło", "ezla")


def check_pkcs12_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Pkcs12PasswordWeak(f"use at least {MIN_LENGTH} characters", field="pkcs12_password")
    if len(password) > 1024:
        raise Pkcs12PasswordWeak("use at most 1024 characters", field="pkcs12_password")
    folded = password.casefold()
    if len(set(folded.strip())) < MIN_DISTINCT:
        raise Pkcs12PasswordWeak(f"use at least {MIN_DISTINCT} different characters", field="pkcs12_password")
    if any(folded in run or folded[::-1] in run for run in _RUNS):
        raise Pkcs12PasswordWeak("a run of the keyboard, alphabet or digits is guessed first", field="pkcs12_password")
    rest = folded
    for word in _WORDS:
        rest = rest.replace(word, "")
    if len(rest) < MIN_LENGTH - 4:
        raise Pkcs12PasswordWeak("built around a common word", field="pkcs12_password")

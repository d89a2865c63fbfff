"""e-ZLA numbers: two letters + seven digits, unique across nodes, never reused (domain.md).

One global counter ``n`` (a PostgreSQL sequence, or a counter row under SQLite's write lock) maps to
series ``ZA``, ``ZB``, ... each holding numbers 1..9 999 999. A sequence value lost to a rollback is a
gap, never a reuse, which is what a numbering authority wants.
"""

from __future__ import annotations

import string

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from ezla.issuance.models import NumberCounter

PER_SERIES = 9_999_999
SEQUENCE = "ezla_number_seq"
_LETTERS = string.ascii_uppercase


def format_number(n: int) -> tuple[str, int]:
    """Counter value (1-based) -> (series, number). Series start at ZA and wrap to AA after ZZ."""
    if n < 1:
        raise ValueError("counter starts at 1")
    index, offset = divmod(n - 1, PER_SERIES)
    first = (25 + index // 26) % 26
    return _LETTERS[first] + _LETTERS[index % 26], offset + 1


def next_counter(session: Session) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text(f"SELECT nextval('{SEQUENCE}')")).scalar_one())
    row = session.execute(
        update(NumberCounter)
        .where(NumberCounter.id == 1)
        .values(value=NumberCounter.value + 1)
        .returning(NumberCounter.value)
    ).first()
    if row is None:
        session.add(NumberCounter(id=1, value=1))
        session.flush()
        return 1
    return int(row[0])


def next_number(session: Session) -> tuple[str, int]:
    return format_number(next_counter(session))

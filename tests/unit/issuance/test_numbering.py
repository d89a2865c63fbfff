"""Series and numbers (domain.md): ZA0000001 first, a new series after 9,999,999, AA after ZZ."""

from __future__ import annotations

import pytest

from ezla.issuance.numbering import PER_SERIES, format_number


@pytest.mark.parametrize(
    ("counter", "expected"),
    [
        (1, ("ZA", 1)),
        (PER_SERIES, ("ZA", PER_SERIES)),
        (PER_SERIES + 1, ("ZB", 1)),
        (25 * PER_SERIES + 1, ("ZZ", 1)),
        (26 * PER_SERIES + 1, ("AA", 1)),  # the series wrap after ZZ
        (27 * PER_SERIES + 1, ("AB", 1)),
    ],
)
def test_format_number(counter: int, expected: tuple[str, int]) -> None:
    assert format_number(counter) == expected


def test_counter_starts_at_one() -> None:
    with pytest.raises(ValueError):
        format_number(0)


def test_numbers_are_unique_across_a_series_boundary() -> None:
    seen = {format_number(n) for n in range(PER_SERIES - 500, PER_SERIES + 500)}
    assert len(seen) == 1000

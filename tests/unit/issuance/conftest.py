"""Shared test data for the issuance package.

``valid_sick_leave`` is a factory in the style of ``tests/factories.py`` (where it will move):
a complete e-ZLA that passes the schema and every rule for ``TODAY``; tests override only what
they are about. Test modules reach it through the ``make_sick_leave`` fixture (session-scoped,
so hypothesis tests may use it too).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from ezla.document.model import SickLeave
from ezla.issuance.samples import sample_sick_leave

TODAY = date(2025, 3, 10)


def valid_sick_leave(**overrides: Any) -> SickLeave:
    """A rule-abiding e-ZLA issued on TODAY; keyword arguments replace top-level fields."""
    overrides.setdefault("document_id", "6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f")
    return sample_sick_leave(today=TODAY, **overrides)


@pytest.fixture(scope="session")
def make_sick_leave() -> Callable[..., SickLeave]:
    return valid_sick_leave


@pytest.fixture(scope="session")
def today() -> date:
    return TODAY

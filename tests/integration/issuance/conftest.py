"""Fixtures of the issuance integration tests: an enrolled doctor and a genuine e-ZLA it signed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import EnrolledDoctor, enroll, signed_sick_leave


@pytest.fixture
def doctor(client: Any, operator_token: str) -> EnrolledDoctor:
    return enroll(client, operator_token)


@pytest.fixture
def signed(doctor: EnrolledDoctor) -> bytes:
    """A genuine, rule-abiding e-ZLA signed by ``doctor``: the raw material of most attacks."""
    return signed_sick_leave(doctor)

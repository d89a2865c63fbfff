from __future__ import annotations

from typing import Any

import pytest

from tests.factories import EnrolledDoctor, enroll


@pytest.fixture
def doctor(client: Any, operator_token: str) -> EnrolledDoctor:
    return enroll(client, operator_token)

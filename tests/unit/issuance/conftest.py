"""Shared test data for the issuance package.

``valid_sick_leave`` is a factory in the style of ``tests/factories.py`` (where it will move):
a complete e-ZLA that passes the schema and every rule for ``TODAY``; tests override only what
they are about. Test modules reach it through the ``make_sick_leave`` fixture (session-scoped,
so hypothesis tests may use it too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from ezla.issuance.document import (
    Address,
    Clinic,
    Doctor,
    Incapacity,
    Patient,
    Payer,
    SickLeave,
)

TODAY = date(2025, 3, 10)

CLINIC_ADDRESS = Address(street="ul. Długa", building="5", postal_code="00-238", city="Warszawa")
PATIENT_ADDRESS = Address(
    street="ul. Źródlana", building="12A", flat="3", postal_code="30-001", city="Kraków"
)


def valid_sick_leave(**overrides: Any) -> SickLeave:
    """A rule-abiding e-ZLA issued on TODAY; keyword arguments replace top-level fields."""
    base = SickLeave(
        document_id="6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
        issue_date=TODAY,
        doctor=Doctor(npwz="5425740", given_name="Anna", family_name="Nowak"),
        clinic=Clinic(regon="123456785", name="Przychodnia Zdrowie sp. z o.o.", address=CLINIC_ADDRESS),
        patient=Patient(
            pesel="44051401359", given_name="Jan", family_name="Kowalski-Łęcki", address=PATIENT_ADDRESS
        ),
        payer=Payer(nip="5260250274", name="Zakład Przykładowy S.A."),
        incapacity=Incapacity(start=TODAY, end=date(2025, 3, 16)),
        indication=2,
        codes=(),
        icd10="J06.9",
        family_member_care=None,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="session")
def make_sick_leave() -> Callable[..., SickLeave]:
    return valid_sick_leave


@pytest.fixture(scope="session")
def today() -> date:
    return TODAY

"""Sample e-ZLA for ``ezla demo``, the SDK's examples and the tests' factories."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import msgspec

from ezla.document.model import Address, Clinic, Doctor, Incapacity, Patient, Payer, SickLeave
from ezla.events import DocumentId
from ezla.identifiers import Nip, Npwz, Pesel, Regon

CLINIC_ADDRESS = Address(street="ul. Długa", building="5", postal_code="00-238", city="Warszawa")
PATIENT_ADDRESS = Address(street="ul. Źródlana", building="12A", flat="3", postal_code="30-001", city="Kraków")


# Code B (pregnancy) needs a woman: the PESEL's tenth digit is even.
FEMALE_PATIENT = Patient(
    pesel=Pesel("90051402463"), given_name="Maria", family_name="Kowalska", address=PATIENT_ADDRESS
)


def sample_sick_leave(
    *, today: date, npwz: str = "5425740", given_name: str = "Anna", family_name: str = "Nowak", **overrides: Any
) -> SickLeave:
    """A rule-abiding e-ZLA issued ``today`` with a fresh DocumentId; overrides replace fields."""
    base = SickLeave(
        document_id=DocumentId(str(uuid.uuid4())),
        issue_date=today,
        doctor=Doctor(npwz=Npwz(npwz), given_name=given_name, family_name=family_name),
        clinic=Clinic(regon=Regon("123456785"), name="Przychodnia Zdrowie sp. z o.o.", address=CLINIC_ADDRESS),
        patient=Patient(
            pesel=Pesel("44051401359"), given_name="Jan", family_name="Kowalski-Łęcki", address=PATIENT_ADDRESS
        ),
        payer=Payer(nip=Nip("5260250274"), name="Zakład Przykładowy S.A."),
        incapacity=Incapacity(start=today, end=today + timedelta(days=6)),
        indication=2,
        codes=(),
        icd10="J06.9",
        family_member_care=None,
    )
    return msgspec.structs.replace(base, **overrides)

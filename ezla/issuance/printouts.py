"""Checking a printed e-ZLA: its number and a short verification code, printed together (and in
the QR code), let anyone holding the paper ask whether it is genuine and still valid.

The code is an HMAC of the e-ZLA's identity under a key the nodes share through the database, so
it cannot be guessed from the number alone (numbers are sequential), and nothing but the number
and the code is needed to ask. The answer names the patient and doctor by initials only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezla.auth.service import shared_secret
from ezla.errors import BadRequest
from ezla.issuance.models import SickLeaveRecord

KEY_NAME = "printout-code"  # the row in auth_secrets, not a secret
NUMBER = re.compile(r"([A-Z]{2})\s*-?\s*([0-9]{1,7})")
CODE = re.compile(r"[A-Z2-7]{5}-?[A-Z2-7]{5}")


def printout_key(session: Session, *, create: bool = False) -> bytes | None:
    return shared_secret(session, KEY_NAME, create=create)


def printout_code(key: bytes, *, series: str, number: int, ezla_id: str) -> str:
    """Ten base32 characters (50 bits) as ``XXXXX-XXXXX``: short enough to type from paper."""
    mac = hmac.new(key, f"ezla-printout/1|{series}|{number:07d}|{ezla_id}".encode(), hashlib.sha256).digest()
    text = base64.b32encode(mac[:10]).decode()[:10]
    return f"{text[:5]}-{text[5:]}"


def parse_number(value: str) -> tuple[str, int]:
    found = NUMBER.fullmatch(value.strip().upper())
    if not found:
        raise BadRequest("the number is two letters and seven digits, as printed (ZA 0000123)", field="number")
    return found.group(1), int(found.group(2))


def normalise_code(value: str) -> str:
    code = value.strip().upper().replace(" ", "")
    if not CODE.fullmatch(code):
        raise BadRequest("the code is ten letters and digits, as printed (ABCDE-23456)", field="code")
    code = code.replace("-", "")
    return f"{code[:5]}-{code[5:]}"


@dataclass(frozen=True)
class PrintoutStatus:
    """What the holder of a printout learns: nothing they could not read off the paper, plus
    whether the e-ZLA is genuine and its status now."""

    series: str
    number: int
    status: str  # issued | cancelled
    issue_date: date
    incapacity_from: date
    incapacity_to: date
    patient_initials: str
    doctor_initials: str
    cancelled_at: datetime | None


def _initials(given: str, family: str) -> str:
    return "".join(part[:1].upper() + "." for part in (given, family) if part)


def check_printout(session: Session, key: bytes, number: str, code: str) -> PrintoutStatus | None:
    """None for an unknown number or a wrong code, alike (no oracle for which numbers exist)."""
    series, n = parse_number(number)
    wanted = normalise_code(code)
    record = session.scalars(
        select(SickLeaveRecord).where(SickLeaveRecord.series == series, SickLeaveRecord.number == n)
    ).first()
    if record is None:
        hmac.compare_digest(wanted, printout_code(key, series=series, number=n, ezla_id="-"))  # same work
        return None
    if not hmac.compare_digest(wanted, printout_code(key, series=series, number=n, ezla_id=record.id)):
        return None
    data = json.loads(record.data_json)
    return PrintoutStatus(
        series=record.series,
        number=record.number,
        status=record.status,
        issue_date=record.issue_date,
        incapacity_from=record.incapacity_from,
        incapacity_to=record.incapacity_to,
        patient_initials=_initials(data["patient"]["given_name"], data["patient"]["family_name"]),
        doctor_initials=_initials(data["doctor"]["given_name"], data["doctor"]["family_name"]),
        cancelled_at=record.cancelled_at,
    )

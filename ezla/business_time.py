"""Business dates are Polish calendar dates (Europe/Warsaw), whatever the server's zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

WARSAW: Final = ZoneInfo("Europe/Warsaw")


def local_date(now: datetime) -> date:
    return now.astimezone(WARSAW).date()

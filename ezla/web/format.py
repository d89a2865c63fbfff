"""Jinja filters: Polish dates (27.11.2026), times in Europe/Warsaw, day counts, dictionary names."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ezla.business_time import WARSAW
from ezla.document import dictionaries


def as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(WARSAW).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10]) if len(value) <= 10 else as_date(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def pl_date(value: Any) -> str:
    d = as_date(value)
    return d.strftime("%d.%m.%Y") if d else ""


def pl_time(value: Any) -> str:
    """A moment as Warsaw wall-clock time: 27.11.2026 17:25."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return ""
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(WARSAW).strftime("%d.%m.%Y %H:%M"))


def day_count(start: Any, end: Any) -> int:
    a, b = as_date(start), as_date(end)
    return (b - a).days + 1 if a and b else 0


def dictionary_name(code: Any, name: str, lang: str) -> str:
    entry = next((e for e in dictionaries.dictionaries()[name].entries if e.code == str(code)), None)
    if entry is None:
        return str(code)
    return (entry.name_pl if lang == "pl" else None) or entry.name_en


FILTERS = {"pl_date": pl_date, "pl_time": pl_time}

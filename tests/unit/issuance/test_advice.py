"""Warnings, at their boundaries: code A's 60-day break, overlaps, usual length, child care age."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from ezla.document.model import FamilyMemberCare, Incapacity, SickLeave
from ezla.issuance import advice
from ezla.issuance.advice import EarlierLeave


def _earlier(end: date, icd10: str = "J06.9") -> EarlierLeave:
    return EarlierLeave("ZA", 1, end - timedelta(days=4), end, icd10, ())


def _codes(found: object) -> list[str]:
    return [f.code for f in found]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("gap_days", "expected"),
    [
        (0, []),  # continuous: a continuation, not code A
        (1, ["code-a-missing"]),
        (60, ["code-a-missing"]),
        (61, []),
    ],
)
def test_code_a_break_boundaries(
    make_sick_leave: Callable[..., SickLeave], today: date, gap_days: int, expected: list[str]
) -> None:
    s = make_sick_leave(incapacity=Incapacity(start=today, end=today + timedelta(days=3)))
    before = _earlier(today - timedelta(days=gap_days + 1))
    assert _codes(advice.history_warnings(s, [before])) == expected
    claimed = make_sick_leave(incapacity=s.incapacity, codes=("A",))
    assert _codes(advice.history_warnings(claimed, [before])) == ([] if expected else ["code-a-without-earlier-leave"])


def test_same_illness_is_the_same_icd10_category(make_sick_leave: Callable[..., SickLeave], today: date) -> None:
    s = make_sick_leave(icd10="J06.9", incapacity=Incapacity(start=today, end=today + timedelta(days=3)))
    assert _codes(advice.history_warnings(s, [_earlier(today - timedelta(days=10), "J06.0")])) == ["code-a-missing"]
    assert _codes(advice.history_warnings(s, [_earlier(today - timedelta(days=10), "J10")])) == []


def test_overlap_boundary(make_sick_leave: Callable[..., SickLeave], today: date) -> None:
    s = make_sick_leave(incapacity=Incapacity(start=today, end=today + timedelta(days=3)))
    touching = EarlierLeave("ZA", 2, today - timedelta(days=5), today, "M54.5", ())
    apart = EarlierLeave("ZA", 3, today - timedelta(days=5), today - timedelta(days=1), "M54.5", ())
    assert _codes(advice.history_warnings(s, [touching])) == ["overlaps-active-leave"]
    assert _codes(advice.history_warnings(s, [apart])) == []


def test_usual_length_boundary(make_sick_leave: Callable[..., SickLeave], today: date) -> None:
    def days(n: int) -> list[str]:
        s = make_sick_leave(icd10="J06.9", incapacity=Incapacity(start=today, end=today + timedelta(days=n - 1)))
        return _codes(advice.document_warnings(s, today=today))

    assert days(10) == [] and days(11) == ["period-longer-than-usual"]
    back = make_sick_leave(icd10="M54.5", incapacity=Incapacity(start=today, end=today + timedelta(days=30)))
    assert _codes(advice.document_warnings(back, today=today)) == ["period-longer-than-usual"]  # M40-M54: 30 days


def test_child_care_age_boundary(make_sick_leave: Callable[..., SickLeave], today: date) -> None:
    def care(birth: date, shares: bool) -> list[str]:
        f = FamilyMemberCare(relationship=1, shares_household=shares, birth_date=birth)
        return _codes(advice.document_warnings(make_sick_leave(family_member_care=f), today=today))

    fourteenth = today.replace(year=today.year - 14)
    assert care(fourteenth + timedelta(days=1), shares=False) == []
    assert care(fourteenth, shares=False) == ["family-care-child-over-14"]
    assert care(fourteenth, shares=True) == []


def test_the_last_day_to_send(make_sick_leave: Callable[..., SickLeave], today: date) -> None:
    s = make_sick_leave()
    assert _codes(advice.document_warnings(s, today=today + timedelta(days=3))) == ["submission-last-day"]
    assert _codes(advice.document_warnings(s, today=today + timedelta(days=2))) == []

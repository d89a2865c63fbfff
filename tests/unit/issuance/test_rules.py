"""Check digits (properties and known numbers) and the e-ZLA business rules with their codes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ezla import errors
from ezla.document.model import (
    Cancellation,
    Clinic,
    Doctor,
    FamilyMemberCare,
    Hospital,
    Incapacity,
    Payer,
    SickLeave,
)
from ezla.errors import Unprocessable
from ezla.identifiers import nip_valid, npwz_valid, pesel_birth_date, pesel_is_female, pesel_valid, regon_valid
from ezla.issuance import rules
from ezla.issuance.samples import FEMALE_PATIENT
from tests.identifiers import make_nip, make_npwz, make_pesel, make_regon9, make_regon14

Make = Callable[..., SickLeave]


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


births = st.dates(min_value=date(1800, 1, 1), max_value=date(2299, 12, 31))


def change_digit(s: str, pos: int, delta: int) -> str:
    return s[:pos] + str((int(s[pos]) + delta) % 10) + s[pos + 1 :]


# --------------------------------------------------------------------------------------------
# PESEL
# --------------------------------------------------------------------------------------------


@given(birth=births, serial=st.integers(0, 4999), female=st.booleans())
def test_generated_pesel_is_valid_and_encodes_birth_and_sex(birth: date, serial: int, female: bool) -> None:
    p = make_pesel(birth, serial, female)
    assert len(p) == 11
    assert pesel_valid(p)
    assert pesel_birth_date(p) == birth
    assert pesel_is_female(p) is female


@given(
    birth=births,
    serial=st.integers(0, 4999),
    female=st.booleans(),
    pos=st.integers(0, 10),
    delta=st.integers(1, 9),
)
def test_pesel_any_single_digit_change_is_caught(birth: date, serial: int, female: bool, pos: int, delta: int) -> None:
    # Weights 1,3,7,9 are all coprime to 10, so every single-digit change moves the check digit.
    assert not pesel_valid(change_digit(make_pesel(birth, serial, female), pos, delta))


@pytest.mark.parametrize(
    ("pesel", "ok"),
    [
        ("44051401359", True),  # 1944-05-14, male: the textbook example
        ("02270800003", True),  # 2002-07-08 (month + 20), female
        ("99923100038", True),  # 1899-12-31 (month + 80)
        ("99610199983", True),  # 2299-01-01 (month + 60)
        ("44051401358", False),  # wrong check digit
        ("90023000000", False),  # check digit right, 30 February does not exist
        ("90130100004", False),  # check digit right, month 13 does not exist
        ("4405140135", False),  # 10 digits
        ("440514013590", False),  # 12 digits
        ("4405140135X", False),
        ("٤٤٠٥١٤٠١٣٥٩", False),  # Arabic-Indic digits: int() reads them, we must not
        ("", False),
    ],
)
def test_pesel_known_numbers(pesel: str, ok: bool) -> None:
    assert pesel_valid(pesel) is ok


def test_pesel_birth_date_rejects_impossible_dates() -> None:
    assert pesel_birth_date("44051401359") == date(1944, 5, 14)
    with pytest.raises(ValueError):
        pesel_birth_date("90023000000")
    with pytest.raises(ValueError):
        pesel_birth_date("abc")


def test_make_pesel_refuses_out_of_range() -> None:
    with pytest.raises(ValueError):
        make_pesel(date(1799, 12, 31), 0, False)
    with pytest.raises(ValueError):
        make_pesel(date(2000, 1, 1), 5000, False)


# --------------------------------------------------------------------------------------------
# NIP
# --------------------------------------------------------------------------------------------


@given(prefix=digits(9))
def test_generated_nip_is_valid(prefix: str) -> None:
    nip = make_nip(prefix)
    if nip is None:  # sum mod 11 == 10: no NIP starts with these digits
        assert not any(nip_valid(prefix + str(c)) for c in range(10))
    else:
        assert nip_valid(nip)


@given(prefix=digits(9), pos=st.integers(0, 9), delta=st.integers(1, 9))
def test_nip_any_single_digit_change_is_caught(prefix: str, pos: int, delta: int) -> None:
    nip = make_nip(prefix)
    assume(nip is not None)
    assert nip is not None
    # 11 is prime and no weight is 0 mod 11, so the weighted sum always changes.
    assert not nip_valid(change_digit(nip, pos, delta))


@pytest.mark.parametrize(
    ("nip", "ok"),
    [
        ("5260250274", True),
        ("1234563218", True),
        ("5260250275", False),
        ("1234567890", False),  # sum mod 11 == 10: can never be valid
        ("526-025-02-74", False),  # the document carries digits only
        ("526025027", False),
    ],
)
def test_nip_known_numbers(nip: str, ok: bool) -> None:
    assert nip_valid(nip) is ok


# --------------------------------------------------------------------------------------------
# REGON
# --------------------------------------------------------------------------------------------


@given(prefix=digits(8))
def test_generated_regon9_is_valid(prefix: str) -> None:
    assert regon_valid(make_regon9(prefix))


@given(prefix=digits(13))
def test_generated_regon14_is_valid(prefix: str) -> None:
    assert regon_valid(make_regon14(prefix))


@given(prefix=digits(8), pos=st.integers(0, 8), delta=st.integers(1, 9))
def test_regon9_single_digit_change_is_caught_unless_check_is_zero(prefix: str, pos: int, delta: int) -> None:
    regon = make_regon9(prefix)
    # The 10 -> 0 fold makes sums 0 and 10 (mod 11) indistinguishable, so a change can slip
    # through only when the check digit is 0; changing the check digit itself always shows.
    if regon[-1] != "0" or pos == 8:
        assert not regon_valid(change_digit(regon, pos, delta))


@given(prefix=digits(13), pos=st.integers(0, 13), delta=st.integers(1, 9))
def test_regon14_single_digit_change(prefix: str, pos: int, delta: int) -> None:
    regon = make_regon14(prefix)
    changed = change_digit(regon, pos, delta)
    if pos == 4:
        # The 5th digit has weight 0: the official checksum cannot see it.
        assert regon_valid(changed)
    elif regon[-1] != "0" or pos == 13:
        assert not regon_valid(changed)


@pytest.mark.parametrize(
    ("regon", "ok"),
    [
        ("012345675", True),
        ("123456785", True),
        ("12345678512347", True),
        ("012345676", False),
        ("123456786", False),
        ("12345678512348", False),
        ("12345678", False),
        ("1234567851", False),  # 10 digits: neither form
    ],
)
def test_regon_known_numbers(regon: str, ok: bool) -> None:
    assert regon_valid(regon) is ok


def test_regon9_fold_weakness_is_what_the_rule_says() -> None:
    # 000000000 has sum 0; moving the sum to 10 (mod 11) needs weight*delta == 10 (mod 11):
    # weight 2 (3rd digit) * 5 = 10.
    assert regon_valid("000000000")
    assert regon_valid("005000000")


# --------------------------------------------------------------------------------------------
# NPWZ
# --------------------------------------------------------------------------------------------


@given(tail=digits(6))
def test_generated_npwz_is_valid(tail: str) -> None:
    npwz = make_npwz(tail)
    if npwz is None:  # check would be 0 or 10: no NPWZ ends with these digits
        assert not any(npwz_valid(str(c) + tail) for c in range(10))
    else:
        assert npwz_valid(npwz)
        assert npwz[0] != "0"


@given(tail=digits(6), pos=st.integers(0, 6), delta=st.integers(1, 9))
def test_npwz_any_single_digit_change_is_caught(tail: str, pos: int, delta: int) -> None:
    npwz = make_npwz(tail)
    assume(npwz is not None)
    assert npwz is not None
    assert not npwz_valid(change_digit(npwz, pos, delta))


@pytest.mark.parametrize(
    ("npwz", "ok"),
    [
        ("5425740", True),  # the example of the Naczelna Izba Lekarska
        ("5425741", False),
        ("0425740", False),
        ("542574", False),
        ("54257400", False),
    ],
)
def test_npwz_known_numbers(npwz: str, ok: bool) -> None:
    assert npwz_valid(npwz) is ok


def test_npwz_check_zero_is_never_valid() -> None:
    # tail 000000 sums to 0: the check would be 0, which NPWZ never starts with
    assert make_npwz("000000") is None
    assert not npwz_valid("0000000")


# --------------------------------------------------------------------------------------------
# Business rules
# --------------------------------------------------------------------------------------------


def code_of(make: Make, today: date, received_at: date | None = None, **overrides: object) -> str | None:
    try:
        rules.check_sick_leave(make(**overrides), today=today, received_at=received_at)
    except errors.RuleViolation as e:
        return e.code
    return None


def period(start: date, days: int, **kw: object) -> Incapacity:
    return Incapacity(start=start, end=start + timedelta(days=days - 1), **kw)  # type: ignore[arg-type]


def test_valid_factory_passes(make_sick_leave: Make, today: date) -> None:
    rules.check_sick_leave(make_sick_leave(), today=today)


def test_identifiers_checked(make_sick_leave: Make, today: date) -> None:
    s = make_sick_leave()
    cases: list[tuple[SickLeave, str]] = [
        (msgspec.structs.replace(s, doctor=msgspec.structs.replace(s.doctor, npwz="5425741")), "npwz-invalid"),
        (msgspec.structs.replace(s, clinic=msgspec.structs.replace(s.clinic, regon="123456786")), "regon-invalid"),
        (
            msgspec.structs.replace(s, patient=msgspec.structs.replace(s.patient, pesel="44051401358")),
            "pesel-invalid",
        ),
        (msgspec.structs.replace(s, payer=Payer(nip="5260250275", name="X")), "nip-invalid"),
        (msgspec.structs.replace(s, payer=Payer(pesel="44051401358", name="X")), "payer-pesel-invalid"),
        (
            msgspec.structs.replace(
                s,
                family_member_care=FamilyMemberCare(pesel="02270800004", relationship=1, shares_household=True),
            ),
            "family-member-pesel-invalid",
        ),
    ]
    for doc, code in cases:
        with pytest.raises(errors.RuleViolation) as e:
            rules.check_sick_leave(doc, today=today)
        assert e.value.code == code


def test_valid_alternatives_accepted(make_sick_leave: Make, today: date) -> None:
    s = make_sick_leave(
        payer=Payer(pesel=make_pesel(date(1970, 1, 2), 17, True), name="Maria Pracodawczyni"),
        clinic=Clinic(regon="12345678512347", name="Filia", address=make_sick_leave().clinic.address),
    )
    rules.check_sick_leave(s, today=today)


def test_first_broken_rule_wins(make_sick_leave: Make, today: date) -> None:
    s = make_sick_leave(
        doctor=Doctor(npwz="5425741", given_name="A", family_name="B"),
        incapacity=period(today - timedelta(days=10), 300),
    )
    with pytest.raises(errors.NpwzInvalid):
        rules.check_sick_leave(s, today=today)


@given(back=st.integers(0, 400))
def test_backdating(make_sick_leave: Make, today: date, back: int) -> None:
    start = today - timedelta(days=back)
    plain = code_of(make_sick_leave, today, incapacity=period(start, 7))
    assert plain == (None if back <= 3 else "incapacity-backdated")
    # A psychiatrist may certify any earlier start (still bounded by the length rule), saying why.
    psych = code_of(make_sick_leave, today, incapacity=period(start, 7, psychiatric=True))
    assert psych == (None if back <= 3 else "backdating-justification-missing")
    why = "Pacjent w ostrej fazie choroby nie zgłosił się wcześniej."
    justified = code_of(
        make_sick_leave, today, incapacity=period(start, 7, psychiatric=True, backdating_justification=why)
    )
    assert justified is None


def test_backdating_boundary(make_sick_leave: Make, today: date) -> None:
    assert code_of(make_sick_leave, today, incapacity=period(today - timedelta(days=3), 5)) is None
    assert code_of(make_sick_leave, today, incapacity=period(today - timedelta(days=4), 5)) == "incapacity-backdated"


def test_period_reversed(make_sick_leave: Make, today: date) -> None:
    assert code_of(make_sick_leave, today, incapacity=Incapacity(start=today, end=today)) is None
    bad = Incapacity(start=today, end=today - timedelta(days=1))
    assert code_of(make_sick_leave, today, incapacity=bad) == "incapacity-period-reversed"


@pytest.mark.parametrize(
    ("codes", "days", "code"),
    [
        ((), 182, None),
        ((), 183, "incapacity-too-long"),
        (("A",), 183, "incapacity-too-long"),
        (("C", "E"), 183, "incapacity-too-long"),
        (("B",), 183, None),
        (("B",), 270, None),
        (("B",), 271, "incapacity-too-long"),
        (("D",), 270, None),
        (("D",), 271, "incapacity-too-long"),
        (("A", "B", "D"), 270, None),
    ],
)
def test_length(make_sick_leave: Make, today: date, codes: tuple[str, ...], days: int, code: str | None) -> None:
    assert code_of(make_sick_leave, today, codes=codes, incapacity=period(today, days), patient=FEMALE_PATIENT) == code


def test_too_long_names_its_limit(make_sick_leave: Make, today: date) -> None:
    with pytest.raises(errors.IncapacityTooLong) as e:
        rules.check_sick_leave(
            make_sick_leave(codes=("B",), incapacity=period(today, 271), patient=FEMALE_PATIENT), today=today
        )
    assert e.value.extra["limit"] == 270


@pytest.mark.parametrize(
    ("h_start", "h_end", "code"),
    [
        (0, 6, None),  # the whole period
        (2, 3, None),
        (0, 0, None),
        (-1, 3, "hospital-outside-period"),
        (2, 7, "hospital-outside-period"),
        (3, 2, "hospital-period-reversed"),
    ],
)
def test_hospital_part(make_sick_leave: Make, today: date, h_start: int, h_end: int, code: str | None) -> None:
    hosp = Hospital(start=today + timedelta(days=h_start), end=today + timedelta(days=h_end))
    assert code_of(make_sick_leave, today, incapacity=period(today, 7, hospital=hosp)) == code


def test_issue_date_not_in_future(make_sick_leave: Make, today: date) -> None:
    tomorrow = today + timedelta(days=1)
    assert (
        code_of(make_sick_leave, today, issue_date=tomorrow, incapacity=period(tomorrow, 3)) == "issue-date-in-future"
    )
    # Measured against the receipt date when one is given.
    assert code_of(make_sick_leave, today + timedelta(days=5), received_at=today, issue_date=today) is None


def test_submission_delay(make_sick_leave: Make, today: date) -> None:
    assert code_of(make_sick_leave, today + timedelta(days=3)) is None
    assert code_of(make_sick_leave, today + timedelta(days=4)) == "submission-too-late"
    # Re-checking a stored e-ZLA long after: the date it was received counts, not today.
    assert code_of(make_sick_leave, today + timedelta(days=400), received_at=today + timedelta(days=3)) is None


@pytest.mark.parametrize(
    ("codes", "code"),
    [
        (("A", "B", "C", "D", "E"), None),
        (("E", "A"), None),
        (("A", "A"), "code-invalid"),
        (("F",), "code-invalid"),
        (("a",), "code-invalid"),
    ],
)
def test_codes(make_sick_leave: Make, today: date, codes: tuple[str, ...], code: str | None) -> None:
    assert code_of(make_sick_leave, today, codes=codes, patient=FEMALE_PATIENT) == code


def test_code_b_only_for_a_female_patient(make_sick_leave: Make, today: date) -> None:
    """The PESEL's tenth digit carries the sex: even for women (the factory's patient is a man)."""
    assert not pesel_is_female(make_sick_leave().patient.pesel)
    assert code_of(make_sick_leave, today, codes=("B",)) == "pregnancy-code-not-female"
    assert code_of(make_sick_leave, today, codes=("B",), patient=FEMALE_PATIENT) is None
    assert code_of(make_sick_leave, today, codes=("A", "C")) is None


@pytest.mark.parametrize(
    ("icd10", "code"),
    [
        ("J06.9", None),
        ("J06", None),  # a category is enough
        ("U07.1", None),
        ("Z99.ZZZZ", "diagnosis-unknown"),  # well-formed, not in ICD-10
        ("J06.99", "diagnosis-unknown"),
        ("F32.10", "diagnosis-unknown"),  # a national extension, not the WHO edition
    ],
)
def test_diagnosis_must_be_in_icd10(make_sick_leave: Make, today: date, icd10: str, code: str | None) -> None:
    assert code_of(make_sick_leave, today, icd10=icd10) == code


def test_every_broken_rule_is_a_finding_and_the_first_is_the_error(make_sick_leave: Make, today: date) -> None:
    s = make_sick_leave(
        codes=("B",),
        icd10="Z99.ZZZZ",
        incapacity=period(today - timedelta(days=10), 5),
        clinic=Clinic(regon="123456786", name="X", address=make_sick_leave().clinic.address),
    )
    with pytest.raises(errors.RegonInvalid) as e:
        rules.check_sick_leave(s, today=today)
    found = [(f["code"], f["path"], f["severity"]) for f in e.value.extra["findings"]]
    assert found == [
        ("regon-invalid", "/SickLeave/Clinic/Regon", "error"),
        ("pregnancy-code-not-female", "/SickLeave/Codes", "error"),
        ("diagnosis-unknown", "/SickLeave/Diagnosis/Icd10", "error"),
        ("incapacity-backdated", "/SickLeave/Incapacity/From", "error"),
    ]


@pytest.mark.parametrize(
    ("relationship", "shares", "code"),
    [
        (1, False, None),  # a child needs no household statement
        (1, True, None),
        (2, True, None),
        (2, False, "family-care-household-missing"),
        (3, False, "family-care-household-missing"),
        (4, False, "family-care-household-missing"),
        (4, True, None),
    ],
)
def test_family_care_household(
    make_sick_leave: Make, today: date, relationship: int, shares: bool, code: str | None
) -> None:
    care = FamilyMemberCare(
        pesel=make_pesel(date(2019, 6, 1), 5, False), relationship=relationship, shares_household=shares
    )
    assert code_of(make_sick_leave, today, family_member_care=care) == code


def test_family_member_birth_date(make_sick_leave: Make, today: date) -> None:
    def care(**kw: object) -> FamilyMemberCare:
        return FamilyMemberCare(relationship=1, shares_household=True, **kw)  # type: ignore[arg-type]

    assert code_of(make_sick_leave, today, family_member_care=care(birth_date=today)) is None
    assert (
        code_of(make_sick_leave, today, family_member_care=care(birth_date=today + timedelta(days=1)))
        == "family-member-birth-date-invalid"
    )
    # A PESEL whose date lies after the date of issue (check digit fine) is refused the same way.
    future = make_pesel(today + timedelta(days=1), 0, True)
    assert code_of(make_sick_leave, today, family_member_care=care(pesel=future)) == "family-member-birth-date-invalid"


def test_check_cancellation() -> None:
    ok = Cancellation(
        document_id="6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
        series="ZA",
        number="0000001",
        reason="Błąd",
        npwz="5425740",
    )
    rules.check_cancellation(ok)
    with pytest.raises(errors.NpwzInvalid):
        rules.check_cancellation(msgspec.structs.replace(ok, npwz="5425741"))
    with pytest.raises(errors.CancellationReasonMissing):
        rules.check_cancellation(msgspec.structs.replace(ok, reason="  "))


def test_error_classes_contract(make_sick_leave: Make, today: date) -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.RuleViolation)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) >= 17
    for c in classes:
        assert issubclass(c, Unprocessable) and c.status == 422
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", c.code)
        assert c.title
    # No personal data in what is shown to clients.
    s = make_sick_leave(patient=msgspec.structs.replace(make_sick_leave().patient, pesel="44051401358"))
    with pytest.raises(errors.PeselInvalid) as e:
        rules.check_sick_leave(s, today=today)
    assert "44051401358" not in str(e.value) + e.value.detail + repr(e.value.extra)
    assert e.value.extra["field"] == "Patient/Pesel"
    assert [f["path"] for f in e.value.extra["findings"]] == ["/SickLeave/Patient/Pesel"]


def test_a_passport_patient(make_sick_leave: Make, today: date) -> None:
    from ezla.document.model import Passport, Patient

    def patient(birth: date, sex: str) -> Patient:
        p = Passport(number="C01X00T47", country="DE", birth_date=birth, sex=sex)  # type: ignore[arg-type]
        return Patient(given_name="Greta", family_name="Müller", address=make_sick_leave().patient.address, passport=p)

    assert code_of(make_sick_leave, today, patient=patient(today, "F"), codes=("B",)) is None
    assert (
        code_of(make_sick_leave, today, patient=patient(today + timedelta(days=1), "F")) == "patient-birth-date-invalid"
    )
    assert (
        code_of(make_sick_leave, today, patient=patient(date(1990, 1, 1), "M"), codes=("B",))
        == "pregnancy-code-not-female"
    )

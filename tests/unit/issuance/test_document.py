"""The e-ZLA XML: schema, build -> parse round trip, JSON forms and who sees what."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ezla.document import codec, schema
from ezla.document import model as document
from ezla.document.model import Address, Cancellation, FamilyMemberCare, Hospital, Incapacity, Payer, SickLeave
from ezla.errors import SchemaInvalid
from ezla.issuance import views
from tests.identifiers import make_pesel

Make = Callable[..., SickLeave]
NS = "urn:ezla:sick-leave:1"
DS = "http://www.w3.org/2000/09/xmldsig#"


def xml_of(s: SickLeave) -> etree._Element:
    return etree.fromstring(codec.build_sick_leave_xml(s))


def roundtrip(s: SickLeave) -> SickLeave:
    return codec.parse_sick_leave(xml_of(s))


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def first(root: etree._Element, path: str) -> etree._Element:
    el = root.find(path, {"ez": NS})
    assert el is not None
    return el


def schema_error(root: etree._Element) -> str:
    with pytest.raises(SchemaInvalid) as e:
        codec.parse_sick_leave(root)
    return e.value.detail


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_minimal_roundtrip(make_sick_leave: Make) -> None:
    s = make_sick_leave()
    assert roundtrip(s) == s


def test_everything_optional_roundtrip(make_sick_leave: Make, today: date) -> None:
    base = make_sick_leave()
    s = make_sick_leave(
        patient=msgspec.structs.replace(
            base.patient,
            stay_address=Address(street="Kowalewo", building="7", postal_code="87-410", city="Kowalewo"),
        ),
        payer=Payer(pesel=make_pesel(date(1960, 2, 29), 3, True), name="Maria Nowak"),
        incapacity=Incapacity(
            start=today - timedelta(days=20),
            end=today + timedelta(days=10),
            hospital=Hospital(start=today - timedelta(days=20), end=today - timedelta(days=2)),
            psychiatric=True,
        ),
        indication=1,
        codes=("E", "A", "B"),
        icd10="F32.10",
        family_member_care=FamilyMemberCare(birth_date=date(2020, 1, 31), relationship=1, shares_household=False),
    )
    assert roundtrip(s) == s
    s2 = msgspec.structs.replace(
        s, family_member_care=FamilyMemberCare(pesel="44051401359", relationship=3, shares_household=True)
    )
    assert roundtrip(s2) == s2


names = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=100
).filter(lambda t: t[0] not in " \t" and t[-1] not in " \t")


@given(given_name=names, family_name=names, city=names)
def test_any_sensible_text_roundtrips(make_sick_leave: Make, given_name: str, family_name: str, city: str) -> None:
    s = make_sick_leave()
    s = msgspec.structs.replace(
        s,
        patient=msgspec.structs.replace(
            s.patient,
            given_name=given_name,
            family_name=family_name,
            address=msgspec.structs.replace(s.patient.address, city=city),
        ),
    )
    assert roundtrip(s) == s


def test_json_roundtrip(make_sick_leave: Make, today: date) -> None:
    s = make_sick_leave(
        codes=("B",),
        incapacity=Incapacity(start=today, end=today + timedelta(days=3), hospital=Hospital(start=today, end=today)),
        family_member_care=FamilyMemberCare(birth_date=date(2018, 5, 1), relationship=1, shares_household=True),
    )
    stored = json.loads(json.dumps(document.as_builtins(s)))
    assert document.sick_leave_from_builtins(stored) == s
    assert (
        document.sick_leave_from_builtins(json.loads(json.dumps(document.as_builtins(make_sick_leave()))))
        == make_sick_leave()
    )


def test_cancellation_roundtrip() -> None:
    c = Cancellation(
        document_id="6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
        series="ZA",
        number="0001234",
        reason="Pomyłka w dacie.\nWystawiono nowe.",
        npwz="5425740",
    )
    assert codec.parse_cancellation(etree.fromstring(codec.build_cancellation_xml(c))) == c
    assert document.cancellation_from_builtins(json.loads(json.dumps(document.as_builtins(c)))) == c


def test_reading_is_robust_to_legal_lexical_variants(make_sick_leave: Make) -> None:
    s = make_sick_leave()
    root = xml_of(s)
    root.set("DocumentId", s.document_id.upper())  # UUIDs are case-insensitive; we keep lower case
    first(root, "ez:IssueDate").text = f"  {s.issue_date.isoformat()}\n"  # xs:date collapses space
    pesel = first(root, "ez:Patient/ez:Pesel")
    pesel.text = s.patient.pesel[:5]
    comment = etree.Comment("x")
    comment.tail = s.patient.pesel[5:]
    pesel.append(comment)  # a comment cannot cut a value short
    assert codec.parse_sick_leave(root) == s


def test_signed_document_still_validates(make_sick_leave: Make) -> None:
    root = xml_of(make_sick_leave())
    sig = etree.SubElement(root, f"{{{DS}}}Signature")
    etree.SubElement(sig, f"{{{DS}}}SignedInfo")  # contents are the verifier's business
    assert codec.parse_sick_leave(root) == make_sick_leave()


# --------------------------------------------------------------------------------------------
# Schema-invalid documents
# --------------------------------------------------------------------------------------------


def mutate_wrong_namespace(root: etree._Element) -> etree._Element:
    text = etree.tostring(root).replace(NS.encode(), b"urn:ezla:sick-leave:2")
    return etree.fromstring(text)


def remove(path: str) -> Callable[[etree._Element], etree._Element]:
    def f(root: etree._Element) -> etree._Element:
        el = first(root, path)
        parent = el.getparent()
        assert parent is not None
        parent.remove(el)
        return root

    return f


def set_text(path: str, value: str) -> Callable[[etree._Element], etree._Element]:
    def f(root: etree._Element) -> etree._Element:
        first(root, path).text = value
        return root

    return f


def append(path: str, tag: str, text: str = "") -> Callable[[etree._Element], etree._Element]:
    def f(root: etree._Element) -> etree._Element:
        parent = first(root, path) if path != "." else root
        etree.SubElement(parent, tag).text = text
        return root

    return f


def reorder(root: etree._Element) -> etree._Element:
    diag = first(root, "ez:Diagnosis")
    root.remove(diag)
    root.insert(1, diag)
    return root


def set_attr(value: str | None) -> Callable[[etree._Element], etree._Element]:
    def f(root: etree._Element) -> etree._Element:
        if value is None:
            del root.attrib["DocumentId"]
        else:
            root.set("DocumentId", value)
        return root

    return f


def add_payer_pesel(root: etree._Element) -> etree._Element:
    payer = first(root, "ez:Payer")
    el = etree.Element(q("Pesel"))
    el.text = "44051401359"
    payer.insert(1, el)
    return root


def empty_codes(root: etree._Element) -> etree._Element:
    first(root, "ez:Diagnosis").addprevious(etree.Element(q("Codes")))
    return root


def two_signatures(root: etree._Element) -> etree._Element:
    etree.SubElement(root, f"{{{DS}}}Signature")
    etree.SubElement(root, f"{{{DS}}}Signature")
    return root


MUTATIONS: dict[str, Callable[[etree._Element], etree._Element]] = {
    "wrong namespace": mutate_wrong_namespace,
    "missing Diagnosis": remove("ez:Diagnosis"),
    "missing Patient/Address": remove("ez:Patient/ez:Address"),
    "missing City": remove("ez:Clinic/ez:Address/ez:City"),
    "bad postal code": set_text("ez:Patient/ez:Address/ez:PostalCode", "30001"),
    "postal code with letters": set_text("ez:Clinic/ez:Address/ez:PostalCode", "AB-CDE"),
    "PESEL too short": set_text("ez:Patient/ez:Pesel", "4405140135"),
    "PESEL with space": set_text("ez:Patient/ez:Pesel", " 44051401359"),
    "NIP too long": set_text("ez:Payer/ez:Nip", "52602502740"),
    "REGON of 10 digits": set_text("ez:Clinic/ez:Regon", "1234567851"),
    "NPWZ of 6 digits": set_text("ez:Doctor/ez:Npwz", "542574"),
    "date with time zone": set_text("ez:IssueDate", "2025-03-10Z"),
    "impossible date": set_text("ez:IssueDate", "2025-02-30"),
    "indication 3": set_text("ez:Indication", "3"),
    "ICD-10 lower case": set_text("ez:Diagnosis/ez:Icd10", "j06.9"),
    "ICD-10 no digits": set_text("ez:Diagnosis/ez:Icd10", "JXX"),
    "name with leading space": set_text("ez:Patient/ez:GivenName", " Jan"),
    "empty name": set_text("ez:Patient/ez:FamilyName", ""),
    "name too long": set_text("ez:Doctor/ez:FamilyName", "N" * 101),
    "name on two lines": set_text("ez:Doctor/ez:FamilyName", "Nowak\nKowalska"),
    "empty Codes": empty_codes,  # at least one Code when present
    "unknown element": append("ez:Patient", q("Nickname"), "Jasiu"),
    "elements out of order": reorder,
    "DocumentId not a UUID": set_attr("clinic-123"),
    "DocumentId missing": set_attr(None),
    "payer with NIP and PESEL": add_payer_pesel,
    "psychiatric false": append("ez:Incapacity", q("Psychiatric"), "false"),
    "two signatures": two_signatures,
    "foreign element at end": append(".", "{urn:other}Extra"),
    "dsig element not a Signature": append(".", f"{{{DS}}}Object"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_schema_invalid_variants(make_sick_leave: Make, name: str) -> None:
    root = MUTATIONS[name](xml_of(make_sick_leave()))
    detail = schema_error(root)
    assert detail
    assert "line" not in detail.lower()


def test_codes_outside_a_to_e_refused(make_sick_leave: Make) -> None:
    root = xml_of(make_sick_leave(codes=("A",)))
    first(root, "ez:Codes/ez:Code").text = "F"
    schema_error(root)


def test_bad_dataclass_refused_at_build(make_sick_leave: Make) -> None:
    s = make_sick_leave()
    bad = msgspec.structs.replace(
        s,
        patient=msgspec.structs.replace(
            s.patient, address=msgspec.structs.replace(s.patient.address, postal_code="3000")
        ),
    )
    with pytest.raises(SchemaInvalid):
        codec.build_sick_leave_xml(bad)
    root = etree.fromstring(codec.build_sick_leave_xml(bad, check=False))
    assert "PostalCode" in schema_error(root)


def test_wrong_root_refused(make_sick_leave: Make) -> None:
    cancellation = etree.fromstring(
        codec.build_cancellation_xml(
            Cancellation(
                document_id="6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
                series="ZA",
                number="0000001",
                reason="x",
                npwz="5425740",
            )
        )
    )
    with pytest.raises(SchemaInvalid):
        codec.parse_sick_leave(cancellation)
    with pytest.raises(SchemaInvalid):
        codec.parse_cancellation(xml_of(make_sick_leave()))


@pytest.mark.parametrize(
    ("field", "value"),
    [("series", "za"), ("number", "123456"), ("reason", ""), ("reason", "x" * 501), ("document_id", "nope")],
)
def test_cancellation_schema(field: str, value: str) -> None:
    c = Cancellation(
        document_id="6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
        series="ZA",
        number="0000001",
        reason="x",
        npwz="5425740",
    )
    with pytest.raises(SchemaInvalid):
        codec.build_cancellation_xml(msgspec.structs.replace(c, **{field: value}))


def receipt(**over: str) -> etree._Element:
    fields = {
        "Series": "ZA",
        "Number": "0000001",
        "DocumentId": "6f1c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f",
        "DocumentSha256": "ab" * 32,
        "AcceptedAt": "2025-03-10T12:00:00+01:00",
        "Status": "issued",
    } | over
    root = etree.Element(q("Receipt"), nsmap={None: NS})
    for k, v in fields.items():
        if v:
            etree.SubElement(root, q(k)).text = v
    return root


def test_receipt_schema() -> None:
    schema.validate(receipt())
    schema.validate(receipt(Status=""))  # Status is optional
    sig = receipt()
    etree.SubElement(sig, f"{{{DS}}}Signature")
    schema.validate(sig)
    for bad in (
        {"DocumentSha256": "AB" * 32},
        {"DocumentSha256": "ab" * 31},
        {"AcceptedAt": "2025-03-10T12:00:00"},  # a receipt states its time zone
        {"Series": "Z1"},
        {"Number": ""},
    ):
        with pytest.raises(SchemaInvalid):
            schema.validate(receipt(**bad))


# --------------------------------------------------------------------------------------------
# No personal data in error messages
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("ez:Patient/ez:Pesel", "4405140135X"),
        ("ez:Patient/ez:FamilyName", "Brzęczyszczykiewicz" * 6),
        ("ez:Patient/ez:Address/ez:PostalCode", "31-41"),
        ("ez:Patient/ez:Address/ez:Street", " ul. Tajna"),
        ("ez:Indication", "Kowalski"),
        ("ez:IssueDate", "Kowalski"),
        ("ez:Patient/ez:FamilyName", " O'Kowalski"),  # a quote inside the value
        ("ez:Patient/ez:GivenName", " Kowalski' is fine, the set {'1', '2'}"),
        ("ez:Indication", "x' of the set {'Kowalski'}"),
        ("ez:SharesHousehold", "Kowalski"),
    ],
)
def test_schema_error_names_the_element_not_the_value(make_sick_leave: Make, path: str, value: str) -> None:
    s = make_sick_leave(
        family_member_care=FamilyMemberCare(birth_date=date(2020, 1, 1), relationship=1, shares_household=True)
    )
    if path == "ez:SharesHousehold":
        path = "ez:FamilyMemberCare/ez:SharesHousehold"
    root = set_text(path, value)(xml_of(s))
    detail = schema_error(root)
    assert value.strip() not in detail
    assert "Brzęczyszczykiewicz" not in detail and "Kowalski" not in detail and "Tajna" not in detail
    assert "/".join(["SickLeave", *(p.removeprefix("ez:") for p in path.split("/"))]) in detail


def test_schema_error_for_attribute_names_it(make_sick_leave: Make) -> None:
    detail = schema_error(set_attr("Jan Kowalski 44051401359")(xml_of(make_sick_leave())))
    assert "DocumentId" in detail
    assert "Kowalski" not in detail and "44051401359" not in detail


def test_schema_error_keeps_the_allowed_values(make_sick_leave: Make) -> None:
    detail = schema_error(set_text("ez:Indication", "3")(xml_of(make_sick_leave())))
    assert "{'1', '2'}" in detail


# --------------------------------------------------------------------------------------------
# Who sees what
# --------------------------------------------------------------------------------------------


def all_keys(d: object) -> set[str]:
    if isinstance(d, dict):
        return set(d) | {k for v in d.values() for k in all_keys(v)}
    if isinstance(d, list):
        return {k for v in d for k in all_keys(v)}
    return set()


@given(icd=st.from_regex(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", fullmatch=True))
def test_employer_view_never_contains_the_diagnosis(make_sick_leave: Make, icd: str) -> None:
    s = make_sick_leave(icd10=icd)
    view = views.employer_view(s)
    assert "icd10" not in all_keys(view)
    assert icd not in json.dumps(view)
    assert views.full_view(s)["icd10"] == icd


def test_employer_view_contents(make_sick_leave: Make, today: date) -> None:
    child = make_pesel(date(2019, 6, 1), 5, False)
    s = make_sick_leave(
        codes=("B",),
        incapacity=Incapacity(
            start=today - timedelta(days=10),
            end=today + timedelta(days=3),
            hospital=Hospital(start=today - timedelta(days=10), end=today - timedelta(days=5)),
            psychiatric=True,
        ),
        family_member_care=FamilyMemberCare(pesel=child, relationship=1, shares_household=True),
    )
    view = views.employer_view(s)
    json.dumps(view)  # JSON-ready
    # What the payer gets: period, hospital part, indication, codes, doctor, clinic, patient identity.
    assert view["incapacity"]["hospital"] == {
        "from": (today - timedelta(days=10)).isoformat(),
        "to": (today - timedelta(days=5)).isoformat(),
    }
    assert view["codes"] == ["B"] and view["indication"] == s.indication
    assert view["doctor"]["npwz"] == s.doctor.npwz and view["clinic"]["regon"] == s.clinic.regon
    assert view["patient"]["pesel"] == s.patient.pesel
    # No stay address given: the patient stays at home, so that is where the payer may control.
    assert view["patient"]["stay_address"]["city"] == s.patient.address.city
    assert "address" not in view["patient"]
    # What it does not get: anything hinting at the illness, or the child's PESEL.
    assert "psychiatric" not in all_keys(view)
    assert child not in json.dumps(view)
    assert view["family_member_care"] == {
        "birth_date": "2019-06-01",
        "relationship": 1,
        "shares_household": True,
    }
    # The full view has all of it.
    full = views.full_view(s)
    assert full["incapacity"]["psychiatric"] is True
    assert full["family_member_care"]["pesel"] == child


def test_employer_view_uses_the_given_stay_address(make_sick_leave: Make) -> None:
    base = make_sick_leave()
    stay = Address(street="Nadmorska", building="1", postal_code="84-150", city="Hel")
    s = make_sick_leave(patient=msgspec.structs.replace(base.patient, stay_address=stay))
    assert views.employer_view(s)["patient"]["stay_address"]["city"] == "Hel"
    assert "Kraków" not in json.dumps(views.employer_view(s))


# --------------------------------------------------------------------------------------------
# Model invariants and the schema cache
# --------------------------------------------------------------------------------------------


def test_model_invariants() -> None:
    with pytest.raises(ValueError):
        Payer(name="X")
    with pytest.raises(ValueError):
        Payer(name="X", nip="5260250274", pesel="44051401359")
    with pytest.raises(ValueError):
        FamilyMemberCare(relationship=1, shares_household=True)
    with pytest.raises(AttributeError):
        Payer(name="X", nip="5260250274").name = "Y"  # type: ignore[misc]


def test_schema_cached_per_thread() -> None:
    assert schema.load_schema() is schema.load_schema()
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(schema.load_schema()))
    t.start()
    t.join()
    assert other[0] is not schema.load_schema()


def test_validate_concurrently(make_sick_leave: Make) -> None:
    good = codec.build_sick_leave_xml(make_sick_leave())
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(50):
                root = etree.fromstring(good)
                if i % 2:
                    first(root, "ez:Indication").text = "9"
                    with pytest.raises(SchemaInvalid) as e:
                        schema.validate(root)
                    assert "Indication" in e.value.detail
                else:
                    schema.validate(root)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_new_optional_parts_round_trip(make_sick_leave: Callable[..., SickLeave]) -> None:
    """Passport patient, reserved number, correction, backdating justification: XML and JSON forms."""
    base = make_sick_leave()
    s = msgspec.structs.replace(
        base,
        patient=document.Patient(
            given_name="Greta",
            family_name="Müller",
            address=base.patient.address,
            passport=document.Passport(number="C01X00T47", country="DE", birth_date=date(1991, 4, 2), sex="F"),
        ),
        reserved_number=document.ReservedNumber(series="ZA", number="0000042"),
        replaces=document.ReservedNumber(series="ZA", number="0000007"),
        incapacity=msgspec.structs.replace(
            base.incapacity, psychiatric=True, backdating_justification="Pacjent w szpitalu."
        ),
    )
    assert roundtrip(s) == s
    assert document.sick_leave_from_builtins(document.as_builtins(s)) == s
    key = s.patient.key
    assert key == document.passport_key("DE", "C01X00T47") and len(key) == 11 and not key.isdigit()
    assert key != document.passport_key("DE", "C01X00T48") != document.passport_key("AT", "C01X00T47")
    assert base.patient.key == base.patient.pesel
    with pytest.raises(ValueError, match="exactly one"):
        document.Patient(given_name="A", family_name="B", address=base.patient.address)
    employer = views.employer_view(s)
    assert (
        "backdating_justification" not in employer["incapacity"] and employer["patient"]["passport"]["country"] == "DE"
    )

"""The e-ZLA's XML form: read a validated element into the model, write the model as XML.

Works on already-parsed lxml elements: hardened parsing of untrusted bytes and the signature check
happen before (``ezla.xades``); business rules after (``rules.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Final, TypeVar

from lxml import etree

from ezla.document.model import (
    Address,
    Cancellation,
    Clinic,
    Doctor,
    FamilyMemberCare,
    Hospital,
    Incapacity,
    Passport,
    Patient,
    Payer,
    ReservedNumber,
    SickLeave,
)
from ezla.document.schema import NS, validate
from ezla.errors import SchemaInvalid
from ezla.events import DocumentId
from ezla.identifiers import Nip, Npwz, Pesel, Regon, pesel_birth_date

_N: Final = {"ez": NS}
T = TypeVar("T")


def _text(el: etree._Element, path: str) -> str:
    node = el.find(path, _N)
    assert node is not None, path  # guaranteed by the schema, validated first
    # string() joins all text nodes, so a comment inside a value cannot cut it short.
    return str(node.xpath("string()"))


def _opt(el: etree._Element, path: str) -> str | None:
    return None if el.find(path, _N) is None else _text(el, path)


def _opt_as(kind: Callable[[str], T], el: etree._Element, path: str) -> T | None:
    text = _opt(el, path)
    return None if text is None else kind(text)


def _date(el: etree._Element, path: str) -> date:
    return date.fromisoformat(_text(el, path).strip())  # xs:date collapses white space


def _child(el: etree._Element, path: str) -> etree._Element:
    node = el.find(path, _N)
    assert node is not None, path
    return node


def _address(el: etree._Element) -> Address:
    return Address(
        street=_text(el, "ez:Street"),
        building=_text(el, "ez:Building"),
        flat=_opt(el, "ez:Flat"),
        postal_code=_text(el, "ez:PostalCode"),
        city=_text(el, "ez:City"),
    )


def _passport(el: etree._Element) -> Passport:
    sex = _text(el, "ez:Sex")
    return Passport(
        number=_text(el, "ez:Number"),
        country=_text(el, "ez:Country"),
        birth_date=_date(el, "ez:BirthDate"),
        sex="F" if sex == "F" else "M",  # the schema allows only these two
    )


def _expect_root(root: etree._Element, name: str) -> None:
    validate(root)
    if root.tag != f"{{{NS}}}{name}":
        raise SchemaInvalid(f"Expected a {name} document, got {etree.QName(root).localname}")


def parse_sick_leave(root: etree._Element) -> SickLeave:
    """Validate a ``SickLeave`` element and read it into the model."""
    _expect_root(root, "SickLeave")
    patient = _child(root, "ez:Patient")
    stay = patient.find("ez:StayAddress", _N)
    passport = patient.find("ez:Passport", _N)
    payer = _child(root, "ez:Payer")
    inc = _child(root, "ez:Incapacity")
    hosp = inc.find("ez:Hospital", _N)
    fmc = root.find("ez:FamilyMemberCare", _N)
    return SickLeave(
        document_id=DocumentId(str(root.get("DocumentId")).lower()),
        issue_date=_date(root, "ez:IssueDate"),
        doctor=Doctor(
            npwz=Npwz(_text(root, "ez:Doctor/ez:Npwz")),
            given_name=_text(root, "ez:Doctor/ez:GivenName"),
            family_name=_text(root, "ez:Doctor/ez:FamilyName"),
        ),
        clinic=Clinic(
            regon=Regon(_text(root, "ez:Clinic/ez:Regon")),
            name=_text(root, "ez:Clinic/ez:Name"),
            address=_address(_child(root, "ez:Clinic/ez:Address")),
        ),
        patient=Patient(
            pesel=_opt_as(Pesel, patient, "ez:Pesel"),
            passport=None if passport is None else _passport(passport),
            given_name=_text(patient, "ez:GivenName"),
            family_name=_text(patient, "ez:FamilyName"),
            address=_address(_child(patient, "ez:Address")),
            stay_address=None if stay is None else _address(stay),
        ),
        payer=Payer(
            nip=_opt_as(Nip, payer, "ez:Nip"), pesel=_opt_as(Pesel, payer, "ez:Pesel"), name=_text(payer, "ez:Name")
        ),
        incapacity=Incapacity(
            start=_date(inc, "ez:From"),
            end=_date(inc, "ez:To"),
            hospital=None if hosp is None else Hospital(start=_date(hosp, "ez:From"), end=_date(hosp, "ez:To")),
            psychiatric=inc.find("ez:Psychiatric", _N) is not None,  # the schema allows only "true"
            backdating_justification=_opt(inc, "ez:BackdatingJustification"),
        ),
        indication=int(_text(root, "ez:Indication")),
        codes=tuple(str(c.xpath("string()")) for c in root.iterfind("ez:Codes/ez:Code", _N)),
        icd10=_text(root, "ez:Diagnosis/ez:Icd10"),
        family_member_care=None
        if fmc is None
        else FamilyMemberCare(
            pesel=_opt_as(Pesel, fmc, "ez:Pesel"),
            birth_date=None if fmc.find("ez:BirthDate", _N) is None else _date(fmc, "ez:BirthDate"),
            relationship=int(_text(fmc, "ez:Relationship")),
            shares_household=_text(fmc, "ez:SharesHousehold").strip() in ("true", "1"),
        ),
        reserved_number=None
        if root.find("ez:Series", _N) is None
        else ReservedNumber(series=_text(root, "ez:Series"), number=_text(root, "ez:Number")),
        replaces=None
        if root.find("ez:Replaces", _N) is None
        else ReservedNumber(series=_text(root, "ez:Replaces/ez:Series"), number=_text(root, "ez:Replaces/ez:Number")),
    )


def parse_cancellation(root: etree._Element) -> Cancellation:
    """Validate a ``Cancellation`` element and read it into the model."""
    _expect_root(root, "Cancellation")
    return Cancellation(
        document_id=DocumentId(str(root.get("DocumentId")).lower()),
        series=_text(root, "ez:Series"),
        number=_text(root, "ez:Number"),
        reason=_text(root, "ez:Reason"),
        npwz=Npwz(_text(root, "ez:Doctor/ez:Npwz")),
    )


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        el.text = text
    return el


def _write_address(parent: etree._Element, name: str, a: Address) -> None:
    el = _sub(parent, name)
    _sub(el, "Street", a.street)
    _sub(el, "Building", a.building)
    if a.flat is not None:
        _sub(el, "Flat", a.flat)
    _sub(el, "PostalCode", a.postal_code)
    _sub(el, "City", a.city)


def _serialise(root: etree._Element, check: bool) -> bytes:
    if check:
        validate(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _write_incapacity(root: etree._Element, i: Incapacity) -> None:
    inc = _sub(root, "Incapacity")
    _sub(inc, "From", i.start.isoformat())
    _sub(inc, "To", i.end.isoformat())
    if i.hospital is not None:
        h = _sub(inc, "Hospital")
        _sub(h, "From", i.hospital.start.isoformat())
        _sub(h, "To", i.hospital.end.isoformat())
    if i.psychiatric:
        _sub(inc, "Psychiatric", "true")
    if i.backdating_justification is not None:
        _sub(inc, "BackdatingJustification", i.backdating_justification)


def _write_identity(pa: etree._Element, p: Patient) -> None:
    if p.pesel is not None:
        _sub(pa, "Pesel", p.pesel)
    else:
        assert p.passport is not None
        pp = _sub(pa, "Passport")
        _sub(pp, "Number", p.passport.number)
        _sub(pp, "Country", p.passport.country)
        _sub(pp, "BirthDate", p.passport.birth_date.isoformat())
        _sub(pp, "Sex", p.passport.sex)


def _write_patient(root: etree._Element, p: Patient) -> None:
    pa = _sub(root, "Patient")
    _write_identity(pa, p)
    _sub(pa, "GivenName", p.given_name)
    _sub(pa, "FamilyName", p.family_name)
    _write_address(pa, "Address", p.address)
    if p.stay_address is not None:
        _write_address(pa, "StayAddress", p.stay_address)


def sick_leave_element(s: SickLeave) -> etree._Element:
    """The unsigned ``SickLeave`` element (not validated; see ``build_sick_leave_xml``)."""
    root = etree.Element(f"{{{NS}}}SickLeave", nsmap={None: NS})  # type: ignore[dict-item]  # lxml-stubs
    root.set("DocumentId", s.document_id)
    if s.reserved_number is not None:
        _sub(root, "Series", s.reserved_number.series)
        _sub(root, "Number", s.reserved_number.number)
    _sub(root, "IssueDate", s.issue_date.isoformat())
    doc = _sub(root, "Doctor")
    _sub(doc, "Npwz", s.doctor.npwz)
    _sub(doc, "GivenName", s.doctor.given_name)
    _sub(doc, "FamilyName", s.doctor.family_name)
    cl = _sub(root, "Clinic")
    _sub(cl, "Regon", s.clinic.regon)
    _sub(cl, "Name", s.clinic.name)
    _write_address(cl, "Address", s.clinic.address)
    _write_patient(root, s.patient)
    py = _sub(root, "Payer")
    if s.payer.nip is not None:
        _sub(py, "Nip", s.payer.nip)
    else:
        _sub(py, "Pesel", s.payer.pesel)
    _sub(py, "Name", s.payer.name)
    _write_incapacity(root, s.incapacity)
    _sub(root, "Indication", str(s.indication))
    if s.codes:
        codes = _sub(root, "Codes")
        for c in s.codes:
            _sub(codes, "Code", c)
    _sub(_sub(root, "Diagnosis"), "Icd10", s.icd10)
    f = s.family_member_care
    if f is not None:
        fm = _sub(root, "FamilyMemberCare")
        if f.pesel is not None:
            _sub(fm, "Pesel", f.pesel)
        else:
            assert f.birth_date is not None
            _sub(fm, "BirthDate", f.birth_date.isoformat())
        _sub(fm, "Relationship", str(f.relationship))
        _sub(fm, "SharesHousehold", "true" if f.shares_household else "false")
    if s.replaces is not None:
        rep = _sub(root, "Replaces")
        _sub(rep, "Series", s.replaces.series)
        _sub(rep, "Number", s.replaces.number)
    return root


def payer_copy_element(
    s: SickLeave,
    *,
    series: str,
    number: str,
    status: str,
    accepted_at: datetime,
    cancelled_at: datetime | None,
) -> etree._Element:
    """The unsigned ``PayerCopy``: what the payer may see of an e-ZLA (domain.md "Who sees what",
    the same cut as ``issuance.views.employer_view``). Never the diagnosis, the psychiatric flag or
    its justification, the residence address (the stay address instead), nor the cared-for
    person's PESEL (their birth date instead: a child's age decides the allowance)."""
    root = etree.Element(f"{{{NS}}}PayerCopy", nsmap={None: NS})  # type: ignore[dict-item]  # lxml-stubs
    _sub(root, "Series", series)
    _sub(root, "Number", number)
    _sub(root, "Status", status)
    _sub(root, "AcceptedAt", accepted_at.isoformat(timespec="seconds"))
    if cancelled_at is not None:
        _sub(root, "CancelledAt", cancelled_at.isoformat(timespec="seconds"))
    _sub(root, "IssueDate", s.issue_date.isoformat())
    doc = _sub(root, "Doctor")
    _sub(doc, "Npwz", s.doctor.npwz)
    _sub(doc, "GivenName", s.doctor.given_name)
    _sub(doc, "FamilyName", s.doctor.family_name)
    _sub(root, "ClinicName", s.clinic.name)
    pa = _sub(root, "Patient")
    _write_identity(pa, s.patient)
    _sub(pa, "GivenName", s.patient.given_name)
    _sub(pa, "FamilyName", s.patient.family_name)
    _write_address(pa, "StayAddress", s.patient.effective_stay_address)
    py = _sub(root, "Payer")
    if s.payer.nip is not None:
        _sub(py, "Nip", s.payer.nip)
    else:
        _sub(py, "Pesel", s.payer.pesel)
    _sub(py, "Name", s.payer.name)
    inc = _sub(root, "Incapacity")
    _sub(inc, "From", s.incapacity.start.isoformat())
    _sub(inc, "To", s.incapacity.end.isoformat())
    if s.incapacity.hospital is not None:
        h = _sub(root, "Hospital")
        _sub(h, "From", s.incapacity.hospital.start.isoformat())
        _sub(h, "To", s.incapacity.hospital.end.isoformat())
    _sub(root, "Indication", str(s.indication))
    if s.codes:
        codes = _sub(root, "Codes")
        for c in s.codes:
            _sub(codes, "Code", c)
    if s.family_member_care is not None:
        _write_payer_care(root, s.family_member_care)
    return root


def _write_payer_care(root: etree._Element, f: FamilyMemberCare) -> None:
    fm = _sub(root, "FamilyMemberCare")
    birth = f.birth_date
    if birth is None and f.pesel is not None:
        try:
            birth = pesel_birth_date(f.pesel)
        except ValueError:
            birth = None
    if birth is not None:
        _sub(fm, "BirthDate", birth.isoformat())
    _sub(fm, "Relationship", str(f.relationship))
    _sub(fm, "SharesHousehold", "true" if f.shares_household else "false")


def build_sick_leave_xml(s: SickLeave, *, check: bool = True) -> bytes:
    """The unsigned e-ZLA as UTF-8 XML, ready to be signed.

    With ``check`` (the default) the result is validated, so data that cannot be expressed (a name
    too long, a malformed postal code) raises SchemaInvalid here rather than at the service;
    ``check=False`` lets tests produce deliberately invalid documents.
    """
    return _serialise(sick_leave_element(s), check)


def build_cancellation_xml(c: Cancellation, *, check: bool = True) -> bytes:
    """The unsigned cancellation as UTF-8 XML, ready to be signed."""
    root = etree.Element(f"{{{NS}}}Cancellation", nsmap={None: NS})  # type: ignore[dict-item]  # lxml-stubs
    root.set("DocumentId", c.document_id)
    _sub(root, "Series", c.series)
    _sub(root, "Number", c.number)
    _sub(root, "Reason", c.reason)
    _sub(_sub(root, "Doctor"), "Npwz", c.npwz)
    return _serialise(root, check)

"""The e-ZLA document (namespace ``urn:ezla:sick-leave:1``): schema, model, reading and writing.

Everything here works on already-parsed lxml elements: hardened parsing of untrusted bytes and the
signature check happen before (``ezla.xades`` or similar); business rules after
(``ezla.issuance.rules``). The dataclasses are the one in-memory shape of a sick note; the JSON
forms (``to_dict`` for storage, ``full_view`` / ``employer_view`` for readers) are derived from them.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from lxml import etree

from ezla.errors import SchemaInvalid
from ezla.identifiers import pesel_birth_date

NS: Final = "urn:ezla:sick-leave:1"
DSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
_N: Final = {"ez": NS}

# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema_source() -> bytes:
    return resources.files("ezla.issuance").joinpath("xsd/sickleave.xsd").read_bytes()


# lxml keeps the error log on the XMLSchema object and validates without the GIL, so one shared
# instance would mix up concurrent callers' errors: one compiled schema per thread instead.
_local = threading.local()


def load_schema() -> etree.XMLSchema:
    """The compiled e-ZLA schema (cached per thread)."""
    schema: etree.XMLSchema | None = getattr(_local, "schema", None)
    if schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        schema = etree.XMLSchema(etree.fromstring(_schema_source(), parser=parser))
        _local.schema = schema
    return schema


_QUOTED = re.compile(r"'([^']*)'")
_KEEP_AFTER = ("element ", "attribute ", "facet ", "type ", "pattern ", "length of ", "content type is ")
_SET_MARK = " of the set {'"  # enumeration sets come last and from the schema, not the document
_ELEMENT_PREFIX = re.compile(r"^Element '[^'{]*': ")  # only ours: a foreign namespace stays visible
_STEP = re.compile(r"^(?:[\w.-]+:)?([\w.-]+|\*)(?:\[(\d+)\])?$")


def _scrub(message: str, values: set[str]) -> str:
    """Drop document values from a libxml2 message, keep element/attribute/type names.

    libxml2 quotes the offending value ("The value 'Kowalski' ...", "'x' is not a valid value");
    that may be personal data. The offending node's own values are cut first (they may contain
    quotes themselves, as in O'Brien); then anything still quoted goes unless the words before it
    say it is a name, a facet, a schema pattern or a length.
    """
    cut = message.rfind(_SET_MARK)
    head, tail = (
        (message, "") if cut < 0 else (message[: cut + len(" of the set ")], message[cut + len(" of the set ") :])
    )
    for v in sorted(values, key=len, reverse=True):
        head = head.replace(f"'{v}'", "'…'")

    def repl(m: re.Match[str]) -> str:
        return m.group(0) if head[: m.start()].lower().endswith(_KEEP_AFTER) else "'…'"

    return (_QUOTED.sub(repl, head) + tail).replace("{" + NS + "}", "").strip()


def _locate(root: etree._Element, xpath: str | None) -> etree._Element | None:
    """The element libxml2's positional path (``/*/*[4]/*[2]``) points at.

    The path is relative to the validated element (lxml validates a non-root element as if it
    were the root), so it is walked by hand instead of evaluated on the real tree.
    """
    if not xpath or not xpath.startswith("/"):
        return None
    node = root
    for step in xpath.split("/")[2:]:
        m = _STEP.match(step)
        if m is None:
            return None
        name, index = m.group(1), int(m.group(2) or 1)
        children = [c for c in node if isinstance(c.tag, str) and (name == "*" or etree.QName(c).localname == name)]
        if index > len(children):
            return None
        node = children[index - 1]
    return node


def _node_values(node: etree._Element) -> set[str]:
    raw = [str(node.xpath("string()")), *node.attrib.values()]
    return {form for v in raw for form in (v, v.strip(), " ".join(v.split())) if form}


def _path_of(root: etree._Element, node: etree._Element) -> str:
    names = [etree.QName(node).localname]
    while node is not root and (parent := node.getparent()) is not None:
        node = parent
        names.append(etree.QName(node).localname)
    return "/".join(reversed(names))


def validate(root: etree._Element) -> None:
    """Check ``root`` (a SickLeave, Cancellation or Receipt) against the schema.

    Raises SchemaInvalid with the first error, naming elements but never quoting their values.
    """
    if not isinstance(root, etree._Element) or not isinstance(root.tag, str):
        raise SchemaInvalid("The document root is not an element")
    schema = load_schema()
    if not schema.validate(root):
        entry = next(iter(schema.error_log))  # type: ignore[call-overload]  # the first error: later ones often follow from it
        node = _locate(root, entry.path)
        if node is None:
            raise SchemaInvalid(_scrub(entry.message, set()))
        message = _ELEMENT_PREFIX.sub("", _scrub(entry.message, _node_values(node)))
        raise SchemaInvalid(f"{_path_of(root, node)}: {message}")
    # The schema's wildcard admits any xmldsig element at the end; only a Signature belongs there.
    last = root[-1] if len(root) else None
    if (
        last is not None
        and isinstance(last.tag, str)
        and etree.QName(last).namespace == DSIG_NS
        and etree.QName(last).localname != "Signature"
    ):
        raise SchemaInvalid(f"{etree.QName(root).localname}: only ds:Signature may follow the content")


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    street: str
    building: str
    postal_code: str  # NN-NNN
    city: str
    flat: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Doctor:
    npwz: str
    given_name: str
    family_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Clinic:
    regon: str  # 9 or 14 digits
    name: str
    address: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class Patient:
    pesel: str
    given_name: str
    family_name: str
    address: Address  # residence
    stay_address: Address | None = None  # where they stay during the leave, if different

    @property
    def effective_stay_address(self) -> Address:
        """Where the patient can be found during the leave (ZUS and the payer control there)."""
        return self.stay_address or self.address


@dataclass(frozen=True, slots=True, kw_only=True)
class Payer:
    """A payer is identified by NIP, or by PESEL when it is a person; exactly one of the two."""

    name: str
    nip: str | None = None
    pesel: str | None = None

    def __post_init__(self) -> None:
        if (self.nip is None) == (self.pesel is None):
            raise ValueError("Payer needs exactly one of nip and pesel")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hospital:
    """The part of the incapacity spent in hospital, both days included."""

    start: date
    end: date


@dataclass(frozen=True, slots=True, kw_only=True)
class Incapacity:
    """The period of incapacity, ``start`` and ``end`` both included (XML ``From``/``To``)."""

    start: date
    end: date
    hospital: Hospital | None = None
    psychiatric: bool = False  # certified by a psychiatrist: may start more than 3 days back

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyMemberCare:
    """Leave to care for a family member: identified by PESEL, or by birth date without one."""

    relationship: int  # 1 child, 2 spouse, 3 parent, 4 other household member
    shares_household: bool
    pesel: str | None = None
    birth_date: date | None = None

    def __post_init__(self) -> None:
        if (self.pesel is None) == (self.birth_date is None):
            raise ValueError("FamilyMemberCare needs exactly one of pesel and birth_date")


@dataclass(frozen=True, slots=True, kw_only=True)
class SickLeave:
    document_id: str  # the clinic's UUID, lower case; the idempotency key
    issue_date: date
    doctor: Doctor
    clinic: Clinic
    patient: Patient
    payer: Payer
    incapacity: Incapacity
    indication: int  # 1 must lie in bed, 2 may walk
    codes: tuple[str, ...] = ()
    icd10: str
    family_member_care: FamilyMemberCare | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancellation:
    document_id: str  # DocumentId of the e-ZLA being cancelled
    series: str
    number: str
    reason: str
    npwz: str  # the cancelling doctor


# --------------------------------------------------------------------------------------------
# Reading XML
# --------------------------------------------------------------------------------------------


def _text(el: etree._Element, path: str) -> str:
    node = el.find(path, _N)
    assert node is not None, path  # guaranteed by the schema, validated first
    # string() joins all text nodes, so a comment inside a value cannot cut it short.
    return str(node.xpath("string()"))


def _opt(el: etree._Element, path: str) -> str | None:
    return None if el.find(path, _N) is None else _text(el, path)


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


def _expect_root(root: etree._Element, name: str) -> None:
    validate(root)
    if root.tag != f"{{{NS}}}{name}":
        raise SchemaInvalid(f"Expected a {name} document, got {etree.QName(root).localname}")


def parse_sick_leave(root: etree._Element) -> SickLeave:
    """Validate a ``SickLeave`` element and read it into the model."""
    _expect_root(root, "SickLeave")
    patient = _child(root, "ez:Patient")
    stay = patient.find("ez:StayAddress", _N)
    payer = _child(root, "ez:Payer")
    inc = _child(root, "ez:Incapacity")
    hosp = inc.find("ez:Hospital", _N)
    fmc = root.find("ez:FamilyMemberCare", _N)
    return SickLeave(
        document_id=str(root.get("DocumentId")).lower(),
        issue_date=_date(root, "ez:IssueDate"),
        doctor=Doctor(
            npwz=_text(root, "ez:Doctor/ez:Npwz"),
            given_name=_text(root, "ez:Doctor/ez:GivenName"),
            family_name=_text(root, "ez:Doctor/ez:FamilyName"),
        ),
        clinic=Clinic(
            regon=_text(root, "ez:Clinic/ez:Regon"),
            name=_text(root, "ez:Clinic/ez:Name"),
            address=_address(_child(root, "ez:Clinic/ez:Address")),
        ),
        patient=Patient(
            pesel=_text(patient, "ez:Pesel"),
            given_name=_text(patient, "ez:GivenName"),
            family_name=_text(patient, "ez:FamilyName"),
            address=_address(_child(patient, "ez:Address")),
            stay_address=None if stay is None else _address(stay),
        ),
        payer=Payer(nip=_opt(payer, "ez:Nip"), pesel=_opt(payer, "ez:Pesel"), name=_text(payer, "ez:Name")),
        incapacity=Incapacity(
            start=_date(inc, "ez:From"),
            end=_date(inc, "ez:To"),
            hospital=None if hosp is None else Hospital(start=_date(hosp, "ez:From"), end=_date(hosp, "ez:To")),
            psychiatric=inc.find("ez:Psychiatric", _N) is not None,  # the schema allows only "true"
        ),
        indication=int(_text(root, "ez:Indication")),
        codes=tuple(str(c.xpath("string()")) for c in root.iterfind("ez:Codes/ez:Code", _N)),
        icd10=_text(root, "ez:Diagnosis/ez:Icd10"),
        family_member_care=None
        if fmc is None
        else FamilyMemberCare(
            pesel=_opt(fmc, "ez:Pesel"),
            birth_date=None if fmc.find("ez:BirthDate", _N) is None else _date(fmc, "ez:BirthDate"),
            relationship=int(_text(fmc, "ez:Relationship")),
            shares_household=_text(fmc, "ez:SharesHousehold").strip() in ("true", "1"),
        ),
    )


def parse_cancellation(root: etree._Element) -> Cancellation:
    """Validate a ``Cancellation`` element and read it into the model."""
    _expect_root(root, "Cancellation")
    return Cancellation(
        document_id=str(root.get("DocumentId")).lower(),
        series=_text(root, "ez:Series"),
        number=_text(root, "ez:Number"),
        reason=_text(root, "ez:Reason"),
        npwz=_text(root, "ez:Doctor/ez:Npwz"),
    )


# --------------------------------------------------------------------------------------------
# Writing XML
# --------------------------------------------------------------------------------------------


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


def sick_leave_element(s: SickLeave) -> etree._Element:
    """The unsigned ``SickLeave`` element (not validated; see ``build_sick_leave_xml``)."""
    root = etree.Element(f"{{{NS}}}SickLeave", nsmap={None: NS})  # type: ignore[dict-item]  # lxml-stubs
    root.set("DocumentId", s.document_id)
    _sub(root, "IssueDate", s.issue_date.isoformat())
    doc = _sub(root, "Doctor")
    _sub(doc, "Npwz", s.doctor.npwz)
    _sub(doc, "GivenName", s.doctor.given_name)
    _sub(doc, "FamilyName", s.doctor.family_name)
    cl = _sub(root, "Clinic")
    _sub(cl, "Regon", s.clinic.regon)
    _sub(cl, "Name", s.clinic.name)
    _write_address(cl, "Address", s.clinic.address)
    pa = _sub(root, "Patient")
    _sub(pa, "Pesel", s.patient.pesel)
    _sub(pa, "GivenName", s.patient.given_name)
    _sub(pa, "FamilyName", s.patient.family_name)
    _write_address(pa, "Address", s.patient.address)
    if s.patient.stay_address is not None:
        _write_address(pa, "StayAddress", s.patient.stay_address)
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
        h = _sub(inc, "Hospital")
        _sub(h, "From", s.incapacity.hospital.start.isoformat())
        _sub(h, "To", s.incapacity.hospital.end.isoformat())
    if s.incapacity.psychiatric:
        _sub(inc, "Psychiatric", "true")
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
    return root


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


# --------------------------------------------------------------------------------------------
# JSON forms
# --------------------------------------------------------------------------------------------


def _address_dict(a: Address) -> dict[str, Any]:
    return {
        "street": a.street,
        "building": a.building,
        "flat": a.flat,
        "postal_code": a.postal_code,
        "city": a.city,
    }


def _address_from(d: dict[str, Any]) -> Address:
    return Address(
        street=d["street"],
        building=d["building"],
        flat=d.get("flat"),
        postal_code=d["postal_code"],
        city=d["city"],
    )


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _opt_date(v: str | None) -> date | None:
    return None if v is None else date.fromisoformat(v)


def sick_leave_to_dict(s: SickLeave) -> dict[str, Any]:
    """Everything in the e-ZLA as JSON-ready data (dates ISO 8601); ``sick_leave_from_dict`` inverts it."""
    inc = s.incapacity
    f = s.family_member_care
    return {
        "document_id": s.document_id,
        "issue_date": s.issue_date.isoformat(),
        "doctor": {
            "npwz": s.doctor.npwz,
            "given_name": s.doctor.given_name,
            "family_name": s.doctor.family_name,
        },
        "clinic": {
            "regon": s.clinic.regon,
            "name": s.clinic.name,
            "address": _address_dict(s.clinic.address),
        },
        "patient": {
            "pesel": s.patient.pesel,
            "given_name": s.patient.given_name,
            "family_name": s.patient.family_name,
            "address": _address_dict(s.patient.address),
            "stay_address": None if s.patient.stay_address is None else _address_dict(s.patient.stay_address),
        },
        "payer": {"nip": s.payer.nip, "pesel": s.payer.pesel, "name": s.payer.name},
        "incapacity": {
            "from": inc.start.isoformat(),
            "to": inc.end.isoformat(),
            "hospital": None
            if inc.hospital is None
            else {"from": inc.hospital.start.isoformat(), "to": inc.hospital.end.isoformat()},
            "psychiatric": inc.psychiatric,
        },
        "indication": s.indication,
        "codes": list(s.codes),
        "icd10": s.icd10,
        "family_member_care": None
        if f is None
        else {
            "pesel": f.pesel,
            "birth_date": _iso(f.birth_date),
            "relationship": f.relationship,
            "shares_household": f.shares_household,
        },
    }


def sick_leave_from_dict(d: dict[str, Any]) -> SickLeave:
    """Rebuild a SickLeave from ``sick_leave_to_dict`` output (e.g. after a JSON round trip)."""
    inc = d["incapacity"]
    hosp = inc.get("hospital")
    pat = d["patient"]
    f = d.get("family_member_care")
    return SickLeave(
        document_id=d["document_id"],
        issue_date=date.fromisoformat(d["issue_date"]),
        doctor=Doctor(**d["doctor"]),
        clinic=Clinic(
            regon=d["clinic"]["regon"],
            name=d["clinic"]["name"],
            address=_address_from(d["clinic"]["address"]),
        ),
        patient=Patient(
            pesel=pat["pesel"],
            given_name=pat["given_name"],
            family_name=pat["family_name"],
            address=_address_from(pat["address"]),
            stay_address=None if pat.get("stay_address") is None else _address_from(pat["stay_address"]),
        ),
        payer=Payer(nip=d["payer"].get("nip"), pesel=d["payer"].get("pesel"), name=d["payer"]["name"]),
        incapacity=Incapacity(
            start=date.fromisoformat(inc["from"]),
            end=date.fromisoformat(inc["to"]),
            hospital=None
            if hosp is None
            else Hospital(start=date.fromisoformat(hosp["from"]), end=date.fromisoformat(hosp["to"])),
            psychiatric=bool(inc.get("psychiatric", False)),
        ),
        indication=int(d["indication"]),
        codes=tuple(d.get("codes") or ()),
        icd10=d["icd10"],
        family_member_care=None
        if f is None
        else FamilyMemberCare(
            pesel=f.get("pesel"),
            birth_date=_opt_date(f.get("birth_date")),
            relationship=int(f["relationship"]),
            shares_household=bool(f["shares_household"]),
        ),
    )


def cancellation_to_dict(c: Cancellation) -> dict[str, Any]:
    return {
        "document_id": c.document_id,
        "series": c.series,
        "number": c.number,
        "reason": c.reason,
        "npwz": c.npwz,
    }


def cancellation_from_dict(d: dict[str, Any]) -> Cancellation:
    return Cancellation(
        document_id=d["document_id"],
        series=d["series"],
        number=d["number"],
        reason=d["reason"],
        npwz=d["npwz"],
    )


def to_dict(obj: SickLeave | Cancellation) -> dict[str, Any]:
    """Storage form of either document (inverse: ``sick_leave_from_dict`` / ``cancellation_from_dict``)."""
    if isinstance(obj, SickLeave):
        return sick_leave_to_dict(obj)
    return cancellation_to_dict(obj)


def full_view(s: SickLeave) -> dict[str, Any]:
    """What the patient, the issuing doctor and the registry see: the whole e-ZLA, diagnosis included.

    Same shape as the storage form; series, number and status are added by the caller, which owns
    them (they are assigned on acceptance, not written by the clinic).
    """
    return sick_leave_to_dict(s)


def employer_view(s: SickLeave) -> dict[str, Any]:
    """What the payer sees (domain.md "Who sees what"): never anything that reveals the diagnosis.

    Left out: the ICD-10 code; the ``psychiatric`` flag (it says what kind of illness this is);
    the patient's residence address as such (the table gives the payer the *stay* address, which is
    the residence when no other is given); the cared-for family member's PESEL (its birth date
    stays, since the age of a child decides the care allowance).
    """
    full = sick_leave_to_dict(s)
    del full["icd10"]
    del full["incapacity"]["psychiatric"]
    full["patient"] = {
        "pesel": s.patient.pesel,
        "given_name": s.patient.given_name,
        "family_name": s.patient.family_name,
        "stay_address": _address_dict(s.patient.effective_stay_address),
    }
    f = s.family_member_care
    if f is not None:
        birth = f.birth_date
        if birth is None and f.pesel is not None:
            try:
                birth = pesel_birth_date(f.pesel)
            except ValueError:
                birth = None
        full["family_member_care"] = {
            "birth_date": _iso(birth),
            "relationship": f.relationship,
            "shares_household": f.shares_household,
        }
    return full

"""The printout of an e-ZLA (PDF, made with fpdf2): what the payer needs from it, never the
diagnosis, with the number, the verification code and a QR code (segno) that opens ``/verify``
with both filled in. The QR code is drawn as vector squares, so the PDF needs no image library.

Polish letters need a Unicode font: Debian's DejaVu Sans (``fonts-dejavu-core``) or the file named
by ``EZLA_PDF_FONT``. Without one the printout falls back to a core PDF font with the letters
transliterated (ł -> l), legible and never an error.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import segno
from fpdf import FPDF

from ezla.web import format as fmt

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
_LABELS = {
    "pl": {
        "title": "Zaświadczenie lekarskie e-ZLA",
        "number": "Numer",
        "code": "Kod weryfikacyjny",
        "status": "Status",
        "issued": "wystawione",
        "cancelled": "ANULOWANE",
        "patient": "Ubezpieczony",
        "period": "Okres niezdolności do pracy",
        "days": "dni",
        "issue_date": "Data wystawienia",
        "indication": "Wskazanie lekarskie",
        "codes": "Kody",
        "care": "Opieka nad",
        "doctor": "Lekarz",
        "clinic": "Placówka",
        "payer": "Płatnik",
        "check": "Sprawdź autentyczność: zeskanuj kod QR albo wpisz numer i kod na",
        "printed": "Wydrukowano",
    },
    "en": {
        "title": "Sick-leave certificate e-ZLA",
        "number": "Number",
        "code": "Verification code",
        "status": "Status",
        "issued": "issued",
        "cancelled": "CANCELLED",
        "patient": "Insured person",
        "period": "Incapacity for work",
        "days": "days",
        "issue_date": "Issued on",
        "indication": "Indication",
        "codes": "Codes",
        "care": "Care of",
        "doctor": "Doctor",
        "clinic": "Clinic",
        "payer": "Payer",
        "check": "Check it: scan the QR code, or type the number and the code at",
        "printed": "Printed",
    },
}


def _font() -> str | None:
    configured = os.environ.get("EZLA_PDF_FONT")
    for path in ([configured] if configured else []) + list(FONT_PATHS):
        if path and Path(path).is_file():
            return path
    return None


def _ascii(text: str) -> str:
    text = text.replace("ł", "l").replace("Ł", "L")
    return unicodedata.normalize("NFKD", text).encode("latin-1", "ignore").decode("latin-1")


def verify_url(public_url: str, number: str, code: str) -> str:
    return f"{public_url}/verify?{urlencode({'number': number, 'code': code})}"


def _fields(ezla: dict[str, Any], labels: dict[str, str], lang: str) -> list[tuple[str, str]]:
    """The printout's lines below the number, in the order of the ZUS form."""
    doc = ezla["document"]
    patient, period, doctor, payer = doc["patient"], doc["incapacity"], doc["doctor"], doc["payer"]
    ident = f"PESEL {patient['pesel']}" if patient.get("pesel") else _passport(patient.get("passport"))
    days = fmt.day_count(period["from"], period["to"])
    fields = [
        (labels["patient"], f"{patient['given_name']} {patient['family_name']}, {ident}"),
        (labels["period"], f"{fmt.pl_date(period['from'])} - {fmt.pl_date(period['to'])} ({days} {labels['days']})"),
        (labels["issue_date"], fmt.pl_date(doc["issue_date"])),
        (labels["indication"], fmt.dictionary_name(doc["indication"], "indications", lang)),
    ]
    if doc.get("codes"):
        codes = "; ".join(f"{c}: {fmt.dictionary_name(c, 'letter-codes', lang)}" for c in doc["codes"])
        fields.append((labels["codes"], codes))
    care = doc.get("family_member_care")
    if care:
        born = f", {fmt.pl_date(care['birth_date'])}" if care.get("birth_date") else ""
        fields.append((labels["care"], fmt.dictionary_name(care["relationship"], "relationships", lang) + born))
    fields += [
        (labels["doctor"], f"{doctor['given_name']} {doctor['family_name']} (NPWZ {doctor['npwz']})"),
        (labels["clinic"], doc["clinic"]["name"]),
        (labels["payer"], payer["name"] + (f", NIP {payer['nip']}" if payer.get("nip") else "")),
    ]
    return fields


class _Sheet:
    def __init__(self, title: str) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_title(title)
        self.pdf.set_creator("ezla")
        font = _font()
        if font:
            self.pdf.add_font("body", fname=font)
        self.family = "body" if font else "helvetica"
        self.clean = (lambda s: s) if font else _ascii
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()

    def text(self, value: str, size: int, height: float = 5) -> None:
        self.pdf.set_font(self.family, size=size)
        self.pdf.multi_cell(0, height, self.clean(value), new_x="LMARGIN", new_y="NEXT")

    def field(self, label: str, value: str, size: int = 11) -> None:
        self.text(label, 9)
        self.text(value, size, 6)
        self.pdf.ln(1)


def printout_pdf(ezla: dict[str, Any], *, code: str, public_url: str, lang: str, printed_at: str) -> bytes:
    """``ezla`` is the payer's view of the e-ZLA (issuance.views); the diagnosis is never printed."""
    labels = _LABELS[lang]
    number = f"{ezla['series']} {ezla['number']}"
    sheet = _Sheet(f"e-ZLA {number}")
    sheet.text(labels["title"], 18, 10)
    sheet.pdf.ln(2)
    top = sheet.pdf.get_y()
    _qr(sheet.pdf, verify_url(public_url, number, code), x=150, y=top, size=45)
    sheet.field(labels["number"], number, 16)
    sheet.field(labels["code"], code, 16)
    cancelled = ezla.get("status") == "cancelled"
    sheet.field(labels["status"], labels["cancelled"] if cancelled else labels["issued"], 13)
    sheet.pdf.set_y(max(sheet.pdf.get_y(), top + 50))
    for label, value in _fields(ezla, labels, lang):
        sheet.field(label, value)
    sheet.pdf.ln(4)
    sheet.text(f"{labels['check']} {public_url}/verify", 9)
    sheet.text(f"{labels['printed']}: {printed_at}", 9)
    return bytes(sheet.pdf.output())


def _passport(passport: dict[str, Any] | None) -> str:
    return f"{passport['country']} {passport['number']}" if passport else ""


def _qr(pdf: FPDF, data: str, *, x: float, y: float, size: float) -> None:
    qr = segno.make(data, error="m")
    rows = list(qr.matrix_iter(border=2))
    cell = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x + c * cell, y + r * cell, cell, cell, style="F")

"""The server-rendered pages through HTTP on SQLite and PostgreSQL: sign-in into a cookie, the
employer's whole inbox across pages with filters, acknowledgement and CSV, the patient's list, the
public check of a printout, CSRF and sign-out."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import lxml.html
from lxml import etree

from ezla.auth.service import Role, create_account
from ezla.business_time import local_date
from ezla.db import transaction
from tests.conftest import PUBLIC_URL
from tests.factories import XML, enroll, signed_cancellation, signed_sick_leave
from tests.integration.distribution.conftest import drain

NIP_A, NIP_B = "5260250274", "1234563218"
PESEL_A, PESEL_B = "44051401359", "02070803628"


def _token(session_factory, role: Role, **kw) -> str:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        _, token = create_account(s, role, now=datetime.now(UTC), **kw)
    return token


def _sign_in(client, token: str) -> None:  # type: ignore[no-untyped-def]
    client.cookies.clear()
    r = client.post("/web/sign-in", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "ezla_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")


def _cards(html: str) -> list[lxml.html.HtmlElement]:
    return lxml.html.fromstring(html).xpath("//article[contains(@class,'ezla')]")


def _numbers(html: str) -> list[str]:
    return [" ".join(a.text_content().split()) for a in lxml.html.fromstring(html).xpath("//article/h2/a")]


def _csrf(html: str) -> str:
    return str(lxml.html.fromstring(html).xpath("//input[@name='csrf']/@value")[0])


def test_employer_sees_every_ezla_across_pages_filters_acks_and_exports(
    client, operator_token, session_factory, make_worker
):  # type: ignore[no-untyped-def]
    doctor = enroll(client, operator_token)
    today = local_date(datetime.now(UTC))
    mine: dict[str, tuple[str, str]] = {}  # "ZA 0000001" -> (id, DocumentId)
    for i in range(27):
        pesel = PESEL_B if i == 5 else PESEL_A
        start = today - timedelta(days=2) if i == 7 else today
        xml = signed_sick_leave(
            doctor, **({"patient": _patient(pesel)} if pesel != PESEL_A else {}), incapacity=_period(start)
        )
        r = client.post("/v1/ezla", content=xml, headers=XML)
        assert r.status_code == 201, r.text
        mine[f"{r.json()['series']} {r.json()['number']}"] = (r.json()["id"], etree.fromstring(xml).get("DocumentId"))
    other = client.post("/v1/ezla", content=signed_sick_leave(doctor, payer=_payer(NIP_B)), headers=XML)
    assert other.status_code == 201
    cancelled_number = next(iter(mine))
    series, number = cancelled_number.split()
    cancelled_id, cancelled_doc = mine[cancelled_number]
    cancellation = signed_cancellation(doctor, document_id=cancelled_doc, series=series, number=number)
    assert client.post(f"/v1/ezla/{cancelled_id}/cancellation", content=cancellation, headers=XML).status_code == 200
    drain(make_worker())

    _sign_in(client, _token(session_factory, Role.EMPLOYER, nip=NIP_A))
    first = client.get("/web/employer")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in first.headers
    seen = _numbers(first.text)
    assert len(seen) == 25
    nxt = lxml.html.fromstring(first.text).xpath("//a[@rel='next']/@href")
    assert nxt, "a second page is offered"
    second = client.get(nxt[0])
    seen += _numbers(second.text)
    assert sorted(seen) == sorted(mine), "every e-ZLA of this payer exactly once, none of another payer"
    assert not lxml.html.fromstring(second.text).xpath("//a[@rel='next']")
    assert "J06.9" not in first.text + second.text, "never the diagnosis"
    assert today.strftime("%d.%m.%Y") in first.text

    cancelled = client.get("/web/employer", params={"status": "cancelled"})
    assert _numbers(cancelled.text) == [cancelled_number]
    by_pesel = client.get("/web/employer", params={"pesel": PESEL_B})
    assert len(_numbers(by_pesel.text)) == 1
    window = client.get(
        "/web/employer",
        params={"from": (today - timedelta(days=2)).isoformat(), "to": (today - timedelta(days=1)).isoformat()},
    )
    assert len(_numbers(window.text)) == 1, "only the leave that started two days ago overlaps"
    bad = client.get("/web/employer", params={"pesel": "12"})
    assert bad.status_code == 200 and "11 digits" in bad.text and not _cards(bad.text)

    target = _cards(first.text)[0]
    ezla_id = target.xpath(".//input[@name='ezla_id']/@value")[0]
    forged = client.post("/web/employer/ack", data={"ezla_id": ezla_id, "csrf": "0" * 32}, follow_redirects=False)
    assert forged.status_code == 200, "a form without this session's CSRF token changes nothing"
    assert len(_numbers(client.get("/web/employer", params={"new": "1"}).text)) == 25  # (first page of 27)
    done = client.post(
        "/web/employer/ack",
        data={"ezla_id": ezla_id, "csrf": _csrf(first.text), "back": "/web/employer"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/web/employer"
    fresh = client.get("/web/employer", params={"new": "1"})
    assert "26 " in lxml.html.fromstring(fresh.text).xpath("string(//p[@class='summary'])")

    export = client.get("/web/employer/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:3] == ["seria", "numer", "status"] and len(rows) == 28
    assert sorted(f"{r[0]} {r[1]}" for r in rows[1:]) == sorted(mine)
    assert "J06.9" not in export.text

    detail = client.get(f"/web/employer/ezla/{ezla_id}")
    code = re.search(r"[A-Z2-7]{5}-[A-Z2-7]{5}", detail.text)
    assert detail.status_code == 200 and code and "J06.9" not in detail.text

    printout = client.get(f"/web/employer/ezla/{ezla_id}/printout.pdf")
    assert printout.status_code == 200 and printout.headers["content-type"] == "application/pdf"
    text, qr = read_printout(printout.content)
    number_text = " ".join(target.xpath("string(.//h2/a)").split())
    assert number_text in text and code.group(0) in text and "Kowalski-Łęcki" in text and "J06.9" not in text
    assert qr == f"{PUBLIC_URL}/verify?" + urlencode({"number": number_text, "code": code.group(0)})

    # Someone holding the printout: the number and the code, nothing else, no sign-in.
    client.cookies.clear()
    ok = client.get("/verify", params={"number": number_text, "code": code.group(0)})
    assert ok.status_code == 200 and "prawdziwe" in ok.text
    assert "Kowalski" not in ok.text and PESEL_A not in ok.text and "J.K." in ok.text
    wrong = client.get("/verify", params={"number": number_text, "code": "AAAAA-AAAAA"})
    assert wrong.status_code == 404 and "Nie znaleziono" in wrong.text
    assert client.get("/verify", params={"number": "x", "code": "y"}).status_code == 400

    # Signed out: the pages ask to sign in again.
    assert client.get("/web/employer", follow_redirects=False).status_code == 303


def test_patient_sees_current_first_with_reasons_and_codes_explained(
    client, operator_token, session_factory, make_worker
):  # type: ignore[no-untyped-def]
    doctor = enroll(client, operator_token)
    today = local_date(datetime.now(UTC))
    ids = []
    for start in (today - timedelta(days=3), today, today - timedelta(days=1)):
        xml = signed_sick_leave(doctor, incapacity=_period(start), codes=("E",))
        r = client.post("/v1/ezla", content=xml, headers=XML)
        assert r.status_code == 201, r.text
        ids.append((r.json(), etree.fromstring(xml).get("DocumentId")))
    head, doc_id = ids[2]
    cancellation = signed_cancellation(
        doctor, document_id=doc_id, series=head["series"], number=head["number"], reason="wrong-data"
    )
    assert client.post(f"/v1/ezla/{head['id']}/cancellation", content=cancellation, headers=XML).status_code == 200
    drain(make_worker())

    token = _token(session_factory, Role.PATIENT, pesel=PESEL_A)
    assert client.get("/web/patient", follow_redirects=False).headers["location"].startswith("/web/sign-in")
    _sign_in(client, token)
    page = client.get("/web/patient")
    numbers = _numbers(page.text)
    expected = [f"{ids[i][0]['series']} {ids[i][0]['number']}" for i in (1, 2, 0)]  # latest leave first
    assert numbers == expected
    assert "ANULOWANE" in page.text and "Błędne dane" in page.text
    assert "Choroba zakaźna" in page.text, "letter codes are explained"
    english = client.get("/web/lang/en", params={"next": "/web/patient"}, follow_redirects=True)
    assert "CANCELLED" in english.text and "Infectious disease" in english.text
    detail = client.get(f"/web/patient/ezla/{ids[1][0]['id']}")
    assert detail.status_code == 200 and "J06.9" in detail.text  # the patient sees their diagnosis
    assert client.get("/web/employer").status_code == 200  # another role's page: a notice, no data
    assert not _cards(client.get("/web/employer").text)

    signed_out = client.post("/web/sign-out", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert re.search(r"ezla_session=.*(Max-Age=0|expires=Thu, 01 Jan 1970)", signed_out.headers["set-cookie"], re.I)
    client.cookies.clear()
    assert client.get("/web/patient", follow_redirects=False).status_code == 303


def read_printout(pdf: bytes) -> tuple[str, str]:
    """The PDF's text (pypdf) and its QR code as a phone would read it: the squares drawn on the
    page are painted into an image and decoded by zxing-cpp, a reader none of us wrote."""
    import pypdf
    import zxingcpp
    from PIL import Image, ImageDraw

    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    squares: list[list[float]] = []
    page.extract_text(
        visitor_operand_before=lambda op, args, cm, tm: (
            squares.append([float(a) for a in args]) if op == b"re" else None
        )
    )
    scale = 4
    height = float(page.mediabox.height)
    image = Image.new("L", (int(float(page.mediabox.width) * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w, h in squares:
        top, bottom = sorted((height - y, height - y - h))
        draw.rectangle([x * scale, top * scale, (x + w) * scale, bottom * scale], fill=0)
    codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1, "one QR code on the printout"
    return page.extract_text(), codes[0].text


def _period(start):  # type: ignore[no-untyped-def]
    from ezla.document.model import Incapacity

    return Incapacity(start=start, end=start + timedelta(days=6))


def _patient(pesel: str):  # type: ignore[no-untyped-def]
    from ezla.document.model import Patient
    from ezla.identifiers import Pesel
    from ezla.issuance.samples import PATIENT_ADDRESS

    return Patient(pesel=Pesel(pesel), given_name="Ewa", family_name="Zielińska", address=PATIENT_ADDRESS)


def _payer(nip: str):  # type: ignore[no-untyped-def]
    from ezla.document.model import Payer
    from ezla.identifiers import Nip

    return Payer(nip=Nip(nip), name="Inna Firma sp. z o.o.")


def test_downloads_are_the_right_documents_for_each(client, operator_token, session_factory, make_worker, pki_dir):  # type: ignore[no-untyped-def]
    from ezla.ca.keystore import load_cert
    from ezla.document.schema import NS, validate
    from ezla.xades import verify_enveloped

    doctor = enroll(client, operator_token)
    xml = signed_sick_leave(doctor, codes=("E",))
    accepted = client.post("/v1/ezla", content=xml, headers=XML).json()
    drain(make_worker())

    employer = _token(session_factory, Role.EMPLOYER, nip=NIP_A)
    api = client.get(f"/v1/ezla/{accepted['id']}/payer-copy", headers={"Authorization": f"Bearer {employer}"})
    assert api.status_code == 200 and api.headers["content-type"].startswith("application/xml")
    other = _token(session_factory, Role.EMPLOYER, nip=NIP_B)
    assert (
        client.get(f"/v1/ezla/{accepted['id']}/payer-copy", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    _sign_in(client, employer)
    copy = client.get(f"/web/employer/ezla/{accepted['id']}/payer-copy.xml")
    assert copy.status_code == 200 and "attachment" in copy.headers["content-disposition"]
    for body in (api.content, copy.content):
        sealed = verify_enveloped(
            body,
            trust_roots=[load_cert(pki_dir, "root")],
            intermediates=[load_cert(pki_dir, "issuing")],
            at=datetime.now(UTC),
        )
        assert sealed.signer.subject == load_cert(pki_dir, "service").subject  # the service seal, not a doctor
        root = sealed.signed_root
        validate(root)
        assert etree.QName(root).localname == "PayerCopy"
        assert root.findtext(f"{{{NS}}}Number") == accepted["number"] and root.findtext(f"{{{NS}}}Status") == "issued"
        assert b"J06.9" not in body and b"Icd10" not in body and b"Address>" not in body.replace(b"StayAddress>", b"")

    _sign_in(client, _token(session_factory, Role.PATIENT, pesel=PESEL_A))
    original = client.get(f"/web/patient/ezla/{accepted['id']}/signed.xml")
    assert original.status_code == 200 and original.content == xml  # the doctor's signed original, theirs
    _sign_in(client, _token(session_factory, Role.PATIENT, pesel=PESEL_B))
    assert client.get(f"/web/patient/ezla/{accepted['id']}/signed.xml").content != xml  # another patient: nothing


def test_payer_sets_and_removes_the_webhook_from_the_page(client, session_factory):  # type: ignore[no-untyped-def]
    _sign_in(client, _token(session_factory, Role.EMPLOYER, nip=NIP_A))
    page = client.get("/web/employer")
    csrf = _csrf(page.text)
    bad = client.post(
        "/web/employer/webhook", data={"csrf": csrf, "url": "ftp://x", "secret": "s" * 20}, follow_redirects=False
    )
    assert bad.status_code == 303 and "webhook_error=" in bad.headers["location"]
    assert "Nie zapisano" in client.get(bad.headers["location"]).text
    spoof = client.get("/web/employer", params={"webhook_error": "<b>Zadzwoń pod 0-700</b>"})
    assert "Zadzwoń" not in spoof.text  # only a problem code is ever shown from the URL
    good = client.post(
        "/web/employer/webhook",
        data={"csrf": csrf, "url": "http://127.0.0.1:9/hook", "secret": "s3cret-s3cret-s3cret"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert "http://127.0.0.1:9/hook" in client.get("/web/employer").text
    assert "s3cret-s3cret-s3cret" not in client.get("/web/employer").text
    client.post("/web/employer/webhook", data={"csrf": csrf, "remove": "1"}, follow_redirects=False)
    assert "http://127.0.0.1:9/hook" not in client.get("/web/employer").text


def test_operator_runs_doctors_accounts_and_deliveries_from_the_page(client, operator_token):  # type: ignore[no-untyped-def]
    _sign_in(client, operator_token)
    home = client.get("/web/operator")
    assert home.status_code == 200 and "CRL" in home.text
    csrf = _csrf(home.text)
    registered = client.post(
        "/web/operator/doctors",
        data={"csrf": csrf, "npwz": "5425740", "pesel": "44051401359", "given_name": "Anna", "family_name": "Nowak"},
    )
    code = lxml.html.fromstring(registered.text).xpath("string(//code[@class='secret'])")
    assert registered.status_code == 200 and len(code) >= 8 and "Nowak Anna" in registered.text
    made = client.post("/web/operator/accounts", data={"csrf": csrf, "role": "employer", "nip": NIP_A, "label": "ACME"})
    token = lxml.html.fromstring(made.text).xpath("string(//code[@class='secret'])")
    assert made.headers["cache-control"] == "no-store" and len(token) > 20
    assert client.get("/v1/employer/ezla", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    ids = re.findall(r"#(\d+) płatnik ACME", made.text)
    forged = client.post(f"/web/operator/accounts/{ids[0]}/revoke", data={"csrf": "x" * 32})
    assert "wygasł" in forged.text  # the CSRF notice: nothing changed
    assert client.get("/v1/employer/ezla", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    client.post(f"/web/operator/accounts/{ids[0]}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert client.get("/v1/employer/ezla", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    doctor_page = client.get("/web/operator/doctors/5425740")
    assert doctor_page.status_code == 200 and "Anna Nowak" in doctor_page.text
    again = client.post("/web/operator/doctors/5425740/code", data={"csrf": csrf})
    assert lxml.html.fromstring(again.text).xpath("string(//code[@class='secret'])") not in ("", code)
    assert client.post("/web/operator/deliveries/retry", data={"csrf": csrf}, follow_redirects=False).status_code == 303


def test_the_public_check_is_rate_limited_per_client(settings):  # type: ignore[no-untyped-def]
    """50 bits of code are not guessable, and the public page still does not take a flood."""
    import dataclasses

    from litestar.testing import TestClient

    from ezla.app import create_app

    limited = dataclasses.replace(settings, rate_limits=(("lookup", 3), ("login", 2)))
    with TestClient(app=create_app(limited)) as c:
        answers = [
            c.get("/verify", params={"number": "ZA 0000001", "code": "AAAAA-AAAAA"}).status_code for _ in range(5)
        ]
        assert answers[:3] == [404, 404, 404] and answers[3:] == [429, 429]
        tries = [c.post("/web/sign-in", data={"token": "nope"}, follow_redirects=False).status_code for _ in range(3)]
        assert tries == [401, 401, 429]

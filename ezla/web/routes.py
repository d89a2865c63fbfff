"""Server-rendered pages (Jinja, plain forms, no script): sign-in, the employer's inbox, the
patient's e-ZLA, the doctor's list, and the public check of a printout (``/verify``)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import anyio
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template

from ezla.auth.service import Principal, Role
from ezla.business_time import local_date
from ezla.ca import service as ca
from ezla.db import reading, transaction, utcnow
from ezla.distribution import service as delivery
from ezla.distribution import views as inbox
from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.outbox import payer_key
from ezla.errors import BadRequest, EzlaError
from ezla.events import EzlaId
from ezla.issuance import drafts, lists, printouts
from ezla.issuance import service as issuance
from ezla.issuance.payer_copy import payer_copy as seal_payer_copy
from ezla.ratelimit import bucket
from ezla.web import format as fmt
from ezla.web.base import HEADERS, HOME, Req, form_ok, local_path, render, signed_in
from ezla.web.printout import printout_pdf
from ezla.web.session import COOKIE, csrf_ok, lang_cookie, language, principal_for, session_cookie
from ezla.web.texts import LANGUAGES, TEXTS

# --- signing in and out, language ---------------------------------------------------------------


@get("/web", sync_to_thread=True, include_in_schema=False)
def web_home(request: Req) -> Response[Any]:
    principal = principal_for(request, request.cookies.get(COOKIE))
    if principal is None:
        return Redirect("/web/sign-in", status_code=303)
    return Redirect(HOME.get(principal.role, "/schema"), status_code=303)


@get("/web/sign-in", sync_to_thread=False, include_in_schema=False)
def sign_in_form(request: Req, next: str | None = None) -> Template:
    return render(request, "sign_in.html", next=local_path(next, ""), error=None)


@post("/web/sign-in", include_in_schema=False, status_code=303, opt=bucket("login"))
async def sign_in(request: Req) -> Response[Any]:
    form = await request.form()
    token = str(form.get("token", "")).strip()
    principal = await anyio.to_thread.run_sync(principal_for, request, token)
    if principal is None:
        page = render(
            request, "sign_in.html", next=local_path(form.get("next"), ""), error=TEXTS[language(request)]["bad_token"]
        )
        page.status_code = 401
        return page
    target = local_path(form.get("next"), HOME.get(principal.role, "/schema"))
    return Redirect(target, status_code=303, cookies=[session_cookie(request, token)])


@post("/web/sign-out", include_in_schema=False, status_code=303)
async def sign_out(request: Req) -> Response[Any]:
    form = await request.form()
    token = request.cookies.get(COOKIE, "")
    if token and not csrf_ok(token, form.get("csrf")):
        return Redirect("/web", status_code=303)  # a foreign page cannot sign anyone out
    response: Response[Any] = Redirect("/web/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@get("/web/lang/{lang:str}", sync_to_thread=False, include_in_schema=False)
def switch_language(request: Req, lang: str, next: str | None = None) -> Response[Any]:
    chosen = lang if lang in LANGUAGES else "pl"
    return Redirect(local_path(next, "/web"), status_code=303, cookies=[lang_cookie(request, chosen)])


def _payer(who: Principal) -> str:
    return payer_key(who.nip, who.pesel)


def _attachment(body: str | bytes, media_type: str, name: str) -> Response[Any]:
    """A download: ``name`` is built here from the e-ZLA's number or the date, never from input."""
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=media_type, headers=headers)


# --- employer -----------------------------------------------------------------------------------


def _date_param(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest("a date is YYYY-MM-DD", field=field) from None


def _inbox_filter(params: dict[str, str | None]) -> inbox.InboxFilter:
    return inbox.InboxFilter(
        status=params.get("status") or None,
        pesel=(params.get("pesel") or "").strip() or None,
        period_from=_date_param(params.get("from"), "from"),
        period_to=_date_param(params.get("to"), "to"),
        unacknowledged=params.get("new") == "1",
    )


def _before(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest("before: not a page this site gave out", field="before")
    return int(value)


@get("/web/employer", sync_to_thread=True, include_in_schema=False)
def employer_page(request: Req, state: State) -> Response[Any]:
    who = signed_in(request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    params = {k: request.query_params.get(k) for k in ("status", "pesel", "from", "to", "new", "before")}
    try:
        flt = _inbox_filter(params)
        with reading(state.sessionmaker) as session:
            page = inbox.employer_page(session, _payer(who), flt, before=_before(params["before"]))
            webhook = delivery.webhook_url(session, _payer(who))
        error = None
    except EzlaError as exc:
        page, error, webhook = inbox.InboxPage([], None), exc, None
    filters = {k: v for k, v in params.items() if v and k != "before"}
    return render(
        request,
        "employer.html",
        who,
        page=page,
        filters=filters,
        query=urlencode(filters),
        next_url=f"/web/employer?{urlencode({**filters, 'before': page.next_before})}" if page.next_before else None,
        error=error,
        webhook=webhook,
        webhook_error=_problem_code(request.query_params.get("webhook_error")),
    )


@post("/web/employer/ack", include_in_schema=False, status_code=303)
async def employer_ack(request: Req, state: State) -> Response[Any]:
    form = await request.form()
    who = await anyio.to_thread.run_sync(signed_in, request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    if not form_ok(request, form):
        return render(request, "notice.html", who, home="/web/employer", message=TEXTS[language(request)]["csrf"])

    def ack() -> None:
        with transaction(state.sessionmaker) as session:
            delivery.acknowledge(session, _payer(who), EzlaId(str(form.get("ezla_id", ""))), now=utcnow())

    await anyio.to_thread.run_sync(ack)
    return Redirect(local_path(form.get("back"), "/web/employer"), status_code=303)


def _problem_code(value: str | None) -> str | None:
    return value if value and re.fullmatch(r"[a-z][a-z0-9-]{0,47}", value) else None


@post("/web/employer/webhook", include_in_schema=False, status_code=303)
async def employer_webhook(request: Req, state: State) -> Response[Any]:
    """Set or remove the payer's webhook, with the same checks as PUT /v1/employer/webhook."""
    form = await request.form()
    who = await anyio.to_thread.run_sync(signed_in, request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    if not form_ok(request, form):
        return render(request, "notice.html", who, home="/web/employer", message=TEXTS[language(request)]["csrf"])
    payer = _payer(who)
    url, secret = str(form.get("url", "")).strip(), str(form.get("secret", ""))

    def change() -> None:
        if form.get("remove"):
            with transaction(state.sessionmaker) as session:
                delivery.delete_webhook(session, payer)
            return
        delivery.check_webhook_url(url, WebhookPolicy.from_settings(state.settings))  # resolves: no transaction
        with transaction(state.sessionmaker) as session:
            delivery.set_webhook(session, payer, url=url, secret=secret, now=utcnow())

    try:
        await anyio.to_thread.run_sync(change)
    except EzlaError as exc:
        # Only the code travels in the URL (no text of ours can be forged into the page by a link).
        return Redirect(f"/web/employer?{urlencode({'webhook_error': exc.code})}#webhook", status_code=303)
    return Redirect("/web/employer#webhook", status_code=303)


_CSV_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """No spreadsheet formula injection through a name typed in a clinic."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_CSV_UNSAFE) else text


@get("/web/employer/export.csv", sync_to_thread=True, include_in_schema=False)
def employer_export(request: Req, state: State) -> Response[Any]:
    who = signed_in(request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    params = {k: request.query_params.get(k) for k in ("status", "pesel", "from", "to", "new")}
    flt = _inbox_filter(params)
    with reading(state.sessionmaker) as session:
        lines = inbox.employer_export(session, _payer(who), flt)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        ["seria", "numer", "status", "data_wystawienia", "od", "do", "dni", "pesel", "paszport", "imie", "nazwisko",
         "kody", "opieka_nad", "doreczone", "potwierdzone"]
    )  # fmt: skip
    for line in lines:
        doc = line.ezla["document"]
        patient, period = doc["patient"], doc["incapacity"]
        passport = patient.get("passport") or {}
        care = doc.get("family_member_care")
        writer.writerow(
            [_cell(v) for v in (
                line.ezla["series"], line.ezla["number"], line.event, doc["issue_date"], period["from"], period["to"],
                fmt.day_count(period["from"], period["to"]), patient.get("pesel") or "",
                f"{passport.get('country', '')} {passport.get('number', '')}".strip(), patient["given_name"],
                patient["family_name"], "".join(doc.get("codes", [])), care["relationship"] if care else "",
                fmt.pl_time(line.delivered_at), "tak" if line.acknowledged else "nie",
            )]
        )  # fmt: skip
    name = f"e-zla-{local_date(utcnow()).isoformat()}.csv"
    # The BOM makes spreadsheet programs read UTF-8 (Polish letters).
    return _attachment("\ufeff" + out.getvalue(), "text/csv; charset=utf-8", name)


@get("/web/employer/ezla/{ezla_id:str}", sync_to_thread=True, include_in_schema=False)
def employer_detail(request: Req, state: State, ezla_id: str) -> Response[Any]:
    who = signed_in(request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    with reading(state.sessionmaker) as session:
        line = inbox.employer_line(session, _payer(who), ezla_id)
        code = _code(session, line)
    if line is None:
        return render(request, "notice.html", who, home="/web/employer", message=None, missing=True)
    return render(request, "detail.html", who, line=line, code=code, back="/web/employer", employer=True)


def _code(session: Any, line: inbox.InboxLine | None) -> str | None:
    """The printout code of an e-ZLA shown on a detail page (None before any key exists)."""
    if line is None:
        return None
    key = printouts.printout_key(session)
    if key is None:
        return None
    return printouts.printout_code(
        key, series=line.ezla["series"], number=int(line.ezla["number"]), ezla_id=line.ezla_id
    )


def _printout(request: Req, state: State, line: inbox.InboxLine | None, code: str | None) -> Response[Any]:
    if line is None or code is None:
        return render(request, "notice.html", None, home="/web", message=None, missing=True)
    pdf = printout_pdf(
        line.ezla,
        code=code,
        public_url=state.settings.public_url,
        lang=language(request),
        printed_at=fmt.pl_time(utcnow()),
    )
    return _attachment(pdf, "application/pdf", f"e-ZLA-{line.ezla['series']}{line.ezla['number']}.pdf")


@get("/web/employer/ezla/{ezla_id:str}/printout.pdf", sync_to_thread=True, include_in_schema=False)
def employer_printout(request: Req, state: State, ezla_id: str) -> Response[Any]:
    who = signed_in(request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    with reading(state.sessionmaker) as session:
        line = inbox.employer_line(session, _payer(who), ezla_id)
        code = _code(session, line)
    return _printout(request, state, line, code)


@get("/web/employer/ezla/{ezla_id:str}/payer-copy.xml", sync_to_thread=True, include_in_schema=False)
def employer_xml(request: Req, state: State, ezla_id: str) -> Response[Any]:
    """The payer's copy sealed by the service: no diagnosis, verifiable (issuance.payer_copy)."""
    who = signed_in(request, Role.EMPLOYER)
    if not isinstance(who, Principal):
        return who
    try:
        with reading(state.sessionmaker) as session:
            view = issuance.get_for_payer(session, EzlaId(ezla_id), payer=_payer(who))
    except EzlaError:
        return render(request, "notice.html", who, home="/web/employer", missing=True)
    body = seal_payer_copy(view, state.ca_context().keys, now=utcnow())
    return _attachment(body, "application/xml", f"e-ZLA-{view.series}{view.number:07d}-payer.xml")


# --- patient ------------------------------------------------------------------------------------


@get("/web/patient", sync_to_thread=True, include_in_schema=False)
def patient_page(request: Req, state: State) -> Response[Any]:
    who = signed_in(request, Role.PATIENT)
    if not isinstance(who, Principal):
        return who
    assert who.pesel is not None
    with reading(state.sessionmaker) as session:
        lines = inbox.patient_lines(session, who.pesel)
    return render(request, "patient.html", who, lines=lines)


@get("/web/patient/ezla/{ezla_id:str}", sync_to_thread=True, include_in_schema=False)
def patient_detail(request: Req, state: State, ezla_id: str) -> Response[Any]:
    who = signed_in(request, Role.PATIENT)
    if not isinstance(who, Principal):
        return who
    assert who.pesel is not None
    with reading(state.sessionmaker) as session:
        line = next((x for x in inbox.patient_lines(session, who.pesel) if x.ezla_id == ezla_id), None)
        code = _code(session, line)
    if line is None:
        return render(request, "notice.html", who, home="/web/patient", message=None, missing=True)
    return render(request, "detail.html", who, line=line, code=code, back="/web/patient", employer=False)


@get("/web/patient/ezla/{ezla_id:str}/printout.pdf", sync_to_thread=True, include_in_schema=False)
def patient_printout(request: Req, state: State, ezla_id: str) -> Response[Any]:
    who = signed_in(request, Role.PATIENT)
    if not isinstance(who, Principal):
        return who
    assert who.pesel is not None
    with reading(state.sessionmaker) as session:
        line = next((x for x in inbox.patient_lines(session, who.pesel) if x.ezla_id == ezla_id), None)
        code = _code(session, line)
    return _printout(request, state, line, code)


@get("/web/patient/ezla/{ezla_id:str}/signed.xml", sync_to_thread=True, include_in_schema=False)
def patient_xml(request: Req, state: State, ezla_id: str) -> Response[Any]:
    """The patient's own e-ZLA as the doctor signed it (diagnosis included: it is theirs)."""
    who = signed_in(request, Role.PATIENT)
    if not isinstance(who, Principal):
        return who
    try:
        with reading(state.sessionmaker) as session:
            view = issuance.get(session, EzlaId(ezla_id))
    except EzlaError:
        view = None
    if view is None or view.patient_pesel != who.pesel:
        return render(request, "notice.html", who, home="/web/patient", missing=True)
    return _attachment(view.signed_xml, "application/xml", f"e-ZLA-{view.series}{view.number:07d}.xml")


# --- doctor -------------------------------------------------------------------------------------


@get("/web/doctor", sync_to_thread=True, include_in_schema=False)
def doctor_page(request: Req, state: State, after: str | None = None) -> Response[Any]:
    who = signed_in(request, Role.DOCTOR)
    if not isinstance(who, Principal):
        return who
    assert who.npwz is not None
    with reading(state.sessionmaker) as session:
        page = lists.doctor_ezla(session, who.npwz, after=after or None, limit=25)
        record = ca.doctor_record(session, who.npwz)
    pending = [d for d in drafts.listing(state.sessionmaker, who) if d.submitted_ezla_id is None]
    return render(request, "doctor.html", who, page=page, record=record, drafts=pending, now=utcnow())


# --- anyone holding a printout ------------------------------------------------------------------


@get("/verify", sync_to_thread=True, include_in_schema=False, opt=bucket("lookup"))
def verify_printout(request: Req, state: State, number: str | None = None, code: str | None = None) -> Response[Any]:
    """Public: the number and the code from the paper; rate-limited per client (bucket ``lookup``)."""
    if not number and not code:
        return render(request, "verify.html", number="", code="", result=None, asked=False, error=None)
    result, error = None, None
    try:
        with reading(state.sessionmaker) as session:
            key = printouts.printout_key(session)
            if key is not None:
                result = printouts.check_printout(session, key, number or "", code or "")
    except EzlaError as exc:
        error = exc
    page = render(request, "verify.html", number=number or "", code=code or "", result=result, asked=True, error=error)
    if error is not None:
        page.status_code = 400
    elif result is None:
        page.status_code = 404
    return page


@get("/employer", include_in_schema=False, sync_to_thread=False)
def old_employer_page() -> Redirect:
    return Redirect("/web/employer", status_code=301)


@get("/patient", include_in_schema=False, sync_to_thread=False)
def old_patient_page() -> Redirect:
    return Redirect("/web/patient", status_code=301)


@get("/web/app.css", include_in_schema=False, sync_to_thread=False)
def app_css() -> Response[str]:
    css = (files("ezla.web") / "app.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css; charset=utf-8", headers={**HEADERS, "Cache-Control": "max-age=3600"})


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False, status_code=204)
def favicon() -> None:
    """No icon; answering 204 keeps browsers from logging a 404 on every page."""


ROUTES = [
    web_home,
    sign_in_form,
    sign_in,
    sign_out,
    switch_language,
    employer_page,
    employer_ack,
    employer_webhook,
    employer_export,
    employer_detail,
    employer_printout,
    employer_xml,
    patient_page,
    patient_detail,
    patient_printout,
    patient_xml,
    doctor_page,
    verify_printout,
    old_employer_page,
    old_patient_page,
    app_css,
    favicon,
]

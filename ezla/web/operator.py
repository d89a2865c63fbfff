"""The operator's pages: doctors and their certificates (register, new activation code, revoke,
lineage), the CRL's age, dead deliveries with retry, and accounts with their tokens. Every change
is a CSRF-guarded form that goes through the same services as the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect

from ezla.auth.service import Principal, Role, create_account, list_accounts, revoke_account
from ezla.ca import service as ca
from ezla.ca.crl import REASONS
from ezla.db import reading, transaction, utcnow
from ezla.distribution import outbox
from ezla.distribution import service as delivery
from ezla.errors import BadRequest, EzlaError
from ezla.identifiers import nip_valid, pesel_valid
from ezla.web.base import Req, form_ok, render, signed_in
from ezla.web.session import language
from ezla.web.texts import TEXTS

ACCOUNT_ROLES = ("operator", "employer", "patient", "assistant")


def _overview(state: State, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    with reading(state.sessionmaker) as session:
        crl = ca.latest_crl(session)
        doctors = ca.list_doctors(session, now=now)
        accounts = list_accounts(session, now=now)
        dead = delivery.deliveries(session, status="dead", limit=50)
    age = (now - crl.this_update) if crl else None
    return {
        "crl": crl,
        "crl_age_hours": round(age.total_seconds() / 3600, 1) if age is not None else None,
        "doctors": doctors,
        "accounts": accounts,
        "dead": dead,
        "reasons": REASONS,
        "roles": ACCOUNT_ROLES,
        **extra,
    }


@get("/web/operator", sync_to_thread=True, include_in_schema=False)
def operator_page(request: Req, state: State) -> Response[Any]:
    who = signed_in(request, Role.OPERATOR)
    if not isinstance(who, Principal):
        return who
    return render(request, "operator.html", who, **_overview(state))


async def _form(request: Req) -> tuple[Principal | Response[Any], Any]:
    """The signed-in operator and the form, or where to go instead (sign-in, or the CSRF notice)."""
    form = await request.form()
    who = await anyio.to_thread.run_sync(signed_in, request, Role.OPERATOR)
    if isinstance(who, Principal) and not form_ok(request, form):
        return render(request, "notice.html", who, home="/web/operator", message=TEXTS[language(request)]["csrf"]), form
    return who, form


async def _then(request: Req, who: Principal, action: Callable[[], None], back: str) -> Response[Any]:
    """Run a change; back to ``back`` when it is done, or a notice saying why it was not."""
    try:
        await anyio.to_thread.run_sync(action)
    except EzlaError as exc:
        return render(request, "notice.html", who, home=back, message=exc.detail)
    return Redirect(back, status_code=303)


def _field(form: Any, name: str) -> str:
    return str(form.get(name, "")).strip()


@post("/web/operator/doctors", include_in_schema=False, status_code=200)
async def register_doctor(request: Req, state: State) -> Response[Any]:
    who, form = await _form(request)
    if not isinstance(who, Principal):
        return who

    def run() -> dict[str, Any]:
        try:
            with transaction(state.sessionmaker) as session:
                reg = ca.register_doctor(
                    session,
                    npwz=_field(form, "npwz"),
                    pesel=_field(form, "pesel"),
                    given_name=_field(form, "given_name"),
                    family_name=_field(form, "family_name"),
                    ttl=timedelta(hours=state.settings.activation_code_ttl_hours),
                    now=utcnow(),
                )
            return _overview(state, shown={"npwz": reg.npwz, "activation_code": reg.activation_code})
        except EzlaError as exc:
            return _overview(state, error=exc)

    return render(request, "operator.html", who, **await anyio.to_thread.run_sync(run))


@get("/web/operator/doctors/{npwz:str}", sync_to_thread=True, include_in_schema=False)
def doctor_detail(request: Req, state: State, npwz: str) -> Response[Any]:
    who = signed_in(request, Role.OPERATOR)
    if not isinstance(who, Principal):
        return who
    try:
        with reading(state.sessionmaker) as session:
            record = ca.doctor_record(session, npwz)
    except EzlaError:
        return render(request, "notice.html", who, home="/web/operator", missing=True)
    return render(request, "operator_doctor.html", who, record=record, reasons=REASONS, now=utcnow())


@post("/web/operator/doctors/{npwz:str}/code", include_in_schema=False, status_code=200)
async def new_code(request: Req, state: State, npwz: str) -> Response[Any]:
    who, _ = await _form(request)
    if not isinstance(who, Principal):
        return who

    def run() -> dict[str, Any]:
        try:
            with transaction(state.sessionmaker) as session:
                reg = ca.new_activation_code(
                    session, npwz, ttl=timedelta(hours=state.settings.activation_code_ttl_hours), now=utcnow()
                )
            return _overview(state, shown={"npwz": reg.npwz, "activation_code": reg.activation_code})
        except EzlaError as exc:
            return _overview(state, error=exc)

    return render(request, "operator.html", who, **await anyio.to_thread.run_sync(run))


@post("/web/operator/certificates/{serial:str}/revoke", include_in_schema=False, status_code=303)
async def revoke_certificate(request: Req, state: State, serial: str) -> Response[Any]:
    who, form = await _form(request)
    if not isinstance(who, Principal):
        return who
    reason = _field(form, "reason")

    def run() -> None:
        with transaction(state.sessionmaker) as session:
            ca.revoke(session, serial, reason=reason, now=utcnow(), by="operator")
        ca.publish_crls(state.sessionmaker, state.ca_context(), now=utcnow())  # as the API does

    npwz = _field(form, "npwz")
    back = f"/web/operator/doctors/{npwz}" if npwz.isdigit() else "/web/operator"
    return await _then(request, who, run, back)


@post("/web/operator/accounts", include_in_schema=False, status_code=200)
async def add_account(request: Req, state: State) -> Response[Any]:
    who, form = await _form(request)
    if not isinstance(who, Principal):
        return who
    role, nip, pesel, label = (_field(form, k) or None for k in ("role", "nip", "pesel", "label"))

    def run() -> dict[str, Any]:
        try:
            if role not in ACCOUNT_ROLES:
                raise BadRequest("choose a role", field="role")
            if nip is not None and not nip_valid(nip):
                raise BadRequest("NIP fails its check digit", field="nip")
            if pesel is not None and not pesel_valid(pesel):
                raise BadRequest("PESEL fails its check digit", field="pesel")
            with transaction(state.sessionmaker) as session:
                account, token = create_account(session, Role(role), now=utcnow(), nip=nip, pesel=pesel, label=label)
                account_id = account.id
            return _overview(state, shown={"account": account_id, "role": role, "token": token})
        except EzlaError as exc:
            return _overview(state, error=exc)

    page = render(request, "operator.html", who, **await anyio.to_thread.run_sync(run))
    page.headers["Cache-Control"] = "no-store"  # the token is on this page, once
    return page


@post("/web/operator/accounts/{account_id:int}/revoke", include_in_schema=False, status_code=303)
async def revoke_token(request: Req, state: State, account_id: int) -> Response[Any]:
    who, _ = await _form(request)
    if not isinstance(who, Principal):
        return who

    def run() -> None:
        with transaction(state.sessionmaker) as session:
            revoke_account(session, account_id, now=utcnow(), by=f"operator:{who.account_id}")

    return await _then(request, who, run, "/web/operator#accounts")


@post("/web/operator/deliveries/retry", include_in_schema=False, status_code=303)
async def retry_deliveries(request: Req, state: State) -> Response[Any]:
    who, form = await _form(request)
    if not isinstance(who, Principal):
        return who
    one = _field(form, "delivery_id")

    def run() -> None:
        with transaction(state.sessionmaker) as session:
            outbox.retry_dead(session, now=utcnow(), delivery_id=int(one) if one.isdigit() and len(one) < 18 else None)

    await anyio.to_thread.run_sync(run)
    state.outbox_committed()
    return Redirect("/web/operator#deliveries", status_code=303)


ROUTES = [
    operator_page,
    register_doctor,
    doctor_detail,
    new_code,
    revoke_certificate,
    add_account,
    revoke_token,
    retry_deliveries,
]

"""``ezla account add|list|revoke``: bearer tokens for operators, employers and patients.

Runs against the database directly (an operator's verb on a node); the same is served to
operators over HTTP at ``/v1/accounts``.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import click

from ezla.auth.service import AccountView, Role, create_account, list_accounts, revoke_account
from ezla.clikit import db_session, emit, fail, json_option
from ezla.db import utcnow
from ezla.errors import BadRequest, EzlaError
from ezla.identifiers import nip_valid, pesel_valid


@click.group("account")
def account() -> None:
    """Bearer tokens: create (shown once), list, revoke. Revocation takes effect at once on every node."""


@account.command("add")
@click.option("--role", type=click.Choice(["operator", "employer", "patient", "assistant"]), required=True)
@click.option("--nip", default=None, help="Employer's NIP (role employer).")
@click.option("--pesel", default=None, help="Patient's or assistant's PESEL, or a person-employer's PESEL.")
@click.option(
    "--passport", default=None, metavar="CC:NUMBER", help="A patient without a PESEL: passport country and number."
)
@click.option("--label", default=None, help="Whose token this is, for the list (e.g. 'payroll, ACME').")
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, 3 * 365),
    default=None,
    help="Default: operator 90, employer 365, patient 90.",
)
@json_option
def add(
    role: str,
    nip: str | None,
    pesel: str | None,
    passport: str | None,
    label: str | None,
    expires_in_days: int | None,
    as_json: bool,
) -> None:
    """Create an account; prints its bearer token once."""
    try:
        if nip is not None and not nip_valid(nip):
            raise BadRequest("NIP fails its check digit")
        if pesel is not None and not pesel_valid(pesel):
            raise BadRequest("PESEL fails its check digit")
        now = utcnow()
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        with db_session() as session:
            acc, token = create_account(
                session,
                Role(role),
                now=now,
                nip=nip,
                pesel=pesel,
                passport=passport,
                label=label,
                expires_at=expires_at,
            )
            acc_id, expires = acc.id, acc.expires_at
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"id": acc_id, "role": role, "token": token, "expires_at": expires}, token)


def _line(v: AccountView) -> str:
    who = v.label or v.nip or v.pesel_hint or v.npwz or ""
    state = "active" if v.active else ("revoked" if v.revoked_at else "expired")
    used = f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "never"
    expires = f"{v.expires_at:%Y-%m-%d}" if v.expires_at else "-"
    return f"{v.id:>6}  {v.role:<8}  {state:<7}  expires {expires}  last used {used}  {who}"


@account.command("list")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=None)
@click.option("--all", "include_inactive", is_flag=True, help="Include revoked and expired tokens.")
@json_option
def list_(role: str | None, include_inactive: bool, as_json: bool) -> None:
    """Accounts with role, label, expiry and last use (never the token)."""
    with db_session() as session:
        views = list_accounts(
            session, now=utcnow(), role=Role(role) if role else None, include_inactive=include_inactive
        )
    emit(
        as_json,
        {"accounts": [dataclasses.asdict(v) for v in views]},
        "\n".join(_line(v) for v in views) or "no accounts",
    )


@account.command("revoke")
@click.argument("account_id", type=int)
@json_option
def revoke(account_id: int, as_json: bool) -> None:
    """Revoke a token now (on every node: each request reads the account)."""
    try:
        with db_session() as session:
            view = revoke_account(session, account_id, now=utcnow(), by="cli")
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, dataclasses.asdict(view), f"account {view.id} revoked at {view.revoked_at:%Y-%m-%d %H:%M:%S} UTC")

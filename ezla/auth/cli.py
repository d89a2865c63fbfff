"""``ezla account``: accounts for operators, employers and patients."""

from __future__ import annotations

import click

from ezla.auth.service import Role, create_account
from ezla.clikit import db_session, emit, fail, json_option
from ezla.db import utcnow
from ezla.errors import BadRequest, EzlaError
from ezla.identifiers import nip_valid, pesel_valid


@click.command("account")
@click.argument("action", type=click.Choice(["add"]))
@click.option("--role", type=click.Choice(["operator", "employer", "patient"]), required=True)
@click.option("--nip", default=None, help="Employer's NIP (role employer).")
@click.option("--pesel", default=None, help="Patient's PESEL (role patient), or a person-employer's PESEL.")
@click.option("--label", default=None)
@json_option
def account(action: str, role: str, nip: str | None, pesel: str | None, label: str | None, as_json: bool) -> None:
    """Create an account; prints its bearer token once."""
    try:
        if nip is not None and not nip_valid(nip):
            raise BadRequest("NIP fails its check digit")
        if pesel is not None and not pesel_valid(pesel):
            raise BadRequest("PESEL fails its check digit")
        with db_session() as session:
            acc, token = create_account(session, Role(role), now=utcnow(), nip=nip, pesel=pesel, label=label)
            acc_id = acc.id
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"id": acc_id, "role": role, "token": token}, token)

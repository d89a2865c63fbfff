"""``ezla employees set|remove|family``: a payer's reports, with the payer's bearer token."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ezla.client import EzlaClient
from ezla.clikit import emit, fail, json_option, url_option
from ezla.errors import EzlaError


def _options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--token", envvar="EZLA_TOKEN", required=True, help="The payer's bearer token (or EZLA_TOKEN).")(f)
    return url_option(f)


@click.group("employees")
def employees() -> None:
    """Report whom you insure and their family members (a payer's token)."""


@employees.command("set")
@click.argument("pesel")
@click.option("--payer-name", required=True)
@click.option("--from", "valid_from", required=True, metavar="YYYY-MM-DD")
@click.option("--to", "valid_to", default=None, metavar="YYYY-MM-DD")
@_options
@json_option
def set_employee(
    pesel: str, payer_name: str, valid_from: str, valid_to: str | None, urls: str, token: str, as_json: bool
) -> None:
    """Report (or update) that you insure PESEL."""
    try:
        with EzlaClient(urls.split(","), token=token) as client:
            done = client.report_employee(pesel, payer_name=payer_name, valid_from=valid_from, valid_to=valid_to)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, done, f"{'reported' if done['created'] else 'updated'}: from {done['from']} to {done['to'] or '-'}")


@employees.command("remove")
@click.argument("pesel")
@_options
@json_option
def remove_employee(pesel: str, urls: str, token: str, as_json: bool) -> None:
    """Withdraw a reported relation (and the family reported with it)."""
    try:
        with EzlaClient(urls.split(","), token=token) as client:
            client.remove_employee(pesel)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"removed": True}, "removed")


@employees.command("family")
@click.argument("pesel")
@click.argument("members_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_options
@json_option
def set_family(pesel: str, members_file: Path, urls: str, token: str, as_json: bool) -> None:
    """Report PESEL's family members from a JSON file: a list of {given_name, family_name,
    birth_date or pesel, relationship}; replaces what was reported."""
    try:
        members = json.loads(members_file.read_text(encoding="utf-8"))
        with EzlaClient(urls.split(","), token=token) as client:
            count = client.report_family(pesel, members)
    except (EzlaError, ValueError) as exc:
        fail(as_json, exc)
    emit(as_json, {"members": count}, f"{count} family member(s) reported")

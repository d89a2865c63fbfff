"""The clinic interface from the command line: ``ezla validate``, ``ezla list``, ``ezla related``,
``ezla numbers reserve|list``, ``ezla insured payers|family``, ``ezla assistants``, ``ezla drafts``,
``ezla dictionary``, ``ezla rules``.

Doctor verbs log in with the doctor's own key (``--key/--cert`` or ``--pkcs12``), as ``cancel``
does; reference data needs no credentials. Every verb is one SDK call (``_call``) and a printout.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ezla.client import EzlaClient
from ezla.clikit import EXIT_REFUSED, emit, fail, json_option, url_option
from ezla.errors import EzlaError
from ezla.issuance.cli import load_signer, signer_options
from ezla.xades import sign_enveloped

T = TypeVar("T")


@dataclass(frozen=True)
class Login:
    """Where to go and, for a doctor's verb, with which key (``--token``: an assistant instead)."""

    urls: str
    key: Path | None = None
    cert: Path | None = None
    p12: Path | None = None
    password: str | None = None
    token: str | None = None

    @classmethod
    def anyone(cls, urls: str) -> Login:
        """No credentials at all: reference data (an empty token sends no Authorization)."""
        return cls(urls, token="")

    def signer(self) -> tuple[PrivateKeyTypes, x509.Certificate, list[x509.Certificate]]:
        return load_signer(self.key, self.cert, self.p12, self.password)

    @contextmanager
    def client(self) -> Iterator[EzlaClient]:
        """Logged in as the doctor, or with the token when one is given."""
        with EzlaClient(self.urls.split(","), token=self.token) as client:
            if self.token is None:
                k, c, _ = self.signer()
                client.doctor_login(c, k)
            yield client


def _call(as_json: bool, login: Login, call: Callable[[EzlaClient], T]) -> T:
    try:
        with login.client() as client:
            return call(client)
    except EzlaError as exc:
        fail(as_json, exc)


def _url_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return url_option(f)


def doctor_verb(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, the signer options and ``--json``, handed to the verb as ``login`` and ``as_json``."""

    @functools.wraps(f)
    def verb(
        *args: Any,
        urls: str,
        key: Path | None,
        cert: Path | None,
        p12: Path | None,
        password: str | None,
        token: str | None = None,
        **kwargs: Any,
    ) -> Any:
        return f(*args, login=Login(urls, key, cert, p12, password, token), **kwargs)

    return _url_option(signer_options(json_option(verb)))


_token_option = click.option("--token", envvar="EZLA_TOKEN", default=None, help="An assistant's token (or EZLA_TOKEN).")


@click.command("validate")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@doctor_verb
def validate(file: Path, login: Login, as_json: bool) -> None:
    """Dry-run a signed or unsigned e-ZLA or cancellation: every finding at once, nothing stored.
    Exits 0 when it would be accepted, 1 when not."""
    result = _call(as_json, login, lambda c: c.validate(file.read_bytes()))
    lines = [
        f"{'valid' if result['valid'] else 'INVALID'}: {result['kind']}, {'signed' if result['signed'] else 'unsigned'}"
    ]
    lines += [f"  {f['severity']}: {f['code']} at {f['path']}: {f['message']}" for f in result["findings"]]
    emit(as_json, result, "\n".join(lines))
    sys.exit(0 if result["valid"] else EXIT_REFUSED)


@click.command("list")
@click.option("--status", type=click.Choice(["issued", "cancelled"]), default=None)
@click.option("--from", "issued_from", default=None, metavar="YYYY-MM-DD", help="Issued on or after.")
@click.option("--to", "issued_to", default=None, metavar="YYYY-MM-DD", help="Issued on or before.")
@doctor_verb
def list_ezla(status: str | None, issued_from: str | None, issued_to: str | None, login: Login, as_json: bool) -> None:
    """Your e-ZLA, newest first (every page)."""
    items = _call(
        as_json, login, lambda c: list(c.doctor_ezla(status=status, issued_from=issued_from, issued_to=issued_to))
    )
    lines = [
        f"{i['series']} {i['number']}  {i['status']:9}  issued {i['issue_date']}  "
        f"{i['incapacity']['from']}..{i['incapacity']['to']}  {i['icd10']}  {''.join(i['codes']) or '-'}  {i['id']}"
        for i in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no e-ZLA")


@click.command("related")
@click.argument("ezla_id")
@doctor_verb
def related(ezla_id: str, login: Login, as_json: bool) -> None:
    """The same patient's e-ZLA continuing one of yours or within 60 days of it."""
    items = _call(as_json, login, lambda c: c.related(ezla_id))
    lines = [
        f"{i['series']} {i['number']}  {i['status']:9}  {i['incapacity']['from']}..{i['incapacity']['to']}  "
        f"{i['relation']} ({i['days_between']} days)  {'same' if i['same_diagnosis'] else 'other'} diagnosis  "
        f"codes {''.join(i['codes']) or '-'}"
        for i in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no related e-ZLA")


@click.group("numbers")
def numbers() -> None:
    """Numbers reserved for e-ZLA written on paper while offline."""


def _reservation_lines(reservations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['series']} {r['number']}  until {r['expires_at']}" for r in reservations)


@numbers.command("reserve")
@click.option("--count", type=click.IntRange(1, 100), required=True)
@doctor_verb
def reserve(count: int, login: Login, as_json: bool) -> None:
    """Reserve COUNT numbers; write one on each paper e-ZLA and send its electronic copy later."""
    made = _call(as_json, login, lambda c: c.reserve_numbers(count))
    emit(as_json, {"reservations": made}, _reservation_lines(made))


@numbers.command("list")
@doctor_verb
def list_numbers(login: Login, as_json: bool) -> None:
    """Your reserved numbers not yet used or expired."""
    left = _call(as_json, login, lambda c: c.reserved_numbers())
    emit(as_json, {"reservations": left}, _reservation_lines(left) or "no reserved numbers left")


@click.command("dictionary")
@click.argument("name", required=False)
@click.option("--prefix", default=None, help="Only codes starting with this (ICD-10: J06).")
@_url_option
@json_option
def dictionary(name: str | None, prefix: str | None, urls: str, as_json: bool) -> None:
    """The dictionaries (no NAME), or one: icd-10, letter-codes, relationships, indications,
    cancellation-reasons."""
    anyone = Login.anyone(urls)
    if name is None:
        index = _call(as_json, anyone, lambda c: c.dictionaries())
        lines = [f"{d['name']:22} {d['version']}  {d['title_pl']}" for d in index]
        emit(as_json, {"dictionaries": index}, "\n".join(lines))
        return
    d = _call(as_json, anyone, lambda c: c.dictionary(name, prefix))
    emit(as_json, d, "\n".join(f"{e['code']:8} {e['name_pl'] or e['name_en']}" for e in d["entries"]))


@click.command("rules")
@_url_option
@json_option
def rules(urls: str, as_json: bool) -> None:
    """Every error and warning code, with its description in Polish."""
    found = _call(as_json, Login.anyone(urls), lambda c: c.rules())
    emit(as_json, {"rules": found}, "\n".join(f"{r['code']:34} {r['severity']:7} {r['title_pl']}" for r in found))


PURPOSES = click.Choice(["issuing", "correction", "family-care"])


@click.group("insured")
def insured() -> None:
    """Look up an insured person's payers or reported family (audited: give the purpose)."""


@insured.command("payers")
@click.argument("pesel")
@click.option("--purpose", type=PURPOSES, required=True)
@click.option("--on", default=None, metavar="YYYY-MM-DD", help="Insured on this day (default today).")
@doctor_verb
def insured_payers(pesel: str, purpose: str, on: str | None, login: Login, as_json: bool) -> None:
    """The payers insuring PESEL: NIP and name, for the e-ZLA's Payer."""
    payers = _call(as_json, login, lambda c: c.insured_payers(pesel, purpose=purpose, on=on))
    lines = [f"{p['nip']}  {p['name']}  since {p['from']}" for p in payers]
    emit(as_json, {"payers": payers}, "\n".join(lines) or "no payer reported")


@insured.command("family")
@click.argument("pesel")
@click.option("--purpose", type=PURPOSES, required=True)
@doctor_verb
def insured_family(pesel: str, purpose: str, login: Login, as_json: bool) -> None:
    """The family members PESEL reported: names, date of birth, relationship."""
    members = _call(as_json, login, lambda c: c.insured_family(pesel, purpose=purpose))
    lines = [
        f"{m['given_name']} {m['family_name']}  born {m['birth_date']}  relationship {m['relationship']}"
        for m in members
    ]
    emit(as_json, {"members": members}, "\n".join(lines) or "no family member reported")


@click.group("assistants")
def assistants() -> None:
    """Authorise (by your signature), list and revoke your medical assistants."""


@assistants.command("authorise")
@click.argument("assistant_id", type=int)
@doctor_verb
def authorise(assistant_id: int, login: Login, as_json: bool) -> None:
    """Let assistant account ASSISTANT_ID prepare drafts for you."""

    def sign_and_send(client: EzlaClient) -> dict[str, Any]:
        k, c, _ = login.signer()
        return client.authorise_assistant(c, k, assistant_id)

    granted = _call(as_json, login, sign_and_send)
    emit(as_json, granted, f"assistant {assistant_id} authorised (authorisation {granted['id']})")


@assistants.command("revoke")
@click.argument("assistant_id", type=int)
@doctor_verb
def revoke_assistant(assistant_id: int, login: Login, as_json: bool) -> None:
    """Withdraw an assistant's authorisation, at once."""
    _call(as_json, login, lambda c: c.revoke_assistant(assistant_id))
    emit(as_json, {"revoked": assistant_id}, f"assistant {assistant_id} revoked")


@assistants.command("list")
@doctor_verb
def list_assistants(login: Login, as_json: bool) -> None:
    """Your assistants' authorisations."""
    items = _call(as_json, login, lambda c: c.assistants())
    lines = [
        f"{a['assistant_id']:>6}  since {a['granted_at']}  {'revoked ' + a['revoked_at'] if a['revoked_at'] else 'active'}"
        for a in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no assistants")


@click.group("drafts")
def drafts() -> None:
    """Drafts: an assistant (--token) or the doctor (--key/--cert) prepares; the doctor signs and submits."""


@drafts.command("save")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--doctor", default=None, help="The doctor's NPWZ (an assistant's drafts).")
@_token_option
@doctor_verb
def save_draft(file: Path, doctor: str | None, login: Login, as_json: bool) -> None:
    """Save an unsigned SickLeave as a draft; prints its findings."""
    saved = _call(as_json, login, lambda c: c.save_draft(file.read_bytes(), doctor=doctor))
    lines = [f"draft {saved['id']}: {'valid' if saved['valid'] else 'needs work'}"]
    lines += [f"  {f['severity']}: {f['code']} at {f['path']}" for f in saved["findings"]]
    emit(as_json, saved, "\n".join(lines))


@drafts.command("list")
@_token_option
@doctor_verb
def list_drafts(login: Login, as_json: bool) -> None:
    """Drafts you may see."""
    items = _call(as_json, login, lambda c: c.drafts())
    lines = [
        f"{d['id']}  {d['doctor_npwz']}  {'valid' if d['valid'] else 'needs work':10}  {d['updated_at']}"
        f"{'  submitted ' + d['submitted_ezla_id'] if d['submitted_ezla_id'] else ''}"
        for d in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no drafts")


@drafts.command("submit")
@click.argument("draft_id")
@doctor_verb
def submit_draft(draft_id: str, login: Login, as_json: bool) -> None:
    """The doctor fetches a draft, signs it with their key and submits it."""

    def sign_and_submit(client: EzlaClient) -> dict[str, Any]:
        k, c, chain = login.signer()
        return client.submit(sign_enveloped(client.draft_xml(draft_id), k, c, chain))

    result = _call(as_json, login, sign_and_submit)
    emit(as_json, result, f"accepted: {result['series']} {result['number']} (id {result['id']})")

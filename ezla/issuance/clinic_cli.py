"""The clinic interface from the command line: ``ezla validate``, ``ezla list``, ``ezla related``,
``ezla numbers reserve|list``, ``ezla insured payers|family``, ``ezla assistants``, ``ezla drafts``,
``ezla dictionary``, ``ezla rules``.

Doctor verbs log in with the doctor's own key (``--key/--cert`` or ``--pkcs12``), as ``cancel``
does; reference data needs no credentials.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ezla.client import EzlaClient
from ezla.clikit import emit, fail, json_option
from ezla.errors import EzlaError
from ezla.issuance.cli import URLS_HELP, load_signer, signer_options
from ezla.xades import sign_enveloped

DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def _as_doctor(
    urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None
) -> Iterator[EzlaClient]:
    k, c, _ = load_signer(key, cert, p12, password)
    with EzlaClient(urls.split(",")) as client:
        client.doctor_login(c, k)
        yield client


def _url_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("--url", "urls", default=DEFAULT_URL, show_default=True, help=URLS_HELP)(f)


@click.command("validate")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_url_option
@signer_options
@json_option
def validate(
    file: Path, urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """Dry-run a signed or unsigned e-ZLA or cancellation: every finding at once, nothing stored.
    Exits 0 when it would be accepted, 1 when not."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            result = client.validate(file.read_bytes())
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [
        f"{'valid' if result['valid'] else 'INVALID'}: {result['kind']}, {'signed' if result['signed'] else 'unsigned'}"
    ]
    lines += [f"  {f['severity']}: {f['code']} at {f['path']}: {f['message']}" for f in result["findings"]]
    emit(as_json, result, "\n".join(lines))
    sys.exit(0 if result["valid"] else 1)


@click.command("list")
@click.option("--status", type=click.Choice(["issued", "cancelled"]), default=None)
@click.option("--from", "issued_from", default=None, metavar="YYYY-MM-DD", help="Issued on or after.")
@click.option("--to", "issued_to", default=None, metavar="YYYY-MM-DD", help="Issued on or before.")
@_url_option
@signer_options
@json_option
def list_ezla(
    status: str | None,
    issued_from: str | None,
    issued_to: str | None,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Your e-ZLA, newest first (every page)."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            items = list(client.doctor_ezla(status=status, issued_from=issued_from, issued_to=issued_to))
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [
        f"{i['series']} {i['number']}  {i['status']:9}  issued {i['issue_date']}  "
        f"{i['incapacity']['from']}..{i['incapacity']['to']}  {i['icd10']}  {''.join(i['codes']) or '-'}  {i['id']}"
        for i in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no e-ZLA")


@click.command("related")
@click.argument("ezla_id")
@_url_option
@signer_options
@json_option
def related(
    ezla_id: str, urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """The same patient's e-ZLA continuing one of yours or within 60 days of it."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            items = client.related(ezla_id)
    except EzlaError as exc:
        fail(as_json, exc)
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


@numbers.command("reserve")
@click.option("--count", type=click.IntRange(1, 100), required=True)
@_url_option
@signer_options
@json_option
def reserve(
    count: int, urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """Reserve COUNT numbers; write one on each paper e-ZLA and send its electronic copy later."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            made = client.reserve_numbers(count)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(
        as_json,
        {"reservations": made},
        "\n".join(f"{r['series']} {r['number']}  until {r['expires_at']}" for r in made),
    )


@numbers.command("list")
@_url_option
@signer_options
@json_option
def list_numbers(
    urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """Your reserved numbers not yet used or expired."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            left = client.reserved_numbers()
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [f"{r['series']} {r['number']}  until {r['expires_at']}" for r in left]
    emit(as_json, {"reservations": left}, "\n".join(lines) or "no reserved numbers left")


@click.command("dictionary")
@click.argument("name", required=False)
@click.option("--prefix", default=None, help="Only codes starting with this (ICD-10: J06).")
@_url_option
@json_option
def dictionary(name: str | None, prefix: str | None, urls: str, as_json: bool) -> None:
    """The dictionaries (no NAME), or one: icd-10, letter-codes, relationships, indications,
    cancellation-reasons."""
    try:
        with EzlaClient(urls.split(",")) as client:
            if name is None:
                index = client.dictionaries()
                emit(
                    as_json,
                    {"dictionaries": index},
                    "\n".join(f"{d['name']:22} {d['version']}  {d['title_pl']}" for d in index),
                )
                return
            d = client.dictionary(name, prefix)
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [f"{e['code']:8} {e['name_pl'] or e['name_en']}" for e in d["entries"]]
    emit(as_json, d, "\n".join(lines))


@click.command("rules")
@_url_option
@json_option
def rules(urls: str, as_json: bool) -> None:
    """Every error and warning code, with its description in Polish."""
    try:
        with EzlaClient(urls.split(",")) as client:
            found = client.rules()
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"rules": found}, "\n".join(f"{r['code']:34} {r['severity']:7} {r['title_pl']}" for r in found))


PURPOSES = click.Choice(["issuing", "correction", "family-care"])


@click.group("insured")
def insured() -> None:
    """Look up an insured person's payers or reported family (audited: give the purpose)."""


@insured.command("payers")
@click.argument("pesel")
@click.option("--purpose", type=PURPOSES, required=True)
@click.option("--on", default=None, metavar="YYYY-MM-DD", help="Insured on this day (default today).")
@_url_option
@signer_options
@json_option
def insured_payers(
    pesel: str,
    purpose: str,
    on: str | None,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """The payers insuring PESEL: NIP and name, for the e-ZLA's Payer."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            payers = client.insured_payers(pesel, purpose=purpose, on=on)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(
        as_json,
        {"payers": payers},
        "\n".join(f"{p['nip']}  {p['name']}  since {p['from']}" for p in payers) or "no payer reported",
    )


@insured.command("family")
@click.argument("pesel")
@click.option("--purpose", type=PURPOSES, required=True)
@_url_option
@signer_options
@json_option
def insured_family(
    pesel: str,
    purpose: str,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """The family members PESEL reported: names, date of birth, relationship."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            members = client.insured_family(pesel, purpose=purpose)
    except EzlaError as exc:
        fail(as_json, exc)
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
@_url_option
@signer_options
@json_option
def authorise(
    assistant_id: int,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Let assistant account ASSISTANT_ID prepare drafts for you."""
    try:
        k, c, _ = load_signer(key, cert, p12, password)
        with EzlaClient(urls.split(",")) as client:
            client.doctor_login(c, k)
            granted = client.authorise_assistant(c, k, assistant_id)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, granted, f"assistant {assistant_id} authorised (authorisation {granted['id']})")


@assistants.command("revoke")
@click.argument("assistant_id", type=int)
@_url_option
@signer_options
@json_option
def revoke_assistant(
    assistant_id: int,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Withdraw an assistant's authorisation, at once."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            client.revoke_assistant(assistant_id)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"revoked": assistant_id}, f"assistant {assistant_id} revoked")


@assistants.command("list")
@_url_option
@signer_options
@json_option
def list_assistants(
    urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """Your assistants' authorisations."""
    try:
        with _as_doctor(urls, key, cert, p12, password) as client:
            items = client.assistants()
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [
        f"{a['assistant_id']:>6}  since {a['granted_at']}  {'revoked ' + a['revoked_at'] if a['revoked_at'] else 'active'}"
        for a in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no assistants")


@contextmanager
def _drafts_client(
    urls: str, token: str | None, key: Path | None, cert: Path | None, p12: Path | None, password: str | None
) -> Iterator[EzlaClient]:
    """An assistant uses its token; a doctor logs in with its key."""
    if token:
        with EzlaClient(urls.split(","), token=token) as client:
            yield client
    else:
        with _as_doctor(urls, key, cert, p12, password) as client:
            yield client


_token_option = click.option("--token", envvar="EZLA_TOKEN", default=None, help="An assistant's token (or EZLA_TOKEN).")


@click.group("drafts")
def drafts() -> None:
    """Drafts: an assistant (--token) or the doctor (--key/--cert) prepares; the doctor signs and submits."""


@drafts.command("save")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--doctor", default=None, help="The doctor's NPWZ (an assistant's drafts).")
@_token_option
@_url_option
@signer_options
@json_option
def save_draft(
    file: Path,
    doctor: str | None,
    token: str | None,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Save an unsigned SickLeave as a draft; prints its findings."""
    try:
        with _drafts_client(urls, token, key, cert, p12, password) as client:
            saved = client.save_draft(file.read_bytes(), doctor=doctor)
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [f"draft {saved['id']}: {'valid' if saved['valid'] else 'needs work'}"]
    lines += [f"  {f['severity']}: {f['code']} at {f['path']}" for f in saved["findings"]]
    emit(as_json, saved, "\n".join(lines))


@drafts.command("list")
@_token_option
@_url_option
@signer_options
@json_option
def list_drafts(
    token: str | None,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Drafts you may see."""
    try:
        with _drafts_client(urls, token, key, cert, p12, password) as client:
            items = client.drafts()
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [
        f"{d['id']}  {d['doctor_npwz']}  {'valid' if d['valid'] else 'needs work':10}  {d['updated_at']}"
        f"{'  submitted ' + d['submitted_ezla_id'] if d['submitted_ezla_id'] else ''}"
        for d in items
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no drafts")


@drafts.command("submit")
@click.argument("draft_id")
@_url_option
@signer_options
@json_option
def submit_draft(
    draft_id: str, urls: str, key: Path | None, cert: Path | None, p12: Path | None, password: str | None, as_json: bool
) -> None:
    """The doctor fetches a draft, signs it with their key and submits it."""
    try:
        k, c, chain = load_signer(key, cert, p12, password)
        with EzlaClient(urls.split(",")) as client:
            client.doctor_login(c, k)
            xml = client.draft_xml(draft_id)
            result = client.submit(sign_enveloped(xml, k, c, chain))
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, result, f"accepted: {result['series']} {result['number']} (id {result['id']})")

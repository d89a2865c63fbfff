"""``ezla sign``, ``verify``, ``submit``, ``cancel``, ``demo``."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ezla.business_time import local_date
from ezla.ca.crl import REASONS
from ezla.ca.profile import names_of, npwz_of
from ezla.client import EzlaClient
from ezla.clikit import emit, fail, json_option, read_secret, url_option
from ezla.document.codec import build_cancellation_xml, build_sick_leave_xml
from ezla.document.model import Cancellation, Incapacity
from ezla.errors import AlreadyCancelled, BadRequest, CertificateRevoked, EzlaError, NotFound
from ezla.events import DocumentId
from ezla.identifiers import Npwz
from ezla.issuance.rules import SUBMISSION_POLICY
from ezla.issuance.samples import sample_sick_leave
from ezla.xades import DOCUMENT_SIGNING_EKU, Revocation, sign_enveloped, verify_enveloped
from ezla.xades.long_term import verify_long_term
from ezla.xades.signing_time import BENIGN_REASONS


def _ask_password(what: str) -> str | None:
    """The key's password when none was given: EZLA_KEY_PASSPHRASE_FILE, then a hidden prompt when a
    person is at the terminal (a password as a flag stays in the shell history and ``ps``)."""
    file = os.environ.get("EZLA_KEY_PASSPHRASE_FILE")
    return read_secret(
        None, Path(file) if file else None, prompt=f"Password for {what}", what=f"the password for {what}"
    )


def load_signer(
    key: Path | None, cert: Path | None, p12: Path | None, password: str | None
) -> tuple[PrivateKeyTypes, x509.Certificate, list[x509.Certificate]]:
    """A key + certificate from PEM files or from a PKCS#12 (.p12/.pfx, as ZUS delivers)."""
    if p12 is not None:
        data = p12.read_bytes()
        try:
            k, c, extra = pkcs12.load_key_and_certificates(data, (password or "").encode())
        except ValueError:
            if password:
                raise BadRequest("the PKCS#12 password is wrong, or the file is damaged") from None
            k, c, extra = pkcs12.load_key_and_certificates(data, (_ask_password(p12.name) or "").encode())
        if k is None or c is None:
            raise BadRequest("the PKCS#12 holds no key and certificate")
        return k, c, list(extra)
    if key is None or cert is None:
        raise BadRequest("give --key and --cert, or --pkcs12")
    certs = x509.load_pem_x509_certificates(cert.read_bytes())
    pem = key.read_bytes()
    if password is None and b"ENCRYPTED" in pem:
        password = _ask_password(key.name)
    pk = serialization.load_pem_private_key(pem, password.encode() if password else None)
    return pk, certs[0], certs[1:]


def signer_options(f: Any) -> Any:
    for opt in reversed(
        [
            click.option("--key", type=click.Path(path_type=Path, exists=True), help="Private key (PEM)."),
            click.option("--cert", type=click.Path(path_type=Path, exists=True), help="Certificate (PEM)."),
            click.option(
                "--pkcs12", "p12", type=click.Path(path_type=Path, exists=True), help="Key and certificate (.p12)."
            ),
            click.option(
                "--password",
                envvar="EZLA_KEY_PASSPHRASE",
                default=None,
                help="Key or PKCS#12 password; better EZLA_KEY_PASSPHRASE or EZLA_KEY_PASSPHRASE_FILE, or the prompt.",
            ),
        ]
    ):
        f = opt(f)
    return f


@click.command("sign")
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@signer_options
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output file (default FILE.signed.xml).")
@json_option
def sign(
    file: Path,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Enveloped XAdES-BES over any XML document (e-ZLA, e-prescription, ...)."""

    try:
        k, c, chain = load_signer(key, cert, p12, password)
        signed = sign_enveloped(file.read_bytes(), k, c, chain)
    except EzlaError as exc:
        fail(as_json, exc)
    out = out or file.with_suffix(".signed.xml")
    out.write_bytes(signed)
    emit(as_json, {"signed": str(out), "signer_serial": format(c.serial_number, "x")}, f"signed: {out}")


@click.command("verify")
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@click.option("--chain", type=click.Path(path_type=Path, exists=True), help="Trusted chain PEM (issuing + root).")
@click.option("--crl", type=click.Path(path_type=Path, exists=True), help="CRL (DER or PEM) to check revocation.")
@click.option("--url", default=None, help="Fetch chain and CRL from this node first, then verify offline.")
@click.option(
    "--at",
    "at_",
    default=None,
    help="Time of receipt to judge at (ISO 8601; default now), e.g. the receipt's AcceptedAt; for an "
    "XAdES-LT document, when the validation happens (any time after its time-stamp).",
)
@click.option("--report", "with_report", is_flag=True, help="Print the validation report (ETSI TS 119 102-2 style).")
@json_option
def verify(
    file: Path,
    chain: Path | None,
    crl: Path | None,
    url: str | None,
    at_: str | None,
    with_report: bool,
    as_json: bool,
) -> None:
    """Verify an enveloped XAdES-BES/-T offline against the ezla chain and CRL, or an XAdES-LT
    (the registry's archive form) from its own time-stamp and OCSP evidence at --at."""

    try:
        at = datetime.fromisoformat(at_) if at_ else datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        roots, inter, revoked, crl_checked = _trust_material(url, chain, crl, at)
        document = file.read_bytes()
        if b"EncapsulatedOCSPValue" in document:
            # XAdES-LT (the registry's archive form): judged from its own evidence, no CRL needed;
            # --at is when the validation happens, years after the doctor's certificate expired.
            result = verify_long_term(
                document, trust_roots=roots, intermediates=inter, at=at, require_eku=DOCUMENT_SIGNING_EKU
            )
            # A CRL still counts for a compromise dated before the time-stamp: the evidence shows
            # the status then, not a compromise discovered and backdated since.
            entry = revoked.get((result.signer.issuer.public_bytes(), result.signer.serial_number))
            existed = result.existed_at
            if entry is not None and entry.reason not in BENIGN_REASONS and existed and entry.at <= existed:
                raise CertificateRevoked(f"the CRL dates a {entry.reason or 'compromise'} before the time-stamp")
        else:
            result = verify_enveloped(
                document,
                trust_roots=roots,
                intermediates=inter,
                at=at,
                # Judged as at receipt (--at): what was signed before a benign revocation stays valid.
                revocation_of=lambda c: revoked.get((c.issuer.public_bytes(), c.serial_number)),
                require_eku=DOCUMENT_SIGNING_EKU,
                policy=SUBMISSION_POLICY,
            )
    except EzlaError as exc:
        if with_report and not as_json and "report" in exc.extra:
            click.echo(json.dumps(exc.extra["report"], indent=2), err=True)
        fail(as_json, exc)
    except ValueError as exc:
        fail(as_json, BadRequest(str(exc)))
    data = {
        "valid": True,
        "signer": result.signer.subject.rfc4514_string(),
        "npwz": npwz_of(result.signer),
        "serial": format(result.signer.serial_number, "x"),
        "signing_time": result.signing_time.isoformat() if result.signing_time else None,
        "crl_checked": crl_checked,
        "basis": "long-term-evidence" if result.evidence.ocsp_responses else "signature",
        "existed_at": result.existed_at.isoformat() if result.existed_at else None,
        "notes": list(result.report.notes),
    }
    if with_report:
        data["report"] = result.report.as_dict()
        if not as_json:
            click.echo(json.dumps(data["report"], indent=2))
    emit(
        as_json,
        data,
        f"valid signature by {data['signer']} (serial {data['serial']}, signed {data['signing_time']})"
        + (
            f"; existed at {data['existed_at']} (time-stamp), status from the stored OCSP response"
            if data["basis"] == "long-term-evidence"
            else ("" if crl_checked else "; revocation NOT checked (no CRL)")
        ),
    )


Revoked = dict[tuple[bytes, int], Revocation]  # (issuer name DER, serial) -> revocation


def _trust_material(
    url: str | None, chain: Path | None, crl: Path | None, at: datetime
) -> tuple[list[x509.Certificate], list[x509.Certificate], Revoked, bool]:
    """(roots, intermediates, revocations, whether a CRL was read) from --url or --chain/--crl.
    With --url every issuing CA's CRL is fetched (after a rollover there is one per CA)."""
    if url:
        base = url.rstrip("/")
        chain_pem = httpx.get(f"{base}/v1/ca/chain", timeout=10).content
    elif chain:
        chain_pem = chain.read_bytes()
    else:
        raise BadRequest("give --chain (and --crl) or --url")
    certs = x509.load_pem_x509_certificates(chain_pem)
    roots = [c for c in certs if c.issuer == c.subject]
    inter = [c for c in certs if c.issuer != c.subject]
    if url:
        paths = ["/v1/ca/crl", *(f"/v1/ca/crl/{n}" for n in range(2, len(inter) + 1))]
        crls = [httpx.get(f"{base}{path}", timeout=10).content for path in paths]
    else:
        crls = [crl.read_bytes()] if crl else []
    revoked: Revoked = {}
    reason_names = {flag: name for name, flag in REASONS.items()}
    for crl_bytes in crls:
        parsed = (
            x509.load_pem_x509_crl(crl_bytes)
            if crl_bytes.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(crl_bytes)
        )
        issuer = next((i for i in inter if i.subject == parsed.issuer), None)
        if issuer is None or not parsed.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise BadRequest("a CRL is not signed by an issuing CA in the chain")
        if parsed.next_update_utc is not None and parsed.next_update_utc < at:
            raise BadRequest("the CRL is past its nextUpdate: fetch a fresh one (or use --url)")
        name = parsed.issuer.public_bytes()
        for r in parsed:
            revoked[(name, r.serial_number)] = Revocation(_compromised_since(r), _reason(r, reason_names))
    return roots, inter, revoked, bool(crls)


def _compromised_since(entry: x509.RevokedCertificate) -> datetime:
    """When the key stopped being trustworthy: the invalidity date if given, else the revocation."""
    try:
        return entry.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc
    except x509.ExtensionNotFound:
        return entry.revocation_date_utc


def _reason(entry: x509.RevokedCertificate, names: dict[x509.ReasonFlags, str]) -> str | None:
    try:
        return names.get(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason)
    except x509.ExtensionNotFound:
        return None  # no reason code: RFC 5280 treats it as unspecified


@click.command("submit")
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@url_option
@signer_options
@click.option(
    "--receipt-out",
    type=click.Path(path_type=Path),
    default=None,
    help="Save the signed receipt (needs --key/--cert or --pkcs12 to log in).",
)
@json_option
def submit(
    file: Path,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    receipt_out: Path | None,
    as_json: bool,
) -> None:
    """Submit a signed e-ZLA; idempotent, so safe to repeat."""

    try:
        with EzlaClient(urls.split(",")) as client:
            result = client.submit(file.read_bytes())
            if receipt_out is not None:
                k, c, _ = load_signer(key, cert, p12, password)
                client.doctor_login(c, k)
                receipt_out.write_bytes(client.get_bytes(f"/v1/ezla/{result['id']}/receipt", "application/xml"))
                result["receipt"] = str(receipt_out)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, result, _submitted(result))


def _submitted(result: dict[str, Any]) -> str:
    """Say what happened: a new e-ZLA, or the one this document became earlier, as it is now."""
    number = f"{result['series']} {result['number']}"
    if result.get("created", True):
        return f"accepted: {number} (id {result['id']})"
    state = "; it has since been CANCELLED" if result["status"] == "cancelled" else ""
    return f"already accepted earlier as {number} (id {result['id']}){state}"


def _ezla_id(client: EzlaClient, which: tuple[str, ...]) -> str:
    """The e-ZLA's id from what the doctor has at hand: its id, or its number as printed."""
    text = " ".join(which).strip()
    if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text.lower()):
        return text.lower()
    found = list(client.doctor_ezla(number=text, page_size=1))
    if not found:
        raise NotFound(f"you issued no e-ZLA numbered {text}")
    return str(found[0]["id"])


@click.command("cancel")
@click.argument("which", nargs=-1, required=True, metavar="NUMBER_OR_ID")
@click.option("--reason", required=True, help="Why (a code of GET /v1/dictionaries/cancellation-reasons, or words).")
@url_option
@signer_options
@json_option
def cancel(
    which: tuple[str, ...],
    reason: str,
    urls: str,
    key: Path | None,
    cert: Path | None,
    p12: Path | None,
    password: str | None,
    as_json: bool,
) -> None:
    """Cancel an e-ZLA you issued, named by its number as printed (ZA 0000123) or its id: fetches it,
    builds and signs the Cancellation, sends it."""

    try:
        k, c, chain = load_signer(key, cert, p12, password)
        npwz = npwz_of(c)
        if npwz is None:
            raise BadRequest("this certificate carries no NPWZ")
        with EzlaClient(urls.split(",")) as client:
            client.doctor_login(c, k)
            ezla_id = _ezla_id(client, which)
            current = client.get_json(f"/v1/ezla/{ezla_id}")
            if current["status"] == "cancelled":
                raise AlreadyCancelled(f"{current['series']} {current['number']} was already cancelled")
            doc = Cancellation(
                document_id=DocumentId(current["document"]["document_id"]),
                series=current["series"],
                number=current["number"],
                reason=reason,
                npwz=Npwz(npwz),
            )
            result = client.cancel(ezla_id, sign_enveloped(build_cancellation_xml(doc), k, c, chain))
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, result, f"cancelled: {result['series']} {result['number']}")


@click.group("example")
def example() -> None:
    """Valid example documents to start from (unsigned: sign them with `ezla sign`)."""


@example.command("sick-leave")
@click.option("--npwz", help="The doctor's NPWZ (or take it and the name from --cert).")
@click.option("--cert", "cert_path", type=click.Path(path_type=Path, exists=True), help="The doctor's certificate.")
@click.option("--given-name", default=None, help="The doctor's given name, as in the certificate.")
@click.option("--family-name", default=None, help="The doctor's family name, as in the certificate.")
@click.option("--days", type=click.IntRange(1, 182), default=7, show_default=True, help="Length of the leave.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="File to write (default: stdout).")
def example_sick_leave(
    npwz: str | None,
    cert_path: Path | None,
    given_name: str | None,
    family_name: str | None,
    days: int,
    out: Path | None,
) -> None:
    """An e-ZLA issued today (Warsaw) by the given doctor for the sample patient and payer, with a fresh
    DocumentId, valid against the schema and the rules."""
    if cert_path is not None:
        cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        npwz = npwz or npwz_of(cert)
        names = names_of(cert)
        if names is not None:
            given_name, family_name = given_name or names[0], family_name or names[1]
    if not npwz:
        raise click.UsageError("give --npwz or --cert")
    today = local_date(datetime.now(UTC))
    sick_leave = sample_sick_leave(
        today=today,
        npwz=npwz,
        given_name=given_name or "Anna",
        family_name=family_name or "Nowak",
        incapacity=Incapacity(start=today, end=today + timedelta(days=days - 1)),
    )
    xml = build_sick_leave_xml(sick_leave)
    if out is None:
        click.echo(xml.decode())
    else:
        out.write_bytes(xml)
        click.echo(f"wrote {out} (DocumentId {sick_leave.document_id}); sign it with: ezla sign {out} ...", err=True)

"""``ezla pki``, ``ezla doctor``, ``ezla enroll``, ``ezla audit``: operator and doctor verbs."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ezla.audit import export as audit_export
from ezla.audit import service as audit_service
from ezla.ca import keystore
from ezla.ca.ceremony import ensure_passphrase, init_pki, rollover
from ezla.ca.service import (
    CaContext,
    Registration,
    doctor_record,
    list_doctors,
    new_activation_code,
    publish_crls,
    register_doctor,
)
from ezla.ca.service import revoke as revoke_certificate
from ezla.ca.token import TokenConfig
from ezla.client import EzlaClient, enroll_with_new_key, make_csr, new_key, save_key
from ezla.clikit import db_session, db_sessions, emit, fail, json_option, read_secret, settings, url_option
from ezla.db import reading, transaction, utcnow
from ezla.errors import BadRequest, EzlaError
from ezla.settings import Settings


def _emit_registration(as_json: bool, reg: Registration) -> None:
    emit(
        as_json,
        {"npwz": reg.npwz, "activation_code": reg.activation_code, "expires_at": reg.expires_at},
        f"activation code for NPWZ {reg.npwz}: {reg.activation_code} (expires {reg.expires_at:%Y-%m-%d %H:%M} UTC)",
    )


@click.group("pki")
def pki() -> None:
    """The CA hierarchy on disk (EZLA_PKI_DIR)."""


@pki.command("init")
@click.option(
    "--pkcs11",
    "module",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Generate every CA key inside a PKCS#11 token: the module (e.g. /usr/lib/softhsm/libsofthsm2.so).",
)
@click.option("--token", "label", help="The token's label (with --pkcs11).")
@json_option
def pki_init(module: Path | None, label: str | None, as_json: bool) -> None:
    """Create root, issuing CA, OCSP responder, receipt seal, audit signer and TSA (once; idempotent).

    With --pkcs11 and --token the keys are generated in that token and never leave it, and
    EZLA_CA_KEY_PASSPHRASE (or _FILE, or a prompt) is the token's user PIN. Nodes given the
    PKI directory and the PIN then sign with the token."""

    s = settings()
    token = None
    if (module is None) != (label is None):
        fail(as_json, BadRequest("--pkcs11 and --token go together"))
    if module is not None and label is not None:
        token = TokenConfig(str(module.resolve()), label)
    try:
        if token is not None or keystore.token_config(s.pki_dir) is not None:
            pin = read_secret(s.ca_key_passphrase, None, prompt="token user PIN", what="the token's user PIN")
            passphrase = str(pin)
        else:
            passphrase = ensure_passphrase(s.ca_key_passphrase, s.passphrase_file)
        result = init_pki(s.pki_dir, passphrase, s.public_url, utcnow(), node_number=s.node_number, token=token)
        keystore.load_key(s.pki_dir, "issuing", passphrase)  # an existing PKI must open with this passphrase
    except EzlaError as exc:
        fail(as_json, exc)
    emit(
        as_json,
        {
            "created": result.created,
            "pki_dir": str(s.pki_dir),
            "root_sha256": result.root_fingerprint,
            "issuing_sha256": result.issuing_fingerprint,
        },
        f"{'created' if result.created else 'already initialised'}: {s.pki_dir}\n"
        f"root SHA-256 {result.root_fingerprint}\nissuing SHA-256 {result.issuing_fingerprint}",
    )


@pki.command("rollover")
@json_option
def pki_rollover(as_json: bool) -> None:
    """Introduce a new issuing CA ("ezla Doctors CA N+1") signed by the root, with its OCSP responder.

    New and renewed doctor certificates come from it at once (running nodes switch without a
    restart); the older CAs stay published, keep their CRLs and OCSP, and everything they issued
    verifies as before. Needs the root key: run it where the ceremony's keys are (the token or
    pki/keys), then share pki/issued with every node as after `ezla pki init`."""
    s = settings()
    try:
        if keystore.token_config(s.pki_dir) is not None:
            passphrase = str(
                read_secret(s.ca_key_passphrase, None, prompt="token user PIN", what="the token's user PIN")
            )
        else:
            passphrase = ensure_passphrase(s.ca_key_passphrase, s.passphrase_file)
        done = rollover(s.pki_dir, passphrase, s.public_url, utcnow(), node_number=s.node_number)
    except EzlaError as exc:
        fail(as_json, exc)
    emit(
        as_json,
        {"generation": done.generation, "issuing_sha256": done.issuing_fingerprint, "previous": done.previous},
        f"issuing CA {done.generation} is current (SHA-256 {done.issuing_fingerprint}); "
        f"CAs {', '.join(map(str, done.previous))} keep verifying and publishing their CRLs",
    )


@click.group("doctor")
def doctor() -> None:
    """Doctors known to the CA."""


@doctor.command("add")
@click.option("--npwz", required=True)
@click.option("--pesel", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@json_option
def doctor_add(npwz: str, pesel: str, given_name: str, family_name: str, as_json: bool) -> None:
    """Register a doctor; prints a one-time activation code."""

    s = settings()
    try:
        with db_session(s) as session:
            reg = register_doctor(
                session,
                npwz=npwz,
                pesel=pesel,
                given_name=given_name,
                family_name=family_name,
                ttl=timedelta(hours=s.activation_code_ttl_hours),
                now=utcnow(),
            )
    except EzlaError as exc:
        fail(as_json, exc)
    _emit_registration(as_json, reg)


@click.group("audit")
def audit() -> None:
    """The audit trail: every security-relevant event, hash-chained, with signed checkpoints."""


def _audit_certs(s: Settings, extra: tuple[Path, ...]) -> list[x509.Certificate]:
    paths = [keystore.cert_path(s.pki_dir, "audit"), *extra]
    return [x509.load_pem_x509_certificate(p.read_bytes()) for p in paths if p.exists()]


def _report(as_json: bool, report: audit_service.AuditReport) -> None:
    emit(
        as_json,
        {
            "ok": report.ok,
            "events": report.events,
            "checkpoints": report.checkpoints,
            "unsigned_tail": report.unsigned_tail,
            "first_broken": report.first_broken,
            "problems": list(report.problems),
        },
        f"{report.events} events, {report.checkpoints} signed checkpoints, chain "
        + ("intact" if report.ok else f"BROKEN at row {report.first_broken}")
        + (f" ({report.unsigned_tail} newest rows not yet signed)" if report.unsigned_tail else "")
        + "".join(f"\n  {p}" for p in report.problems),
    )
    if not report.ok:
        raise SystemExit(1)


@audit.command("verify")
@click.option(
    "--file",
    "export_file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Verify an export (ezla audit export) offline instead of the database.",
)
@click.option(
    "--cert",
    "certs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Audit certificate(s) to check checkpoints with (default: the PKI's audit.pem).",
)
@json_option
def audit_verify(export_file: Path | None, certs: tuple[Path, ...], as_json: bool) -> None:
    """Check every link and every signed checkpoint; exit 1 naming the first broken row."""
    s = settings()
    audit_certs = _audit_certs(s, certs)
    if export_file is not None:
        _report(as_json, audit_export.verify_export(export_file.read_text(encoding="utf-8"), audit_certs))
        return
    with db_sessions(s) as sessions:
        with transaction(sessions) as session:  # link what is pending first: it is part of the trail
            while audit_service.sequence(session):
                pass
        with reading(sessions) as session:
            report = audit_service.verify(session, audit_certs, now=utcnow())
    _report(as_json, report)


@audit.command("checkpoint")
@json_option
def audit_checkpoint(as_json: bool) -> None:
    """Sign the chain's head now with the audit key (nodes also do it every minute)."""
    s = settings()
    keys = CaContext.from_settings(s).keys
    with db_session(s) as session:
        cp = audit_service.checkpoint(session, keys.audit_key, keys.audit, now=utcnow())  # type: ignore[arg-type]
        result = {"seq": cp.seq, "hash": cp.hash} if cp is not None else {"seq": None}
    emit(as_json, result, f"signed row {cp.seq}" if cp is not None else "the newest checkpoint already covers the head")


@audit.command("export")
@click.option("--from", "first", type=click.IntRange(1), default=1, show_default=True)
@click.option("--to", "last", type=click.IntRange(1), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="File to write (default: stdout).")
def audit_export_cmd(first: int, last: int | None, out: Path | None) -> None:
    """Write rows FROM..TO as JSON lines, with the checkpoints that sign them, for offline checks."""
    with db_session() as session:
        lines = audit_export.export_lines(session, first=first, last=last)
        try:
            lines = itertools.chain([next(lines)], lines)  # the header fails early when nothing is signed yet
        except EzlaError as exc:
            fail(False, exc)
        if out is None:
            for line in lines:
                click.echo(line)
        else:
            with out.open("w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line + "\n")


@click.command("enroll")
@url_option
@click.option("--code", "activation_code", required=True, help="One-time activation code.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option(
    "--name",
    default=None,
    help="Save NAME.key, NAME.pem and NAME.chain.pem (default: the serial number, SERIAL.key.pem ...).",
)
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True)
@click.option(
    "--server-key",
    is_flag=True,
    help="Ask the server to make the key and send it in a PKCS#12 (password from --pkcs12-password-file, "
    "EZLA_PKCS12_PASSWORD, or a prompt).",
)
@click.option("--pkcs12-password-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option("--pkcs12-password", envvar="EZLA_PKCS12_PASSWORD", default=None, hidden=True)
@click.option("--key-passphrase", default=None, envvar="EZLA_KEY_PASSPHRASE", help="Encrypt the saved key.")
@json_option
def enroll(
    urls: str,
    activation_code: str,
    out_dir: Path,
    name: str | None,
    key_type: str,
    server_key: bool,
    pkcs12_password_file: Path | None,
    pkcs12_password: str | None,
    key_passphrase: str | None,
    as_json: bool,
) -> None:
    """Client side of enrollment: key + CSR here (preferred), or a server-made PKCS#12."""

    client = EzlaClient(urls.split(","))
    try:
        if server_key:
            pkcs12_password = read_secret(
                pkcs12_password, pkcs12_password_file, prompt="Password for the PKCS#12", what="a PKCS#12 password"
            )
            assert pkcs12_password is not None
            serial, p12 = client.enroll_pkcs12(activation_code, pkcs12_password)
            if not re.fullmatch(r"[0-9a-f]{1,40}", serial):  # names a file: never trust it as a path
                raise BadRequest("the server returned a malformed serial")
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{serial}.p12"
            path.write_bytes(p12)
            emit(as_json, {"serial": serial, "pkcs12": str(path)}, f"certificate {serial} saved in {path}")
            return
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise BadRequest("--name: letters, digits, '.', '_' or '-'")
        result = enroll_with_new_key(
            client, activation_code, out_dir, key_type=key_type, key_passphrase=key_passphrase, name=name
        )
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, result, f"certificate {result['serial']} saved: {result['certificate']} (key {result['key']})")


@click.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    default="unspecified",
    show_default=True,
    type=click.Choice(
        [
            "unspecified",
            "keyCompromise",
            "affiliationChanged",
            "superseded",
            "cessationOfOperation",
            "privilegeWithdrawn",
        ]
    ),
)
@click.option(
    "--compromised-at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    default=None,
    help="UTC time the key is known or suspected compromised (keyCompromise/unspecified): renewals "
    "made with it since then are revoked too. Default: since the certificate was issued.",
)
@json_option
def revoke(serial: str, reason: str, compromised_at: datetime | None, as_json: bool) -> None:
    """Revoke a certificate (operator, local database) and publish a fresh CRL."""

    s = settings()
    try:
        with db_session(s) as session:
            revoked = revoke_certificate(
                session,
                serial,
                reason=reason,
                now=utcnow(),
                by="operator",
                compromised_at=compromised_at.replace(tzinfo=UTC) if compromised_at else None,
            )
            result: dict[str, object] = {
                "serial": revoked.serial,
                "status": revoked.status,
                "reason": reason,
                "revoked_at": revoked.revoked_at,
                "lineage_revoked": list(revoked.lineage),
                "tokens_revoked": revoked.tokens_revoked,
            }
        with db_sessions(s) as sessions:
            crls = publish_crls(sessions, CaContext.from_settings(s), now=utcnow())
        result["crl_number"] = max((c.number for c in crls), default=None)
    except EzlaError as exc:
        fail(as_json, exc)
    also = f"; with its renewals {', '.join(revoked.lineage)}" if revoked.lineage else ""
    emit(as_json, result, f"revoked {result['serial']} ({reason}){also}; CRL {result['crl_number']} published")


@doctor.command("list")
@json_option
def doctor_list(as_json: bool) -> None:
    """Registered doctors with their valid certificates (up to 1000, by name)."""
    with db_session() as session:
        doctors = list_doctors(session, now=utcnow())
    lines = [
        f"{d.npwz}  {d.family_name} {d.given_name}  "
        + (f"{d.valid_certificates} valid, until {d.valid_until:%Y-%m-%d}" if d.valid_until else "no valid certificate")
        for d in doctors
    ]
    emit(as_json, {"doctors": [dataclasses.asdict(d) for d in doctors]}, "\n".join(lines) or "no doctors")


@doctor.command("show")
@click.option("--npwz", required=True)
@json_option
def doctor_show(npwz: str, as_json: bool) -> None:
    """A doctor's certificates (status, lineage) and activation codes."""
    try:
        with db_session() as session:
            record = doctor_record(session, npwz)
    except EzlaError as exc:
        fail(as_json, exc)
    lines = [f"{record.given_name} {record.family_name}, NPWZ {record.npwz}"]
    for c in record.certificates:
        renewed = f" renewed from {c.renewed_from}" if c.renewed_from else ""
        revoked = f" revoked {c.revoked_at:%Y-%m-%d %H:%M} ({c.revocation_reason})" if c.revoked_at else ""
        lines.append(f"  {c.serial}  {c.status:<7} until {c.not_after:%Y-%m-%d}{renewed}{revoked}")
    for a in record.activation_codes:
        state = "used" if a.used_at else ("locked" if a.locked else "open")
        lines.append(f"  code: {state}, expires {a.expires_at:%Y-%m-%d %H:%M}, {a.failed_attempts} wrong attempts")
    emit(as_json, dataclasses.asdict(record), "\n".join(lines))


@doctor.command("code")
@click.option("--npwz", required=True)
@json_option
def doctor_code(npwz: str, as_json: bool) -> None:
    """A fresh one-time activation code for a registered doctor (lost code, new enrollment)."""

    s = settings()
    try:
        with db_session(s) as session:
            reg = new_activation_code(session, npwz, ttl=timedelta(hours=s.activation_code_ttl_hours), now=utcnow())
    except EzlaError as exc:
        fail(as_json, exc)
    _emit_registration(as_json, reg)


@click.command("renew")
@url_option
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--cert", "cert_path", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True)
@click.option("--key-passphrase", default=None, envvar="EZLA_KEY_PASSPHRASE")
@json_option
def renew(
    urls: str, key_path: Path, cert_path: Path, out_dir: Path, key_type: str, key_passphrase: str | None, as_json: bool
) -> None:
    """Renew a certificate: a new key and CSR, the request signed with the current key."""

    try:
        current_key = serialization.load_pem_private_key(
            key_path.read_bytes(), key_passphrase.encode() if key_passphrase else None
        )
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = new_key(key_type)
        with EzlaClient(urls.split(",")) as client:
            result = client.renew(current, current_key, make_csr(key))
        serial = str(result["serial"])
        if not re.fullmatch(r"[0-9a-f]{1,40}", serial):
            raise BadRequest("the server returned a malformed serial")
        out_dir.mkdir(parents=True, exist_ok=True)
        save_key(out_dir / f"{serial}.key.pem", key, key_passphrase)
        (out_dir / f"{serial}.pem").write_text(result["certificate_pem"])
        (out_dir / f"{serial}.chain.pem").write_text(result["chain_pem"])
    except EzlaError as exc:
        fail(as_json, exc)
    except ValueError as exc:
        fail(as_json, BadRequest(f"cannot read the key or certificate: {type(exc).__name__}"))
    emit(
        as_json,
        {"serial": serial, "certificate": str(out_dir / f"{serial}.pem"), "key": str(out_dir / f"{serial}.key.pem")},
        f"renewed: certificate {serial} in {out_dir}",
    )

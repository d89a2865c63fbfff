"""``ezla demo``: a doctor, an employer, a patient and a few e-ZLA, end to end against a node."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ezla.auth.service import Role, create_account
from ezla.business_time import local_date
from ezla.ca.service import register_doctor
from ezla.client import EzlaClient, enroll_with_new_key
from ezla.clikit import db_session, emit, fail, json_option, settings, url_option
from ezla.db import utcnow
from ezla.document.codec import build_cancellation_xml, build_sick_leave_xml
from ezla.document.model import Cancellation, Incapacity
from ezla.errors import EzlaError
from ezla.identifiers import Npwz, make_npwz
from ezla.issuance.samples import sample_sick_leave
from ezla.xades import sign_enveloped

EMPLOYER_NIP = "5260250274"
PATIENT_PESEL = "44051401359"


def _fresh_npwz() -> str:
    while True:
        npwz = make_npwz(f"{secrets.randbelow(900000) + 100000:06d}")
        if npwz is not None:
            return npwz


@click.command("demo")
@url_option
@click.option("--out", type=click.Path(path_type=Path), default=Path("var/demo"), show_default=True)
@json_option
def demo(urls: str, out: Path, as_json: bool) -> None:
    """Register and enroll a doctor, create employer and patient accounts, issue three e-ZLA,
    fetch a receipt and cancel one. Needs local database access (operator) and a running node."""

    s = settings()
    npwz = _fresh_npwz()
    try:
        with db_session(s) as session:
            reg = register_doctor(
                session,
                npwz=npwz,
                pesel=PATIENT_PESEL,
                given_name="Anna",
                family_name="Nowak",
                ttl=timedelta(hours=1),
                now=utcnow(),
            )
            _, employer_token = create_account(session, Role.EMPLOYER, now=utcnow(), nip=EMPLOYER_NIP, label="demo")
            _, patient_token = create_account(session, Role.PATIENT, now=utcnow(), pesel=PATIENT_PESEL, label="demo")
        url = urls.split(",", maxsplit=1)[0]
        with EzlaClient(urls.split(",")) as client:
            files = enroll_with_new_key(client, reg.activation_code, out)

            cert = x509.load_pem_x509_certificate(Path(files["certificate"]).read_bytes())
            key = serialization.load_pem_private_key(Path(files["key"]).read_bytes(), None)
            today = local_date(datetime.now(UTC))
            issued = []
            for days, icd in ((3, "J06.9"), (7, "M54.5"), (14, "S82.0")):
                sl = sample_sick_leave(
                    today=today,
                    npwz=npwz,
                    icd10=icd,
                    incapacity=Incapacity(start=today, end=today + timedelta(days=days - 1)),
                )
                xml = sign_enveloped(build_sick_leave_xml(sl), key, cert)
                path = out / f"ezla-{sl.document_id}.signed.xml"
                path.write_bytes(xml)
                issued.append({**client.submit(xml), "document_id": sl.document_id, "file": str(path)})
            client.doctor_login(cert, key)
            receipt = out / f"receipt-{issued[0]['id']}.xml"
            receipt.write_bytes(client.get_bytes(f"/v1/ezla/{issued[0]['id']}/receipt", "application/xml"))
            last = issued[-1]
            cancellation = Cancellation(
                document_id=last["document_id"],
                series=last["series"],
                number=last["number"],
                reason="Pomyłka w okresie niezdolności",
                npwz=Npwz(npwz),
            )
            client.cancel(last["id"], sign_enveloped(build_cancellation_xml(cancellation), key, cert))
            last["status"] = "cancelled"
    except EzlaError as exc:
        fail(as_json, exc)
    summary = {
        "doctor": {"npwz": npwz, **files},
        "employer_token": employer_token,
        "patient_token": patient_token,
        "ezla": issued,
        "receipt": str(receipt),
    }
    lines = [f"doctor NPWZ {npwz}: key {files['key']}, certificate {files['certificate']}"]
    lines += [f"  e-ZLA {e['series']} {e['number']} ({e['status']}) id {e['id']}" for e in issued]
    lines += [
        f"receipt: {receipt}",
        f"employer (NIP {EMPLOYER_NIP}): curl -H 'Authorization: Bearer {employer_token}' {url}/v1/employer/ezla",
        f"patient (PESEL {PATIENT_PESEL}): curl -H 'Authorization: Bearer {patient_token}' {url}/v1/patient/ezla",
    ]
    emit(as_json, summary, "\n".join(lines))

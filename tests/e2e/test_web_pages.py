"""The pages in a real browser (Debian's Chromium driven by playwright-core): a payroll clerk signs
in and sees every e-ZLA across two pages, filters, acknowledges, downloads the CSV and opens one;
someone holding the printout checks it; a patient sees their own; each main page passes axe-core
(WCAG 2.1 A/AA, no serious findings), has no horizontal overflow at 360 px and 44 px targets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ezla.client import EzlaClient
from tests.e2e.procs import EZLA
from tests.e2e.tools import run, tool
from tests.factories import enroll_doctor_cli, signed_cancellation, signed_sick_leave

BROWSER = Path(__file__).parent / "browser"


def _account(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [EZLA, "account", "add", *args, "--json"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return str(json.loads(out.stdout)["token"])


def test_employer_and_patient_pages(single_node, tmp_path):
    tool("chromium")
    node, npm = tool("node"), tool("npm")
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        done = run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER, timeout=300)
        assert done.returncode == 0, done.stderr
    _, url, env = single_node
    doctor = enroll_doctor_cli(env, url, tmp_path)
    numbers = []
    with EzlaClient([url]) as client:
        for i in range(26):  # more than one page (25) of them
            numbers.append(client.submit(signed_sick_leave(doctor, icd10="M54.5" if i else "J06.9")))
        xml = signed_sick_leave(doctor, icd10="J06.9")
        gone = client.submit(xml)
        from lxml import etree

        doc_id = etree.fromstring(xml).get("DocumentId")
        client.cancel(
            gone["id"], signed_cancellation(doctor, document_id=doc_id, series=gone["series"], number=gone["number"])
        )
    kept = numbers[-1]
    # The node in this fixture runs no worker: deliver with one here, as a node would.
    from ezla.db import make_engine, make_sessionmaker
    from ezla.distribution.channels import Channels
    from ezla.distribution.worker import Worker
    from tests.integration.distribution.conftest import drain

    engine = make_engine(f"sqlite:///{env['EZLA_VAR_DIR']}/ezla.sqlite3")
    factory = make_sessionmaker(engine)
    drain(
        Worker(factory, Channels(registry_url="http://127.0.0.1:9", registry_token="x", factory=factory), node_id="T")
    )
    engine.dispose()

    employer = _account(env, "--role", "employer", "--nip", "5260250274")
    patient = _account(env, "--role", "patient", "--pesel", "44051401359")
    operator = _account(env, "--role", "operator")
    with EzlaClient([url]) as client:
        doctor_token = client.doctor_login(doctor.cert, doctor.key)
    done = run(
        [node, "pages.mjs", url, employer, patient, operator, doctor_token, str(tmp_path)], cwd=BROWSER, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    expected = sorted(f"{e['series']} {e['number']}" for e in [*numbers, gone])
    assert seen["employerUrl"].endswith("/web/employer")
    assert seen["employer"]["first"] == 25 and sorted(seen["employer"]["all"]) == expected
    assert "M54.5" not in seen["employer"]["text"] and "J06.9" not in seen["employer"]["text"]
    assert seen["employer"]["cancelled"] == [f"{gone['series']} {gone['number']}"]
    assert seen["employer"]["newBefore"].startswith("27") and seen["employer"]["newAfter"].startswith("26")
    assert seen["employer"]["csvLines"] == 28  # the header and every e-ZLA
    assert "M54.5" not in seen["detail"]["text"] and seen["detail"]["code"]
    assert "/web/sign-in" in seen["afterSignOut"]
    assert "prawdziwe" in seen["verify"] and "Kowalski" not in seen["verify"] and "J.K." in seen["verify"]
    assert seen["patientUrl"].endswith("/web/patient") and len(seen["patient"]["numbers"]) == 27
    assert "M54.5" in seen["patient"]["text"] and kept["number"] in seen["patient"]["text"]
    assert "ANULOWANE" in seen["patient"]["text"]
    assert seen["print"] == {**seen["print"], "title": True, "printedLine": True, "formsHidden": True}
    assert "Wydrukowano" in seen["print"]["printedText"] and "Jan Kowalski" in seen["print"]["printedText"]
    assert all(not v for v in seen["axe"].values()), seen["axe"]
    assert all(width <= 360 for width in seen["narrow"].values()), seen["narrow"]
    assert all(not v for v in seen["smallTargets"].values()), seen["smallTargets"]
    assert seen["operatorUrl"].endswith("/web/operator") and "CRL" in seen["operator"]
    assert doctor.npwz in seen["operatorDoctor"]
    assert seen["doctorUrl"].endswith("/web/doctor") and seen["doctor"]["cards"] == 25  # a page of their 27
    for name in ("employer", "detail", "verify", "sign-in", "patient", "operator", "operator-doctor", "doctor"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000

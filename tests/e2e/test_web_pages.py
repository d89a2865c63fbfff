"""The employer and patient pages in a real browser (Debian's Chromium driven by playwright-core):
a person types the token, sees their e-ZLA; the employer never sees the diagnosis; print hides the form."""

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
    with EzlaClient([url]) as client:
        kept = client.submit(signed_sick_leave(doctor, icd10="M54.5"))
        xml = signed_sick_leave(doctor, icd10="J06.9")
        gone = client.submit(xml)
        from lxml import etree

        doc_id = etree.fromstring(xml).get("DocumentId")
        client.cancel(
            gone["id"], signed_cancellation(doctor, document_id=doc_id, series=gone["series"], number=gone["number"])
        )
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
    done = run([node, "pages.mjs", url, employer, patient, str(tmp_path)], cwd=BROWSER, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    assert seen["employer"]["cards"] == 2 and seen["employer"]["cancelled"] == 1
    assert "M54.5" not in seen["employer"]["text"] and "J06.9" not in seen["employer"]["text"]
    assert seen["patient"]["cards"] == 2 and "M54.5" in seen["patient"]["text"]
    assert kept["number"] in seen["patient"]["text"] and "ANULOWANE" in seen["patient"]["text"]
    assert seen["printHidesForm"] is True
    assert (tmp_path / "patient.png").stat().st_size > 10_000

"""The clinic interface from the real CLI and SDK against a running node (``make run``'s shape):
validate, reserve numbers and submit under one, list, related, dictionaries, rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ezla.business_time import local_date
from ezla.client import EzlaClient
from ezla.db import utcnow
from ezla.document.codec import build_sick_leave_xml
from ezla.document.model import ReservedNumber
from ezla.issuance.samples import sample_sick_leave
from tests.e2e.procs import EZLA
from tests.factories import enroll_doctor_cli, signed_sick_leave


def _ezla(env: dict[str, str], *args: str, ok: bool = True) -> Any:
    done = subprocess.run([EZLA, *args, "--json"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode == 0) is ok, (args, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_a_clinic_works_from_the_command_line(single_node: Any, tmp_path: Path) -> None:
    _, url, env = single_node
    doctor = enroll_doctor_cli(env, url, tmp_path)
    key, cert = doctor.write(tmp_path)
    me = ["--url", url, "--key", str(key), "--cert", str(cert)]

    draft = tmp_path / "draft.xml"
    today = local_date(utcnow())
    draft.write_bytes(build_sick_leave_xml(sample_sick_leave(today=today, npwz=doctor.npwz, icd10="J06.9")))
    assert _ezla(env, "validate", str(draft), *me)["valid"] is True
    draft.write_bytes(
        build_sick_leave_xml(sample_sick_leave(today=today, npwz=doctor.npwz, icd10="Z99.ZZZZ"), check=False)
    )
    bad = _ezla(env, "validate", str(draft), *me, ok=False)  # exit 1: the document needs fixing
    assert [f["code"] for f in bad["findings"]] == ["diagnosis-unknown"]

    (reserved,) = _ezla(env, "numbers", "reserve", "--count", "1", *me)["reservations"]
    paper = signed_sick_leave(
        doctor, reserved_number=ReservedNumber(series=reserved["series"], number=reserved["number"])
    )
    signed = tmp_path / "paper.xml"
    signed.write_bytes(paper)
    accepted = _ezla(env, "submit", str(signed), "--url", url)
    assert (accepted["series"], accepted["number"]) == (reserved["series"], reserved["number"])
    assert _ezla(env, "numbers", "list", *me)["reservations"] == []

    with EzlaClient([url]) as sdk:
        sdk.doctor_login(doctor.cert, doctor.key)
        second = sdk.submit(signed_sick_leave(doctor))
        assert [i["id"] for i in sdk.doctor_ezla(page_size=1)] == [second["id"], accepted["id"]]
        assert "document-id-used" in [f["code"] for f in sdk.validate(paper)["findings"]]
    listed = _ezla(env, "list", *me)["items"]
    assert [i["id"] for i in listed] == [second["id"], accepted["id"]]
    related = _ezla(env, "related", accepted["id"], *me)["items"]
    assert [(i["id"], i["relation"], i["same_diagnosis"]) for i in related] == [(second["id"], "overlapping", True)]

    employer = json.loads(
        subprocess.run(
            [EZLA, "account", "add", "--role", "employer", "--nip", "5260250274", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )["token"]
    as_payer = {**env, "EZLA_TOKEN": employer}
    reported = _ezla(
        as_payer, "employees", "set", "44051401359", "--payer-name", "Zakład", "--from", "2020-01-01", "--url", url
    )
    assert reported["created"] is True
    family = tmp_path / "family.json"
    family.write_text(
        json.dumps([{"given_name": "Zosia", "family_name": "Kowalska", "birth_date": "2016-03-05", "relationship": 1}])
    )
    assert _ezla(as_payer, "employees", "family", "44051401359", str(family), "--url", url)["members"] == 1
    payers = _ezla(env, "insured", "payers", "44051401359", "--purpose", "issuing", *me)["payers"]
    assert [(p["nip"], p["name"]) for p in payers] == [("5260250274", "Zakład")]
    members = _ezla(env, "insured", "family", "44051401359", "--purpose", "family-care", *me)["members"]
    assert [m["given_name"] for m in members] == ["Zosia"]

    assistant = _ezla(env, "account", "add", "--role", "assistant", "--pesel", "90051402463")
    _ezla(env, "assistants", "authorise", str(assistant["id"]), *me)
    as_assistant = {**env, "EZLA_TOKEN": assistant["token"]}
    draft.write_bytes(build_sick_leave_xml(sample_sick_leave(today=today, npwz=doctor.npwz, icd10="J10")))
    saved = _ezla(as_assistant, "drafts", "save", str(draft), "--doctor", doctor.npwz, "--url", url)
    assert saved["valid"] is True
    assert [d["id"] for d in _ezla(env, "drafts", "list", *me)["items"]] == [saved["id"]]
    from_draft = _ezla(env, "drafts", "submit", saved["id"], *me)
    assert _ezla(as_assistant, "drafts", "list", "--url", url)["items"][0]["submitted_ezla_id"] == from_draft["id"]

    letters = _ezla(env, "dictionary", "letter-codes", "--url", url)["entries"]
    assert [e["code"] for e in letters] == list("ABCDE")
    j06 = _ezla(env, "dictionary", "icd-10", "--prefix", "J06", "--url", url)["entries"]
    assert "J06.9" in [e["code"] for e in j06]
    rules = {r["code"]: r for r in _ezla(env, "rules", "--url", url)["rules"]}
    assert rules["pregnancy-code-not-female"]["title_pl"] == "Kod B (ciąża) dotyczy tylko pacjentki"

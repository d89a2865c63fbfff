"""The API reference checked by tools none of us wrote: openapi-spec-validator (the OpenAPI 3.1
schema) and schemathesis, a property-based fuzzer that generates requests from the reference and
holds every answer to it. Run against a real node, once per kind of credential, so that it gets
past the guards: no 5xx, every status code, content type, header and body as documented."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate

from ezla.client import EzlaClient
from tests.e2e.procs import EZLA
from tests.factories import enroll_doctor_cli

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def _token(env: dict[str, str], *args: str) -> str:
    made = subprocess.run(
        [EZLA, "account", "add", *args, "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["token"])


def test_the_reference_is_valid_openapi_and_the_node_keeps_to_it(single_node: Any, tmp_path: Path) -> None:
    _, url, env = single_node
    spec = httpx.get(f"{url}/schema/openapi.json", timeout=30).json()
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    ids = [
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids)), "operation ids are unique (generated clients name methods by them)"

    doctor = enroll_doctor_cli(env, url, tmp_path)
    with EzlaClient([url]) as client:
        doctor_token = client.doctor_login(doctor.cert, doctor.key)
    # The operator goes last: its run may revoke what the fuzzer finds (it follows links from
    # GET /v1/accounts to a doctor's certificates and revokes one), and with it the doctor's token.
    tokens = {
        "doctor": doctor_token,
        "patient": _token(env, "--role", "patient", "--pesel", "44051401359"),
        "employer": _token(env, "--role", "employer", "--nip", "5260250274"),
        "operator": _token(env, "--role", "operator"),
    }
    st = shutil.which("schemathesis", path=str(Path(EZLA).parent))
    assert st, "schemathesis is in the test extras"
    # One worker: hypothesis parses lambdas with ast.parse, which CPython 3.11.7 cannot run in two
    # threads at once here ("AST constructor recursion depth mismatch" from the 3.11 parser).
    for role, token in tokens.items():
        done = subprocess.run(
            [
                st, "run", f"{url}/schema/openapi.json", "--checks", CHECKS, "--max-examples", "10",
                "--workers", "1", "--seed", "20261128", "--no-color",
                "-H", f"Authorization: Bearer {token}",
                # Revoking accounts would end the run's own credentials half-way.
                "--exclude-path-regex", r"/v1/accounts/\{account_id\}",
            ],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,  # its cache: not in the checkout
        )  # fmt: skip
        assert done.returncode == 0, f"as {role}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
        assert " passed" in done.stdout and "failures" not in done.stdout.split("SUMMARY")[-1].lower().replace(
            "0 failures", ""
        )

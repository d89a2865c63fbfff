"""bench/verify_bench.py runs end to end in --quick mode and writes its JSON; timings are never asserted.

Needs node and npm, as the interop tests do: part of the bench's documents are signed with xadesjs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "verify_bench.py"
PATHS = {"ezla", "signxml", "xmlsec"}
SIGNERS = {f"{s}/{k}" for s in ("ezla-sdk", "signxml", "xadesjs-exc", "xadesjs-c14n") for k in ("ec", "rsa")}
VERSIONS = {"python", "signxml", "cryptography", "lxml", "libxml2", "xmlsec", "libxmlsec1"}


def test_quick_bench_reports_every_path_signer_and_attack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("verify_bench", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses resolve string annotations through sys.modules
    out = tmp_path / "results" / "verify.json"
    try:
        spec.loader.exec_module(bench)
        assert bench.main(["--quick", "--reps", "1", "--json", str(out)]) == 0
        corpus = set(bench.CORPUS)
    finally:
        sys.modules.pop(spec.name, None)
        sys.modules.pop("cost_attacks", None)

    report = json.loads(out.read_text())
    assert {"versions", "machine", "n", "signers", "paths", "ratios", "attacks", "notes"} <= report.keys()
    assert report["versions"].keys() >= VERSIONS
    assert report["machine"]["cpu_count"]
    assert report["n"] == 30
    assert set(report["signers"]) == SIGNERS
    assert set(report["paths"]) == PATHS
    for path in report["paths"].values():
        assert set(path["per_signer"]) == SIGNERS
        assert sum(t["documents"] for t in path["per_signer"].values()) == 30
        assert {"docs_per_s", "ms_per_doc"} <= path.keys()
    assert set(report["ratios"]) == {"ezla/signxml", "ezla/xmlsec"}

    table = report["attacks"]["table"]
    assert {row["attack"] for row in table} == corpus
    assert {(row["attack"], row["n"]) for row in table} == {(a, n) for a in corpus for n in (1_000, 10_000)}
    # Not a timing: a hostile variant that verifies would be a broken verifier, not a slow one.
    assert all(row["status"] in ("refused", "SLOW", "skipped") for row in table)
    assert report["attacks"]["oversized"]["bytes"] > 1_000_000
    assert report["attacks"]["oversized"]["status"] == "refused"
    assert report["attacks"]["baseline"]["status"] == "accepted"

    printed = capsys.readouterr().out
    assert "ratio ezla/signxml" in printed and "ratio ezla/xmlsec" in printed and "namespace_flood" in printed

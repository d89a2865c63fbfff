"""bench/verify_bench.py runs end to end (N=3); timings are printed, never asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "verify_bench.py"


def test_verify_bench_runs_with_three_documents() -> None:
    spec = importlib.util.spec_from_file_location("verify_bench", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses resolve string annotations through sys.modules
    try:
        spec.loader.exec_module(bench)
        lines: list[str] = []
        results = bench.run(3, submit=True, out=lines.append)
    finally:
        sys.modules.pop(spec.name, None)
    assert len(results) == 5
    assert all(r.count == 3 and r.seconds > 0 for r in results.values())
    report = "\n".join(lines)
    assert "signxml XAdESVerifier (x509_cert)" in report and "ratio ezla verify" in report

"""Smoke test for ``benchmarks/bench_access.py``: a tiny run end to end (three servers,
plain / authorization / authorization over TLS), every figure present and the ratios
computed from the figures shown. Nothing about speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_access.py"


def test_bench_access_runs(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "300", "--dim", "8", "--calls", "20", "--rounds", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=bench_env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(out.read_text())
    med = report["qps_median"]
    assert set(med) == {"plain", "authorization", "authorization+TLS"} and all(q > 0 for q in med.values())
    for name, q in med.items():
        assert abs(report["ratio_to_plain"][name] - q / med["plain"]) < 1e-9
        assert len(report["qps_rounds"][name]) == 2
    assert "authorization+TLS" in r.stdout

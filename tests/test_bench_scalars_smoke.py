"""Smoke test for ``benchmarks/bench_scalars.py`` at toy sizes (both systems when Milvus Lite
is installed): it runs end to end, every figure is there for every system, keeldb's with no
error, the partial updates all landed, each filter counted the same rows in both systems,
the ratios are the ones computed from the figures, and the report printed again from the
JSON equals the run's. Nothing about speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, check_peer_ratios, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_scalars.py"


def test_bench_scalars_smoke(tmp_path: Path) -> None:
    systems = peer_systems()
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--rows", "1500", "--partial-rows", "300", "--calls", "2",
           "--systems", ",".join(systems), "--workdir", str(tmp_path / "work"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    keeldb = report["systems"]["keeldb"]["metrics"]
    assert len(keeldb) == 9 and all(f["error"] is None and f["value"] > 0 for f in keeldb.values()), keeldb
    assert report["answers_agree"] is True
    assert report["systems"]["keeldb"]["counts"]["array_length"] > 0
    metrics = tuple(keeldb)
    check_peer_ratios(report, metrics, tuple(m for m in metrics if m.endswith("_ms")))
    assert "every filter counted the same rows in both systems: True" in proc.stdout
    assert printed_from_json("bench_scalars", out) == proc.stdout

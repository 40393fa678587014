"""Smoke test for ``benchmarks/bench_text_match.py`` at toy sizes (both systems when Milvus
Lite is installed): it runs end to end, every figure is there for keeldb with no error, the
index was built, every path and system counted the same rows, the ratios and speedups are
the ones computed from the figures, and the report printed again from the JSON equals the
run's. Nothing about speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, check_peer_ratios, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_text_match.py"


def test_bench_text_match_smoke(tmp_path: Path) -> None:
    systems = peer_systems()
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--rows", "1200", "--calls", "2", "--scan-calls", "1",
           "--systems", ",".join(systems), "--workdir", str(tmp_path / "work"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    keeldb = report["systems"]["keeldb"]["metrics"]
    assert len(keeldb) == 11 and all(f["error"] is None and f["value"] > 0 for f in keeldb.values()), keeldb
    assert keeldb["index_build_s"]["detail"]["indexed_segments"] == 1
    assert report["answers_agree"] is True
    counts = report["systems"]["keeldb"]["counts"]
    assert counts["text_match_1pct"] == counts["phrase_match_1pct"] == 12 and counts["text_match_10pct"] == 120
    for name, speedup in report["index_vs_scan"].items():
        assert speedup == keeldb[f"scan_{name}_ms"]["value"] / keeldb[f"{name}_ms"]["value"]
    metrics = tuple(keeldb)
    check_peer_ratios(report, metrics, tuple(m for m in metrics if m.endswith("_ms") or m == "index_build_s"))
    assert "every path and system counted the same rows: True" in proc.stdout
    assert printed_from_json("bench_text_match", out) == proc.stdout

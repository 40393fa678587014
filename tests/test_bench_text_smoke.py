"""Smoke test for ``benchmarks/bench_text.py`` (its full size, 1M documents, takes the better
part of an hour): the script end to end at ``--quick`` size -- every section, keeldb and
Milvus Lite when installed -- checking what the figures must be whatever the timings:
keeldb's BM25 top-10 equals the exact one computed by the script on every query; Milvus
Lite's agreement is measured; every QPS and rows/s figure is positive; ratios and targets
are computed from the figures shown; and the report printed again from the JSON equals the
run's. Nothing about speed is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_text.py"


def _positive(v: object) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def test_bench_text_smoke(tmp_path: Path) -> None:
    systems = peer_systems()
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--systems", ",".join(systems), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    cfg = report["config"]
    secs = report["sections"]
    assert set(secs) == {"bm25", "hybrid", "insert"}
    found = report["search_systems"]
    assert set(found) == set(systems)
    for name, e in found.items():
        assert e["ok"], (name, e.get("error"))
        assert e["build"]["rows"] == cfg["docs"] and e["build"]["complete"]
        assert e["build"]["segments"] is None or e["build"]["segments"] >= 1
        for sec in ("bm25", "hybrid"):
            for m in ("nq1", "batch"):
                assert _positive(e[sec][m]["qps"]), (name, sec, m)
            assert "answers" not in e[sec]

    bm25 = secs["bm25"]
    k = bm25["agreement"]["keeldb"]
    assert k["exact_queries"] == k["checked_queries"] == cfg["queries"], k  # exact, every query
    assert bm25["targets"]["exact"]["met"] is True
    if "milvus-lite" in systems:
        lite = bm25["agreement"]["milvus-lite"]
        assert lite["checked_queries"] == cfg["queries"] and 0.0 <= lite["overlap_at_k"] <= 1.0
        for m in ("nq1", "batch"):
            ratio = bm25["ratios"][m]
            assert ratio == found["keeldb"]["bm25"][m]["qps"] / found["milvus-lite"]["bm25"][m]["qps"]
            assert bm25["targets"][m]["met"] == (ratio >= 10)
            assert secs["hybrid"]["ratios"][m] == found["keeldb"]["hybrid"][m]["qps"] / found["milvus-lite"]["hybrid"][m]["qps"]
        assert 0.0 <= secs["hybrid"]["overlap_keeldb_milvus_lite"] <= 1.0

    ins = secs["insert"]
    for name in systems:
        for mode in ("on", "off"):
            e = ins["systems"][name][mode]
            assert e["ok"], (name, mode, e.get("error"))
            assert e["rows"] == cfg["insert_rows"] and _positive(e["rows_per_s"])
        assert ins["on_over_off"][name] == ins["systems"][name]["on"]["rows_per_s"] / ins["systems"][name]["off"]["rows_per_s"]

    assert report["machine"]["cpu_count"] and "bench_text.py" in report["command"]
    assert "BM25 full-text search" in proc.stdout and "hybrid search" in proc.stdout and "insert:" in proc.stdout
    assert printed_from_json("bench_text", out) == proc.stdout

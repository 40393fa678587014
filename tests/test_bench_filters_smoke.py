"""Smoke test for ``benchmarks/bench_filters.py`` at toy sizes: it runs end to end, every
filter answers the same through the indexes as through the scan and counts exactly its
selectivity, every filtered search hit passes its filter, the speedups are the ones computed
from the figures, and the report printed again from the JSON equals the run's. Nothing about
speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_filters.py"


def test_bench_filters_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--rows", "5000", "--dim", "8", "--calls", "2", "--ann", "HNSW,IVF_FLAT",
           "--workdir", str(tmp_path / "work"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    filters = report["filters"]
    assert len(filters) == 16 and all(f["same"] for f in filters), filters
    for f in filters:
        assert f["count"] == round(5000 * f["selectivity"])
        assert f["count_speedup"] == f["count_scan_ms"] / f["count_index_ms"]
        assert f["query_speedup"] == f["query_scan_ms"] / f["query_index_ms"]
    search = report["search"]
    assert {s["index"] for s in search} == {"HNSW", "IVF_FLAT"} and len(search) == 8
    # filtered ANN is exact in count: min(k, qualifying rows) hits, each passing the filter
    assert all(s["hits_pass_filter"] and s["hits"] == min(10, round(5000 * (s["selectivity"] or 1))) for s in search)
    assert "same answers everywhere: True; every search hit passes its filter: True" in proc.stdout
    again = subprocess.run([sys.executable, str(SCRIPT), "--print-json", str(out)], capture_output=True, text=True,
                           env=bench_env(), check=True)  # fmt: skip
    assert again.stdout == proc.stdout

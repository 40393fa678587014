"""Smoke test for ``benchmarks/bench_vectors.py`` (its full size takes the better part of an
hour): the script end to end at ``--quick`` size — every section, keeldb, raw FAISS, scipy
and Milvus Lite when installed — checking what the figures must be whatever the timings:
keeldb's sparse answers (both algorithms) and Milvus Lite's equal the scipy brute force's
exact top-k on every query; keeldb's BIN_FLAT distances equal FAISS's; recall in [0, 1];
memory figures present; ratios and targets computed from the figures shown; and the report
printed again from the JSON equal to the run's. Nothing about speed is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_vectors.py"


def _positive(v: object) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def test_bench_vectors_smoke(tmp_path: Path) -> None:
    systems = ["keeldb", "faiss", "scipy"] + [s for s in peer_systems() if s != "keeldb"]
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--systems", ",".join(systems), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    secs = report["sections"]
    assert set(secs) == {"sparse", "binary", "float16"}

    sparse = secs["sparse"]
    k = sparse["systems"]["keeldb"]
    assert k["ok"], k.get("error")
    for algo in ("DAAT_MAXSCORE", "TAAT_NAIVE"):
        a = k["algos"][algo]
        assert a["exact_queries"] == a["checked_queries"] == report["config"]["queries"], (algo, a)
        assert _positive(a["search"]["qps"])
    best = max(k["algos"][a]["search"]["qps"] for a in k["algos"])
    scipy_qps = sparse["systems"]["scipy"]["search"]["qps"]
    assert sparse["ratios"]["keeldb_over_scipy"] == best / scipy_qps
    if "milvus-lite" in systems:
        lite = sparse["systems"]["milvus-lite"]
        assert lite["ok"], lite.get("error")
        assert lite["exact_queries"] == lite["checked_queries"] >= 3  # Milvus Lite is exact too
        ratio = sparse["ratios"]["keeldb_over_milvus_lite"]
        assert ratio == best / lite["search"]["qps"]
        assert sparse["targets"]["vs_milvus_lite"]["met"] == (ratio >= 10)
    assert sparse["targets"]["exact"]["met"] is True

    binary = secs["binary"]
    kb, fb = binary["systems"]["keeldb"], binary["systems"]["faiss"]
    assert kb["ok"] and fb["ok"], (kb.get("error"), fb.get("error"))
    assert kb["distances_equal_faiss"] is True
    for m in ("nq1", "nq100"):
        # The ratio is of the timings taken beside each other (one process, alternating).
        assert binary["ratios"][m] == kb[m]["qps"] / kb["faiss_paired"][m]["qps"]
        assert _positive(fb[m]["qps"])  # FAISS alone, reported too
        assert binary["targets"][m]["met"] == (binary["ratios"][m] >= 0.8)

    f16 = secs["float16"]
    kf, ff = f16["systems"]["keeldb"], f16["systems"]["faiss"]
    assert kf["ok"] and ff["ok"], (kf.get("error"), ff.get("error"))
    for ef in report["config"]["ef"]:
        for m in ("nq1", "nq100"):
            for e in (kf, ff):
                assert 0.0 <= e["sweep"][str(ef)][m]["recall"] <= 1.0
            beside = kf["faiss_paired"][str(ef)][m]["qps"]
            assert f16["ratios"][f"ef{ef}_{m}"] == kf["sweep"][str(ef)][m]["qps"] / beside
    assert kf["sweep"][str(max(report["config"]["ef"]))]["nq1"]["recall"] >= 0.9
    mem = f16["memory"]
    assert mem["raw_bytes"] == report["config"]["dense_rows"] * report["config"]["dim"] * 2
    for name in ("FLAT", "HNSW"):
        assert mem[name]["ok"], mem[name].get("error")
        assert mem[name]["x_raw"] == mem[name]["above_baseline"] / mem["raw_bytes"]
    assert f16["targets"]["memory_flat"]["met"] == (mem["FLAT"]["x_raw"] <= 1.2)

    assert report["machine"]["cpu_count"] and "bench_vectors.py" in report["command"]
    assert "sparse:" in proc.stdout and "binary:" in proc.stdout and "float16:" in proc.stdout
    assert printed_from_json("bench_vectors", out) == proc.stdout

"""Smoke test for ``benchmarks/bench_ann.py``.

The ANN benchmark is run by hand (its full size takes hours), so without this test it would
rot silently as keeldb's index code evolves. It runs the script end to end at toy size --
3,000 x 16-d, 50 queries, every index type, keeldb and raw FAISS, plus Milvus Lite when it is
installed -- and checks the plumbing: exit code 0, and for every index and system a sweep
with recall@10 in [0, 1] and positive QPS at nq=1 and nq=100, keeldb's memory and disk
figures, and the summary. It deliberately asserts nothing about speed or about which
targets are met: timings on CI machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_util import bench_env, peer_systems

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_ann.py"
INDEXES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW")


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _check_sweep(where: str, sweep: list[dict]) -> None:
    assert sweep, f"{where}: empty sweep"
    for point in sweep:
        assert point["error"] is None, f"{where} {point['label']}: {point['error']}"
        assert 0.0 <= point["recall"] <= 1.0, f"{where} {point['label']}: {point['recall']}"
        for mode in ("nq1", "nq100"):
            m = point[mode]
            assert 0.0 <= m["recall"] <= 1.0, f"{where} {point['label']} {mode}: {m}"
            assert _positive(m["qps"]), f"{where} {point['label']} {mode}: qps {m['qps']!r}"
            assert m["queries_timed"] > 0


def test_bench_ann_smoke(tmp_path: Path) -> None:
    pytest.importorskip("faiss")  # raw FAISS is a peer, and computes the exact answers
    systems = ["keeldb", "faiss"] + [s for s in peer_systems() if s != "keeldb"]
    out = tmp_path / "results.json"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--rows", "3000",
        "--dim", "16",
        "--queries", "50",
        "--min-time", "0",        # one pass over the queries per setting
        "--point-budget", "2",
        "--ef-construction", "40",
        "--pq-nbits", "4",        # 16-centroid sub-quantizers: quick to train on 3,000 rows
        "--memory-searches", "20",
        "--systems", ",".join(systems),
        "--workdir", str(tmp_path / "work"),
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=bench_env(), check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    assert set(INDEXES) <= set(report["indexes"])
    raw = report["config"]["raw_vector_bytes"]
    assert raw == 3000 * 16 * 4
    for t in INDEXES:
        entry = report["indexes"][t]
        for system in systems:
            s = entry["systems"][system]
            if system in ("keeldb", "faiss"):
                # The system under development and the reference must both work.
                assert s["status"] == "ok", f"{t} {system}: {s.get('error')}"
            elif s["status"] != "ok":
                # A type Milvus Lite refuses is reported with its reason, not crashed on.
                assert isinstance(s["error"], str) and s["error"], f"{t} {system}: no reason"
                continue
            _check_sweep(f"{t} {system}", s["sweep"])
            assert s["build"]["build_s"] >= 0
        k = entry["systems"]["keeldb"]
        mem, disk = k["memory"], k["disk"]
        assert "error" not in mem, f"{t} keeldb memory: {mem.get('error')}"
        assert _positive(mem["rss_total_bytes"]) and _positive(mem["rss_baseline_bytes"])
        assert isinstance(mem["rss_minus_baseline_bytes"], int)
        assert (t in ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ")) == ("target" in mem)
        assert disk["total_bytes"] > 0 and disk["total_bytes_per_million"] > 0
        assert "nq1_keeldb_over_faiss" in entry["ratios"]
        assert entry["targets"]["nq1_vs_faiss"]["met"] in (True, False, None)
    summary = report["summary"]
    for mode in ("nq1", "nq100"):
        assert f"{mode}_keeldb_over_faiss" in summary["ratios"]
        assert summary["targets"][f"{mode}_vs_faiss"]["met"] in (True, False, None)
    assert report["machine"]["cpu_count"]
    assert "bench_ann.py" in report["command"]
    assert "keeldb" in proc.stdout and "At recall@10 >= 0.95" in proc.stdout  # tables printed

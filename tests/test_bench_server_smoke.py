"""Smoke test for ``benchmarks/bench_server.py``.

The server benchmark is run by hand, so without this test it would rot silently as
``keeldb serve`` evolves. It runs the script end to end with ``--quick`` (3,000 rows x 16-d,
20 queries, 2 threads) against both servers -- Milvus Lite only when it is installed -- and
checks what the figures must be whatever the timings: exit code 0, every metric present for
every system in the JSON, every index type tried in order, keeldb's FLAT search exact
(recall 1.0), a best configuration at the recall target, the concurrent run on the sizes
asked for, ratios and targets computed from the figures shown, the servers stopped, and the
report printed again from the JSON equal to the one printed by the run. It asserts nothing
about speed: timings on CI machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, check_peer_ratios, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_server.py"
METRICS = (
    "insert_rows_per_s",
    "flush_s",
    "flat_qps",
    "flat_recall",
    "best_qps",
    "best_recall",
    "concurrent_p50_ms",
    "concurrent_p99_ms",
    "concurrent_qps",
)
INDEX_TYPES = ["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "HNSW_SQ"]
SPEEDS = tuple(m for m in METRICS if "recall" not in m)
GOALS = {"insert_rows_per_s": 3.0, "flat_qps": 10.0, "best_qps": 10.0}  # the targets


def test_bench_server_smoke(tmp_path: Path) -> None:
    systems = peer_systems()
    out = tmp_path / "results.json"
    env = bench_env()
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--quick",
        "--rows", "3000",
        "--dim", "16",
        "--queries", "20",
        "--threads", "2",
        "--systems", ",".join(systems),
        "--workdir", str(tmp_path / "work"),
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    for system in systems:
        entry = report["systems"][system]
        metrics = entry["metrics"]
        for metric in METRICS:
            assert metric in metrics, f"{system} lacks {metric}"
            value, error = metrics[metric]["value"], metrics[metric]["error"]
            if system == "keeldb":
                # keeldb is the system under development: every step must succeed.
                assert error is None, f"keeldb {metric}: {error}"
            if value is not None:
                assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (
                    f"{system} {metric} = {value!r}"
                )
                if "recall" in metric:
                    assert value <= 1.0
            else:
                # A step a system cannot do is reported with a reason, not crashed on.
                assert isinstance(error, str) and error, f"{system} {metric}: no value, no reason"
        # The server was started and stopped by the script, not left behind.
        assert entry["server"]["exit_code"] is not None, f"{system} server still running?"
        assert entry["sweep"], f"{system}: no index sweep recorded"
        assert [e["index_type"] for e in entry["sweep"]] == INDEX_TYPES, entry["sweep"]
        for e in entry["sweep"]:
            if e["status"] != "ok":
                assert isinstance(e["error"], str) and e["error"], e
        if metrics["best_recall"]["value"] is not None:
            assert metrics["best_recall"]["value"] >= report["config"]["recall_target"]
            assert metrics["best_qps"]["detail"]["config"] == entry["best_config"]
    keeldb = report["systems"]["keeldb"]
    # keeldb stops cleanly on SIGTERM.
    assert keeldb["server"]["exit_code"] == 0, keeldb["server"]
    k = keeldb["metrics"]
    assert k["flat_recall"]["value"] == 1.0, "FLAT is an exact search"
    assert k["insert_rows_per_s"]["detail"]["rows"] == 3000
    conc = k["concurrent_qps"]["detail"]
    assert (conc["requested"], conc["threads"]) == (100, 2), conc
    assert conc["completed"] == sum(conc["per_thread"]) > 0, conc
    assert k["concurrent_p50_ms"]["value"] <= k["concurrent_p99_ms"]["value"]
    for metric in METRICS:
        assert metric in report["ratios"]
    check_peer_ratios(report, SPEEDS, lower=("flush_s", "concurrent_p50_ms", "concurrent_p99_ms"))
    for metric in ("flat_recall", "best_recall"):
        assert report["ratios"][metric]["value"] is None  # a quality, not a speed
    assert set(report["targets"]) == set(GOALS)
    for metric, goal in GOALS.items():
        ratio = report["ratios"][metric]["value"]
        assert report["targets"][metric]["met"] == (None if ratio is None else ratio >= goal)
    assert report["machine"]["cpu_count"]
    assert "bench_server.py" in report["command"]
    assert "keeldb" in proc.stdout  # the rich table was printed
    assert printed_from_json("bench_server", out) == proc.stdout

"""Smoke test for ``benchmarks/bench_server.py``.

The server benchmark is run by hand, so without this test it would rot silently as
``keeldb serve`` evolves. It runs the script end to end with ``--quick`` (3,000 rows x 16-d,
20 queries, 2 threads) against both servers -- Milvus Lite only when it is installed -- and
checks the plumbing: exit code 0, every metric present for every system in the JSON, the
servers stopped. It deliberately asserts nothing about speed: timings on CI machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, peer_systems

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
    keeldb = report["systems"]["keeldb"]
    # keeldb stops cleanly on SIGTERM.
    assert keeldb["server"]["exit_code"] == 0, keeldb["server"]
    for metric in METRICS:
        assert metric in report["ratios"]
    assert report["machine"]["cpu_count"]
    assert "bench_server.py" in report["command"]
    assert "keeldb" in proc.stdout  # the rich table was printed

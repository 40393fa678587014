"""Smoke test for ``benchmarks/bench_embedded.py``.

The benchmark is only run by hand, so without this test it would rot silently as keeldb's
client evolves. It runs the script end to end at toy sizes (both systems when Milvus Lite is
installed) and checks the plumbing: exit code, and every metric present for every system in
the JSON. It deliberately asserts nothing about speed -- timings on CI machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, peer_systems

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_embedded.py"
METRICS = ("insert_rows_per_s", "count_median_ms", "count_p99_ms", "reopen_s")


def test_bench_embedded_smoke(tmp_path: Path) -> None:
    systems = peer_systems()
    out = tmp_path / "results.json"
    env = bench_env()
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--rows", "3000",
        "--insert-rows", "2000",
        "--batch", "500",
        "--dim", "16",
        "--count-calls", "50",
        "--reopen-repeats", "2",  # exercises reopening a copy of the crashed data too
        "--systems", ",".join(systems),
        "--workdir", str(tmp_path / "work"),
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    for system in systems:
        metrics = report["systems"][system]["metrics"]
        for metric in METRICS:
            assert metric in metrics, f"{system} lacks {metric}"
            entry = metrics[metric]
            value, error = entry["value"], entry["error"]
            if system == "keeldb":
                # keeldb is the system under development: every step, including getting the
                # right count(*) back after the SIGKILL, must succeed.
                assert error is None, f"keeldb {metric}: {error}"
            if error is None or value is not None:
                assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (
                    f"{system} {metric} = {value!r}"
                )
            else:
                # A step Milvus Lite cannot do is reported, with a reason, not crashed on.
                assert isinstance(error, str) and error
    for metric in METRICS:
        assert metric in report["ratios"]
    assert report["machine"]["cpu_count"]
    assert "bench_embedded.py" in report["command"]

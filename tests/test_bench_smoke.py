"""Smoke test for ``benchmarks/bench_embedded.py``.

The benchmark is only run by hand, so without this test it would rot silently as keeldb's
client evolves. It runs the script end to end at toy sizes (both systems when Milvus Lite is
installed) and checks what the figures must be whatever the timings: exit code, every metric
present for every system in the JSON, each measured on the sizes asked for (the count(*)
calls, the reopen samples, each reopen finding every row, with rows in the log to replay),
ratios and targets computed from the figures shown, and the report printed again from the
JSON equal to the one printed by the run. It asserts nothing about speed -- timings on CI
machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env, check_peer_ratios, peer_systems, printed_from_json

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
    check_peer_ratios(report, METRICS, lower=("count_median_ms", "count_p99_ms", "reopen_s"))
    k = report["systems"]["keeldb"]["metrics"]
    insert = k["insert_rows_per_s"]["detail"]
    assert (insert["rows"], insert["batches"]) == (2000, 4), insert
    count = k["count_median_ms"]["detail"]
    assert (count["rows"], count["calls"], count["calls_requested"]) == (3000, 50, 50), count
    assert k["count_median_ms"]["value"] <= k["count_p99_ms"]["value"]
    reopen = k["reopen_s"]["detail"]
    assert (reopen["rows"], reopen["unflushed_rows"]) == (3000, 300), reopen
    assert reopen["log_bytes_at_crash"] > 0, "nothing in the log at the SIGKILL: no recovery tested"
    assert [s["count"] for s in reopen["samples"]] == [3000, 3000], reopen["samples"]
    median = sorted(s["reopen_s"] for s in reopen["samples"])
    assert k["reopen_s"]["value"] == (median[0] + median[1]) / 2
    targets = report["targets"]
    for metric in ("count_median_ms", "count_p99_ms"):
        assert targets[metric]["met"] == (k[metric]["value"] < 1), targets[metric]
    ratio = report["ratios"]["insert_rows_per_s"]["value"]
    assert targets["insert_rows_per_s"]["met"] == (None if ratio is None else ratio >= 3)
    assert report["machine"]["cpu_count"]
    assert "bench_embedded.py" in report["command"]
    assert printed_from_json("bench_embedded", out) == proc.stdout

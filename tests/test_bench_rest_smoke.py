"""Smoke test for ``benchmarks/bench_rest.py`` (run by hand, so it would rot silently): the
script end to end with ``--quick``, both protocols measured, the same hits from each. It
asserts nothing about speed: timings on CI machines are noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench_util import bench_env

ROOT = Path(__file__).resolve().parents[1]


def test_bench_rest_quick(tmp_path: Path) -> None:
    out = tmp_path / "rest.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_rest.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=bench_env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    figures = json.loads(out.read_text())["figures"]
    for key in ("grpc_insert_rows_per_s", "rest_insert_rows_per_s", "grpc_search_qps", "rest_search_qps"):
        assert figures[key] > 0, key
    assert figures["same_hits_of_20"] == 20
    assert "REST/gRPC" in r.stdout

"""A small `keeldb chaos` run end to end, as CI runs it: a real `keeldb serve` with an
IVF_FLAT index, real pymilvus clients (writers, searchers, a flusher and a compactor), a
SIGKILL and armed compaction crash points, and the checker's verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
ROOT = Path(__file__).resolve().parents[1]


def test_small_chaos_run_passes(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    cmd = [
        sys.executable, "-m", "keeldb.cli", "chaos",
        "--rows", "20000", "--count", "3", "--interval", "1-1.5",
        "--faults", "sigkill,crash-point", "--crash-points", "compaction.after_commit",
        "--compact-interval", "0.5", "--crash-wait", "20", "--index-type", "IVF_FLAT",
        "--seed", "3", "--out", str(out),  # seed 3: sigkill, crash-point, crash-point
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc = json.loads((out / "history.json").read_text())
    s = doc["summary"]
    assert s["violations"] == 0 and doc["violations"] == []
    assert s["faults"] == 3
    assert s["outcomes"].get("upsert/ok", 0) > 10, s["outcomes"]
    assert s["outcomes"].get("count/ok", 0) > 10, s["outcomes"]
    assert s["outcomes"].get("compact/ok", 0) > 2, s["outcomes"]
    assert s["outcomes"].get("search/ok", 0) > 10, s["outcomes"]
    assert s["index_type"] == "IVF_FLAT"
    # The compactor drove the server into the armed point each time (it died there).
    assert s["fault_kinds"].get("crash-point", 0) >= 1, s["fault_kinds"]
    assert s["crash_points"] and set(s["crash_points"]) == {"compaction.after_commit:1"}, s["crash_points"]
    assert s["crash_points_not_reached"] == []
    assert "compact" in s["availability"]["rates"]
    assert len(doc["checks"]) == 4  # after each fault, and at the end
    assert all(c["count"] is not None for c in doc["checks"])
    page = (out / "report.html").read_text()
    assert "PASS: no violations" in page and "<svg" in page and "compaction.after_commit:1" in page


def test_external_target_with_kill_and_restart_commands(tmp_path: Path) -> None:
    """`--target external`: chaos against an endpoint it did not start, killed and restarted
    with the user's own commands."""
    from keeldb.testing.ports import free_port

    port = free_port()
    data = tmp_path / "ext-data"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    serve = f"{sys.executable} -m keeldb.cli serve --data {data} --port {port}"
    pidfile = tmp_path / "server.pid"
    restart = f"sh -c '{serve} >> {tmp_path / 'ext.log'} 2>&1 & echo $! > {pidfile}'"
    kill = f"sh -c 'kill -9 $(cat {pidfile})'"
    subprocess.run(restart, shell=True, env=env, check=True)
    out = tmp_path / "chaos"
    cmd = [
        sys.executable, "-m", "keeldb.cli", "chaos", "--target", "external",
        "--uri", f"http://127.0.0.1:{port}", "--kill-cmd", kill, "--restart-cmd", restart,
        "--rows", "5000", "--count", "2", "--interval", "1-1", "--no-churn", "--out", str(out),
    ]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        doc = json.loads((out / "history.json").read_text())
        assert doc["summary"]["faults"] == 2 and doc["violations"] == []
        assert doc["summary"]["target"] == "external"
    finally:
        subprocess.run(kill, shell=True, check=False)

"""`keeldb chaos` end to end beyond the default run: every workload variant (small and
short: seconds each), a crash-point fault that arms a round of points one after another,
and a target that does not come back — a finding with history and report, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))


def chaos(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "keeldb.cli", "chaos", *args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_every_workload_variant_in_turn(tmp_path: Path) -> None:
    from keeldb.chaos.variants import VARIANTS

    out = tmp_path / "long"
    proc = chaos("--long", "--rows", "2000", "--count", "1", "--interval", "0.5-1", "--faults", "sigkill",
                 "--seed", "2", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every workload passed" in proc.stdout
    docs = {name: json.loads((out / name / "history.json").read_text()) for name in VARIANTS}
    for name, doc in docs.items():
        s = doc["summary"]
        assert s["workload"] == name and s["violations"] == 0 and s["faults"] == 1, (name, s)
        assert (out / name / "report.html").exists()
        assert set(s["reads_ok"]) == {"count", "query", "get", "page", "iterate", "search"}, (name, s["reads_ok"])
        assert s["pinned_reads_ok"] > 0, (name, s)
        assert len(doc["checks"]) == 2
    outcomes = {name: doc["summary"]["outcomes"] for name, doc in docs.items()}
    assert outcomes["insert-only"].get("insert/ok", 0) > 3, outcomes["insert-only"]
    assert not any(k.startswith(("upsert/", "delete/")) for k in outcomes["insert-only"])
    assert outcomes["upsert-only"].get("upsert/ok", 0) > 3
    assert not any(k.startswith(("insert/", "delete/")) for k in outcomes["upsert-only"])
    assert outcomes["delete-heavy"].get("delete/ok", 0) > 3
    assert docs["big-batches"]["batch_size"] == 5000 and docs["mixed"]["batch_size"] == 200
    ops = docs["big-batches"]["ops"]
    assert max(len(o["keys"]) for o in ops if o["kind"] == "upsert") == 2000  # all of the 2,000 rows


def test_a_crash_point_fault_arms_its_round_of_points_in_turn(tmp_path: Path) -> None:
    out = tmp_path / "round"
    points = "wal.after_append,flush.after_rotate,recovery.during_replay"
    proc = chaos("--rows", "3000", "--count", "1", "--interval", "1-1.5", "--faults", "crash-point",
                 "--crash-points", points, "--crash-wait", "20", "--seed", "4", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc = json.loads((out / "history.json").read_text())
    s = doc["summary"]
    assert s["fault_kinds"] == {"crash-point": 1}
    # wal.after_append lies between the records of a write: armed for an odd and an even hit.
    expected = {"wal.after_append:1", "wal.after_append:2", "flush.after_rotate:1", "recovery.during_replay:1"}
    assert sorted(s["crash_points"]) == sorted(expected), s["crash_points"]
    assert s["crash_points_not_reached"] == [], s["crash_points"]
    (fault,) = doc["faults"]
    assert fault["restarted"] is not None and fault["recovered"] > fault["restarted"]


def test_a_target_that_does_not_recover_is_a_finding(tmp_path: Path) -> None:
    """The restart command leaves the server down (a real server would have logged why):
    the run stops injecting, writes history and report, and fails with the log's last lines."""
    from keeldb.chaos.targets import free_port

    port = free_port()
    out = tmp_path / "chaos"
    out.mkdir()
    pidfile = tmp_path / "server.pid"
    serve = f"{sys.executable} -m keeldb.cli serve --data {tmp_path / 'data'} --port {port}"
    start = f"sh -c '{serve} >> {tmp_path / 'first.log'} 2>&1 & echo $! > {pidfile}'"
    kill = f"sh -c 'kill -9 $(cat {pidfile})'"
    # "Restarting" only writes what a server that cannot open its data would log.
    broken = f"sh -c 'echo \"keeldb serve: corrupt collection chaos: duplicate key 0\" >> {out / 'server.log'}'"
    subprocess.run(start, shell=True, env=ENV, check=True)
    try:
        proc = chaos("--target", "external", "--uri", f"http://127.0.0.1:{port}", "--kill-cmd", kill,
                     "--restart-cmd", broken, "--recover-timeout", "5", "--rows", "2000", "--count", "3",
                     "--interval", "1-1", "--out", str(out))  # fmt: skip
    finally:
        subprocess.run(kill, shell=True, check=False, capture_output=True)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    doc = json.loads((out / "history.json").read_text())
    (v,) = [v for v in doc["violations"] if "did not recover" in v]
    assert v.startswith("after fault 1 (sigkill): did not recover: ")
    assert "duplicate key 0" in v and "server.log" in v
    assert doc["summary"]["faults"] == 1  # no more faults after it
    assert "did not recover" in (out / "report.html").read_text()

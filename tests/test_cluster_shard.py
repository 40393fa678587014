"""Shard writers on a real etcd: racing writers, fencing after a pause, lease handover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from keeldb.cluster.etcd import Etcd
from keeldb.cluster.shard import CommitConflict, Fenced, NotWriter, ShardWriter
from tests.cluster_util import etcd_server  # noqa: F401 - pytest fixture

ROOT = Path(__file__).resolve().parents[1]


def test_two_writers_racing_for_one_shard_exactly_one_commits(etcd_server: Etcd) -> None:  # noqa: F811
    writers = [ShardWriter(etcd_server, "race", "c", 0, f"node{i}", ttl=5) for i in range(6)]
    start = threading.Barrier(len(writers))
    won: list[bool] = [False] * len(writers)
    committed: list[str] = []
    refused: list[str] = []

    def attempt(i: int) -> None:
        w = writers[i]
        start.wait()
        won[i] = w.try_acquire()
        _, base = w.read_manifest()
        try:
            w.commit(f"from {w.node}".encode(), base)  # losers try too: they must be refused
            committed.append(w.node)
        except (Fenced, CommitConflict) as e:
            refused.append(f"{w.node}: {e}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won) == 1, won
    winner = writers[won.index(True)]
    assert committed == [winner.node], (committed, refused)
    assert len(refused) == len(writers) - 1
    assert etcd_server.get(winner.manifest_key).value == f"from {winner.node}".encode()
    winner.release()


def test_racing_commits_on_one_base_exactly_one_wins(etcd_server: Etcd) -> None:  # noqa: F811
    w = ShardWriter(etcd_server, "cas", "c", 0, "n1", ttl=5)
    w.acquire(timeout=5)
    _, base = w.read_manifest()
    rev = w.commit(b"v1", base)
    with pytest.raises(CommitConflict, match="another commit won"):
        w.commit(b"v1-again", base)
    assert w.commit(b"v2", rev) > rev
    assert w.read_manifest()[0] == b"v2"
    w.release()


CHILD = """
import sys, time
from keeldb.cluster.etcd import Etcd
from keeldb.cluster.shard import Fenced, ShardWriter
w = ShardWriter(Etcd(sys.argv[1]), "pause", "c", 0, "paused-node", ttl=2)
w.acquire(timeout=10)
_, base = w.read_manifest()
print("ACQUIRED", base, flush=True)
sys.stdin.readline()
print("BELIEVES", w.believes_writer, flush=True)
try:
    w.commit(b"from the paused node", base)
    print("COMMITTED", flush=True)
except Fenced as e:
    print("FENCED", e, flush=True)
"""


def test_writer_paused_past_its_lease_cannot_commit_and_says_so(etcd_server: Etcd) -> None:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, etcd_server.endpoint],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    line = child.stdout.readline()
    assert line.startswith("ACQUIRED"), line
    os.kill(child.pid, signal.SIGSTOP)  # its keep-alive thread stops with it
    try:
        successor = ShardWriter(etcd_server, "pause", "c", 0, "successor", ttl=5)
        t0 = time.monotonic()
        successor.acquire(timeout=15)  # possible only once the paused node's lease expired
        handover = time.monotonic() - t0
        _, base = successor.read_manifest()
        successor.commit(b"from the successor", base)
    finally:
        os.kill(child.pid, signal.SIGCONT)
    child.stdin.write("go\n")
    child.stdin.flush()
    out = child.stdout.read()
    child.wait(10)
    assert "FENCED" in out and "COMMITTED" not in out, out
    assert "now held by successor" in out
    assert successor.read_manifest()[0] == b"from the successor"
    assert handover < 5, f"the shard took {handover:.1f}s to move (lease TTL 2s)"
    successor.release()


def test_a_killed_writers_shard_moves_within_its_ttl(etcd_server: Etcd) -> None:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace('"pause"', '"kill"'), etcd_server.endpoint],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().startswith("ACQUIRED")
    other = ShardWriter(etcd_server, "kill", "c", 0, "other", ttl=5)
    with pytest.raises(NotWriter, match="paused-node"):
        other.acquire(timeout=0.5)
    child.kill()
    child.wait(10)
    t0 = time.monotonic()
    other.acquire(timeout=10)
    assert time.monotonic() - t0 < 4  # TTL 2 s plus etcd's expiry granularity
    other.release()

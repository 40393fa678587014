"""SIGKILL of `keeldb serve` during concurrent upserts from several pymilvus clients.

Each client thread upserts batches of 200 over its own key range, stamping every row with
its batch number. The server is killed at a random moment, restarted on the same data
directory, and checked through the wire: count(*) exact, no key twice, every acknowledged
batch visible, the batches in flight at the kill all-or-nothing.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pymilvus = pytest.importorskip("pymilvus")

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class KeelServer:
    """`keeldb serve` on a data directory, restartable on the same port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(self.data), "--port", str(self.port)],
            env=env, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])

    def client(self, deadline: float = 20.0) -> Any:
        """A fresh pymilvus connection. Retried: gRPC shares subchannels process-wide, and
        one to the killed server may still be in reconnect backoff for a moment."""
        end = time.time() + deadline
        while True:
            try:
                return pymilvus.MilvusClient(uri=self.uri, dedicated=True, timeout=5)
            except Exception:  # noqa: BLE001
                if time.time() > end:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self) -> None:
        self.start()

    def __enter__(self) -> KeelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

N = 3000
BATCH = 200
CLIENTS = 3
DIM = 8


def vec(k: int, b: int) -> list[float]:
    return [k / 100, b / 100] + [float((k + 3 * b + i) % 7) for i in range(DIM - 2)]


class Writer(threading.Thread):
    """One pymilvus connection upserting batches over keys [lo, hi) until it fails."""

    def __init__(self, uri: str, lo: int, hi: int, first_batch: int) -> None:
        super().__init__(daemon=True)
        self.client = pymilvus.MilvusClient(uri=uri, dedicated=True)
        self.lo, self.hi, self.b = lo, hi, first_batch
        self.acked: list[tuple[int, int]] = []  # (batch, start key)
        self.in_flight: tuple[int, int] | None = None

    def run(self) -> None:
        span = self.hi - self.lo
        while True:
            start = self.lo + (self.b * BATCH) % span
            rows = [{"id": k, "vector": vec(k, self.b), "b": self.b} for k in range(start, start + BATCH)]
            self.in_flight = (self.b, start)
            try:
                self.client.upsert("seed", rows, timeout=3)
            except Exception:  # noqa: BLE001 - the server died under us; outcome unknown
                return
            self.acked.append((self.b, start))
            self.in_flight = None
            self.b += 1


def expected_values(history: list[tuple[int, int]]) -> dict[int, int]:
    out = {k: -1 for k in range(N)}
    for b, start in history:
        for k in range(start, start + BATCH):
            out[k] = b
    return out


def test_sigkill_during_concurrent_upserts(tmp_path: Path) -> None:
    rng = random.Random(7)
    span = N // CLIENTS
    with KeelServer(tmp_path / "data") as server:
        admin = server.client()
        admin.create_collection("seed", dimension=DIM, metric_type="L2")
        for s in range(0, N, 1000):
            admin.insert("seed", [{"id": k, "vector": vec(k, -1), "b": -1} for k in range(s, s + 1000)])
        admin.flush("seed")
        admin.close()
        history: list[tuple[int, int]] = []  # batches known applied, in order
        next_batch = [0] * CLIENTS
        total_acked = 0
        for _round in range(3):
            writers = [
                Writer(server.uri, c * span, (c + 1) * span, next_batch[c]) for c in range(CLIENTS)
            ]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(1.0, 2.5))
            server.kill()
            for w in writers:
                w.join(timeout=60)
                assert not w.is_alive(), "a client hung after the server died"
            server.restart()
            check = server.client()
            count = check.query("seed", filter="", output_fields=["count(*)"], consistency_level="Strong")
            assert count[0]["count(*)"] == N
            rows: list[dict[str, Any]] = []
            it = check.query_iterator("seed", batch_size=1000, output_fields=["b"])
            while page := it.next():
                rows.extend(page)
            it.close()
            ids = [r["id"] for r in rows]
            assert sorted(ids) == list(range(N)), "a key is missing or visible twice"
            got = {r["id"]: r["b"] for r in rows}
            for w in writers:
                history.extend(w.acked)
                total_acked += len(w.acked)
                if w.in_flight is not None:
                    b, start = w.in_flight
                    keys = range(start, start + BATCH)
                    applied = [got[k] == b for k in keys]
                    assert all(applied) or not any(applied), f"batch {b} half applied"
                    if all(applied):
                        history.append(w.in_flight)
                next_batch[writers.index(w)] = w.b + 1
                w.client.close()
            expect = expected_values(history)
            lost = {k: (got[k], e) for k, e in expect.items() if got[k] != e}
            assert not lost, f"acknowledged writes lost or wrong: {list(lost.items())[:10]}"
            hits = check.search("seed", [vec(5, -1)], limit=10, output_fields=["b"])
            assert len({h["id"] for h in hits[0]}) == 10
            check.close()
        assert total_acked > 10, "the workload made no progress; the test proves nothing"


def test_sigterm_finishes_in_flight_calls_and_closes_cleanly(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "data") as server:
        _sigterm_scenario(server)


def _sigterm_scenario(server: KeelServer) -> None:
    c = server.client()
    c.create_collection("t", dimension=DIM, metric_type="L2")
    results: list[str] = []

    def writer() -> None:
        for b in range(1000):
            try:
                c.upsert("t", [{"id": k, "vector": vec(k, b), "b": b} for k in range(200)], timeout=3)
                results.append("ok")
            except Exception:  # noqa: BLE001 - refused once the server stops accepting calls
                results.append("refused")
                return

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(1.0)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.stdout is not None
    tail = server.proc.stdout.read()
    assert server.proc.wait(timeout=30) == 0
    assert "stopped cleanly" in tail
    t.join(timeout=60)
    acked = results.count("ok")
    assert acked > 0
    server.start()
    check = server.client()
    rows = check.query("t", filter="", output_fields=["b"], consistency_level="Strong")
    assert len(rows) == 200
    assert {r["b"] for r in rows} in ({acked - 1}, {acked}), "the last acknowledged batch is missing"
    check.close()
    c.close()


"""Concurrency: readers never wait for flushes or writers, and never see a half-applied batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb.engine import collection as collection_mod
from keeldb.engine import compaction as compaction_mod
from keeldb.engine import index_builder as index_builder_mod

N = 1000


def base(path: Path) -> keeldb.Client:
    c = keeldb.Client(str(path), auto_flush_bytes=64 * 1024)
    c.create_collection("c", dimension=4, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [i, 0, 0, 1], "b": -1} for i in range(N)])
    return c


def test_reads_and_writes_do_not_wait_for_a_slow_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = base(tmp_path / "db")
    real = collection_mod.write_table
    writing = threading.Event()

    def slow_write(path: Path, table: Any) -> tuple[int, int]:
        writing.set()
        time.sleep(2.0)
        return real(path, table)

    monkeypatch.setattr(collection_mod, "write_table", slow_write)
    t = threading.Thread(target=c.flush, args=("c",))
    t.start()
    assert writing.wait(10)
    t0 = time.perf_counter()
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == N
    assert len(c.search("c", [[1, 0, 0, 1]], limit=5)[0]) == 5
    c.upsert("c", [{"id": 1, "vector": [9, 9, 9, 9], "b": 1}])
    c.insert("c", [{"id": N, "vector": [1, 1, 1, 1], "b": 1}])
    assert c.get("c", ids=[1], output_fields=["b"])[0]["b"] == 1
    elapsed = time.perf_counter() - t0
    assert t.is_alive(), "the flush finished early; the test proves nothing"
    assert elapsed < 1.5, f"reads/writes waited {elapsed:.2f}s for the flush"
    t.join()
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == N + 1
    c.close()


def test_count_is_exact_at_every_sample_under_concurrent_upserts_and_flushes(tmp_path: Path) -> None:
    c = base(tmp_path / "db")
    stop = threading.Event()
    bad: list[str] = []

    def upserter(offset: int) -> None:
        b = 0
        while not stop.is_set():
            start = (offset + b * 100) % N
            c.upsert("c", [{"id": k, "vector": [k, b, 0, 1], "b": b} for k in range(start, min(N, start + 100))])
            b += 1

    def flusher() -> None:
        while not stop.is_set():
            c.flush("c")
            time.sleep(0.05)

    def deleter_reinserter() -> None:
        # Deletes and re-inserts keys above N, so the count moves but by known steps.
        k = N + 10
        while not stop.is_set():
            c.insert("c", [{"id": k, "vector": [0, 0, 0, 0], "b": 0}])
            c.delete("c", ids=[k])

    threads = [threading.Thread(target=upserter, args=(o,)) for o in (0, 500)]
    threads += [threading.Thread(target=flusher), threading.Thread(target=deleter_reinserter)]
    for t in threads:
        t.start()
    samples = 0
    deadline = time.time() + 4
    while time.time() < deadline:
        n = c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]
        if n not in (N, N + 1):
            bad.append(f"count {n}")
        n2 = c.query("c", filter="id < 1000", output_fields=["count(*)"])[0]["count(*)"]
        if n2 != N:
            bad.append(f"filtered count {n2}")
        ids = [r["id"] for r in c.query("c", filter="id < 1000", output_fields=["b"])]
        if len(ids) != N or len(set(ids)) != N:
            bad.append(f"scan saw {len(ids)} rows, {len(set(ids))} distinct")
        samples += 1
    stop.set()
    for t in threads:
        t.join()
    assert not bad, bad[:10]
    assert samples > 5
    assert c._coll("c").stats()["manifest_version"] >= 3  # flushes (and compactions) ran
    c.close()


def test_read_your_writes_from_many_threads(tmp_path: Path) -> None:
    c = base(tmp_path / "db")
    errors: list[str] = []

    def worker(t: int) -> None:
        for i in range(30):
            k = 10_000 + t * 100 + i
            c.insert("c", [{"id": k, "vector": [k, 0, 0, 0], "b": t}])
            got = c.get("c", ids=[k], output_fields=["b"])
            if got != [{"id": k, "b": t}]:
                errors.append(f"{k}: {got}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == N + 180
    c.close()


def test_count_exact_while_upserts_flushes_index_builds_and_compactions_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's concurrency test: upsert batches of 200, flushes, background index builds
    and forced compactions all at once, with count(*) sampled in a loop — every sample must
    equal the true count, and every search must return k live rows through the indexes."""
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 100)
    monkeypatch.setattr(compaction_mod, "COMPACTION_RETENTION_MS", 0)
    rows = 4000
    c = keeldb.Client(str(tmp_path / "db"), auto_flush_bytes=1 << 30)
    c.create_collection("c", dimension=8, metric_type="L2", auto_id=False)
    c.release_collection("c")
    c.drop_index("c", "vector")
    ip = c.prepare_index_params()
    ip.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": 8})
    c.create_index("c", ip)
    c.load_collection("c")

    def vec(k: int, b: int) -> list[float]:
        return [float(k % 97), float(b % 13), float(k % 7), 1.0, 0.0, float(k % 5), 0.0, 1.0]

    for start in range(0, rows, 1000):
        c.insert("c", [{"id": k, "vector": vec(k, 0), "b": 0} for k in range(start, start + 1000)])
        c.flush("c")
    stop = threading.Event()
    bad: list[str] = []
    done = {"upserts": 0, "flushes": 0, "compactions": 0}

    def upserter() -> None:
        b = 1
        while not stop.is_set():
            start = (b * 200) % rows
            c.upsert("c", [{"id": k, "vector": vec(k, b), "b": b} for k in range(start, start + 200)])
            done["upserts"] += 1
            b += 1

    def flusher() -> None:
        while not stop.is_set():
            c.flush("c")
            done["flushes"] += 1
            time.sleep(0.1)

    def compactor() -> None:
        while not stop.is_set():
            done["compactions"] += c.compact("c")
            time.sleep(0.2)

    threads = [threading.Thread(target=f) for f in (upserter, flusher, compactor)]
    for t in threads:
        t.start()
    samples = searches = 0

    def enough() -> bool:
        return samples > 20 and searches > 2 and done["upserts"] > 5 and done["flushes"] > 5 and done["compactions"] >= 1

    # At least 8 s, and on until every activity has happened often enough to prove something:
    # a busy machine slows the workers, which must not decide the outcome (a hard limit keeps
    # a hang from running forever; the assertions below then say what was missing).
    t0 = time.time()
    while time.time() < t0 + 8 or (not enough() and time.time() < t0 + 300):
        n = c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]
        if n != rows:
            bad.append(f"count {n}")
        samples += 1
        if samples % 10 == 0:
            hits = c.search("c", [vec(3, 0)], limit=10, search_params={"params": {"nprobe": 2}}, output_fields=["b"])[0]
            ids = [h["id"] for h in hits]
            if len(ids) != 10 or len(set(ids)) != 10:
                bad.append(f"search returned {ids}")
            searches += 1
    stop.set()
    for t in threads:
        t.join()
    coll = c._coll("c")  # noqa: SLF001 - the test checks the engine did build and commit indexes
    # The last flush may have started a background compaction, which merges indexed segments
    # into one that has no index yet: wait for it before building what is missing, or the
    # indexes counted below may be gone by the time they are counted.
    coll.wait_background()
    waited = c.wait_for_index("c")
    sealed = list(coll._mem.sealed.values())  # noqa: SLF001
    indexed = sum(1 for seg in sealed if seg.indexes)
    assert not bad, bad[:10]
    assert samples > 20 and searches > 2
    assert done["upserts"] > 5 and done["flushes"] > 5 and done["compactions"] >= 1, done
    # (Once failed in CI, never reproduced since: the state is in the message if it does.)
    state = (waited, [(seg.sid, seg.num_rows, sorted(seg.indexes)) for seg in sealed], coll._versions.current.indexes)  # noqa: SLF001
    assert waited["pending_rows"] == 0 and indexed >= 1 and len(coll._versions.current.indexes) >= 1, state  # noqa: SLF001
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == rows
    # Every key's newest acknowledged version is the one visible.
    got = {r["id"]: r["b"] for r in c.query("c", filter="", output_fields=["b"])}
    assert len(got) == rows
    c.close()

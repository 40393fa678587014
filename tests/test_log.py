"""The write-ahead log on its own: framing, group commit, and torn or corrupt tails."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keeldb
from keeldb.storage.log_format import HEADER_SIZE, RecordType
from keeldb.storage.log_reader import read_log
from keeldb.storage.log_writer import LogWriter


def test_roundtrip(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, 1)
    payloads = [b"", b"a", os.urandom(1000), b"x" * 70000]
    for i, p in enumerate(payloads):
        w.sync(w.append(RecordType.INSERT, 100 + i, p))
    w.close()
    res = read_log(w.path)
    assert res.reason == "" and res.dropped_bytes == 0
    assert [bytes(r.payload) for r in res.records] == payloads
    assert [r.ts for r in res.records] == [100, 101, 102, 103]


def test_group_commit_many_threads(tmp_path: Path) -> None:
    """Concurrent writers all return durable, and they share fsyncs."""
    w = LogWriter(tmp_path, 1)
    fsyncs = 0
    real = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real(fd)

    os.fdatasync = counting  # type: ignore[assignment]
    try:
        def writer(k: int) -> None:
            for i in range(50):
                end = w.append(RecordType.INSERT, k * 1000 + i, b"p" * 100)
                w.sync(end)
                assert w.synced >= end

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.fdatasync = real  # type: ignore[assignment]
    assert len(read_log(w.path).records) == 400
    assert fsyncs <= 400


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=6))
@settings(max_examples=30, deadline=None)
def test_every_cut_of_the_last_record(tmp_path_factory: pytest.TempPathFactory, payloads: list[bytes]) -> None:
    """Cut the log at every byte offset inside its last record: every complete record before
    it survives, the partial one is dropped, and the drop is reported."""
    d = tmp_path_factory.mktemp("log")
    w = LogWriter(d, 1)
    for i, p in enumerate(payloads):
        w.append(RecordType.UPSERT, i + 1, p)
    w.sync()
    w.close()
    data = w.path.read_bytes()
    last_start = len(data) - (HEADER_SIZE + len(payloads[-1]))
    for cut in range(last_start, len(data)):
        w.path.write_bytes(data[:cut])
        res = read_log(w.path)
        assert [bytes(r.payload) for r in res.records] == payloads[:-1]
        assert res.good_bytes == last_start
        assert res.dropped_bytes == cut - last_start
        assert (res.reason != "") == (cut > last_start)


def test_every_bit_flip_in_the_last_record(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, 1)
    payloads = [b"first record", b"second", b"the last one"]
    for i, p in enumerate(payloads):
        w.append(RecordType.INSERT, i + 1, p)
    w.sync()
    w.close()
    data = w.path.read_bytes()
    last_start = len(data) - (HEADER_SIZE + len(payloads[-1]))
    for pos in range(last_start, len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[pos] ^= 1 << bit
            w.path.write_bytes(bytes(mutated))
            res = read_log(w.path)
            assert [bytes(r.payload) for r in res.records] == payloads[:-1], (pos, bit)
            assert res.reason


def _kill_mid_record(db: Path, n_batches: int) -> Path:
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=4)
    for b in range(n_batches):
        c.insert("c", [{"id": b * 10 + i, "vector": [b, i, 0, 1]} for i in range(10)])
    c.close()
    logs = sorted((db / "collections").glob("*/wal/*.log"))
    return max((p for p in logs if p.stat().st_size), key=lambda p: p.name)


def test_torn_tail_through_the_client(tmp_path: Path) -> None:
    """Every cut inside the last record of a collection's log: reopen keeps all earlier
    batches, drops the torn one whole, reports it, and the log is clean again afterwards."""
    base = tmp_path / "base"
    log = _kill_mid_record(base, 3)
    data = log.read_bytes()
    rel = log.relative_to(base)
    sizes = [r.end for r in read_log(log).records]
    last_start = sizes[-2]
    step = max(1, (len(data) - last_start) // 40)
    for cut in [*range(last_start + 1, len(data), step), len(data) - 1]:
        db = tmp_path / f"cut{cut}"
        os.system(f"cp -r {base} {db}")
        (db / rel).write_bytes(data[:cut])
        c = keeldb.Client(str(db))
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 20
        rep = c.recovery_report("c")
        assert rep["bytes_dropped"] == cut - last_start and rep["torn_tail"]
        c.insert("c", [{"id": 999, "vector": [1, 1, 1, 1]}])
        c.close()
        c = keeldb.Client(str(db))
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 21
        assert c.recovery_report("c")["bytes_dropped"] == 0
        c.close()


def test_corruption_before_later_records_refuses_to_open(tmp_path: Path) -> None:
    """A bad record followed by a later log with records is not a torn tail: it would mean
    skipping acknowledged writes, so open fails loudly instead."""
    db = tmp_path / "db"
    log = _kill_mid_record(db, 2)
    c = keeldb.Client(str(db))
    c.insert("c", [{"id": 500, "vector": [1, 2, 3, 4]}])
    c.close()
    data = bytearray(log.read_bytes())
    data[HEADER_SIZE + 2] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(keeldb.KeelError, match="refusing"):
        keeldb.Client(str(db))

"""Recovery: what opening a directory does with what it finds there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import keeldb
from keeldb.storage import oracle as oracle_mod
from keeldb.storage.manifest import list_versions
from keeldb.storage.oracle import TimestampOracle

ROOT = Path(__file__).resolve().parents[1]


def make(db: Path, flushes: int = 2, per: int = 20) -> None:
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=3, metric_type="L2")
    for f in range(flushes):
        c.insert("c", [{"id": f * per + i, "vector": [f, i, 1]} for i in range(per)])
        c.flush("c")
    c.insert("c", [{"id": 10_000, "vector": [0, 0, 0]}])  # one row only in the log
    c.close()


def count(db: Path) -> int:
    c = keeldb.Client(str(db))
    try:
        return c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]
    finally:
        c.close()


def coll_dir(db: Path) -> Path:
    return next((db / "collections").iterdir())


def test_reopen_is_repeatable(tmp_path: Path) -> None:
    make(tmp_path / "db")
    assert [count(tmp_path / "db") for _ in range(3)] == [41, 41, 41]


def test_second_process_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    c = keeldb.Client(str(db))
    code = "import sys, keeldb\ntry:\n    keeldb.Client(sys.argv[1])\nexcept keeldb.DatabaseLocked as e:\n    print('LOCKED', e)\n"
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "LOCKED" in out.stdout and "another process" in out.stdout
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 41
    c.close()
    assert count(db) == 41  # and after the refusal, nothing was damaged


def test_two_clients_in_one_process_share_the_database(tmp_path: Path) -> None:
    make(tmp_path / "db")
    a = keeldb.Client(str(tmp_path / "db"))
    b = keeldb.Client(str(tmp_path / "db"))
    a.insert("c", [{"id": 5000, "vector": [1, 1, 1]}])
    assert b.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 42
    a.close()
    assert b.query("c", filter="id == 5000", output_fields=["count(*)"])[0]["count(*)"] == 1
    b.close()


def test_newest_manifest_corrupt_falls_back_to_previous(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    d = coll_dir(db)
    newest = max(list_versions(d))
    path = d / f"MANIFEST-{newest:012d}"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55
    path.write_bytes(bytes(data))
    c = keeldb.Client(str(db))
    rep = c.recovery_report("c")
    assert rep["manifests_skipped"] and rep["manifest_version"] == newest - 1
    # The previous version plus the logs it needs hold every row: nothing is lost.
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 41
    c.close()


def test_corrupt_segment_file_fails_loudly(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    seg = sorted(coll_dir(db).glob("seg-*.arrow"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(keeldb.KeelError, match="checksum"):
        keeldb.Client(str(db))


def test_missing_segment_file_fails_loudly(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    sorted(coll_dir(db).glob("seg-*.arrow"))[0].unlink()
    with pytest.raises(keeldb.KeelError, match="cannot be opened"):
        keeldb.Client(str(db))


def test_garbage_is_collected_at_open(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    d = coll_dir(db)
    (d / "seg-000000099999.arrow").write_bytes(b"orphan from a flush that never committed")
    (d / "MANIFEST-000000099999.tmp").write_bytes(b"unfinished rename")
    (db / "collections" / "000777").mkdir()  # a create whose catalog commit never happened
    assert count(db) == 41
    assert not (d / "seg-000000099999.arrow").exists()
    assert not (d / "MANIFEST-000000099999.tmp").exists()
    assert not (db / "collections" / "000777").exists()
    assert len(list_versions(d)) <= 2


def test_old_logs_are_deleted_after_flush(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db, flushes=4)
    logs = sorted((coll_dir(db) / "wal").glob("*.log"))
    assert len(logs) <= 4, logs


def test_oracle_monotonic_across_restart_with_clock_going_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "TSO"
    o = TimestampOracle(path)
    first = [o.next() for _ in range(1000)]
    assert first == sorted(first) and len(set(first)) == 1000
    # The wall clock jumps back an hour; a restarted oracle must still go forward.
    monkeypatch.setattr(oracle_mod.TimestampOracle, "_now", staticmethod(lambda: 0))
    o2 = TimestampOracle(path)
    assert o2.next() > first[-1]
    block_end = o2.next_block(300_000)  # wider than the logical field: carries into ms
    assert o2.next() > block_end


def test_timestamps_increase_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    c = keeldb.Client(str(db))
    t1 = c._coll("c").visible_ts
    c.close()
    c = keeldb.Client(str(db))
    c.insert("c", [{"id": 777, "vector": [1, 2, 3]}])
    assert c._coll("c").visible_ts > t1
    c.close()


def test_drop_and_recreate(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db)
    c = keeldb.Client(str(db))
    c.drop_collection("c")
    assert not c.has_collection("c")
    c.create_collection("c", dimension=3)
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    c.close()
    assert count(db) == 0


def test_disk_full_during_flush_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush that hits ENOSPC fails loudly; the collection refuses writes (it cannot
    trust its state any more) but keeps serving reads; reopening recovers every
    acknowledged row from the log."""
    from keeldb.storage import crash

    db = tmp_path / "db"
    make(db)
    c = keeldb.Client(str(db))
    c.insert("c", [{"id": 20_000 + i, "vector": [i, 0, 0]} for i in range(10)])
    monkeypatch.setattr(crash, "_faults", {"disk-full": ""})
    with pytest.raises(keeldb.StorageError, match="No space left"):
        c.flush("c")
    with pytest.raises(keeldb.StorageError, match="reopen"):
        c.insert("c", [{"id": 30_000, "vector": [0, 0, 0]}])
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 51
    c.close()
    monkeypatch.setattr(crash, "_faults", {})
    assert count(db) == 51


def test_slow_fsync_is_only_slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keeldb.storage import crash

    monkeypatch.setattr(crash, "_faults", {"slow-fsync": "20"})
    make(tmp_path / "db", flushes=1)
    assert count(tmp_path / "db") == 21

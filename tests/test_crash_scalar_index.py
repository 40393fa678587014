"""Crash points during scalar index builds (index.after_write: a file no manifest names;
index.after_commit: a committed one), next to flushes and compactions. A child upserts
every key in each batch (the batch number in the values), flushing, indexing and compacting
as it goes, and is killed at a crash point; the reopened collection must hold every key
once, all from one batch at or after the last acknowledged one, and every filter over the
indexed fields must answer as the reference over those rows -- through whatever index files
recovery kept, and again after a flush, a compaction and the rebuilt indexes. The manifest
names only index files of its own segments, each of them loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import keeldb

KEYS = 30
BATCHES = 12

CHILD = """
import os, sys
sys.path.insert(0, sys.argv[3])
import keeldb
from tests.test_crash_scalar_index import KEYS, BATCHES, create, values
c = keeldb.Client(sys.argv[1])
if not c.has_collection("t"):
    create(c)
journal = open(sys.argv[2], "a")
for b in range(BATCHES):
    c.upsert("t", [{"id": k, "v": [float(k), 1.0], **values(b, k)} for k in range(KEYS)])
    journal.write(f"{b}\\n"); journal.flush(); os.fsync(journal.fileno())
    if b % 3 == 2:
        c.flush("t")
        c.wait_for_index("t")
    if b % 6 == 5:
        c.compact("t")
        c.wait_for_index("t")
"""


def values(batch: int, key: int) -> dict[str, Any]:
    return {
        "tag": None if (batch + key) % 7 == 0 else (batch * 3 + key) % 10,
        "name": f"b{batch}-n{key % 6}",
        "j": {"a": (batch + key) % 5, "t": f"k{key}b{batch}", "o": {"n": (batch * key) % 4}},
    }


# filter -> reference over (row values, batch)
FILTERS: list[tuple[str, Any]] = [
    ("tag >= 5", lambda r, b: r["tag"] is not None and r["tag"] >= 5),
    ("tag != 3", lambda r, b: r["tag"] is not None and r["tag"] != 3),
    ('name like "b{b}-n1%"', lambda r, b: r["name"].startswith(f"b{b}-n1")),
    ('j["a"] in [1, 2]', lambda r, b: r["j"]["a"] in (1, 2)),
    ('j["t"] like "%1b%"', lambda r, b: "1b" in r["j"]["t"]),
    ('tag is null or j["a"] == 0', lambda r, b: r["tag"] is None or r["j"]["a"] == 0),
    ('j["o"]["n"] >= 2', lambda r, b: r["j"]["o"]["n"] >= 2),  # the flat index
]


def create(c: keeldb.Client) -> None:
    from keeldb import DataType

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("tag", DataType.INT64, nullable=True)
    s.add_field("name", DataType.VARCHAR, max_length=32)
    s.add_field("j", DataType.JSON)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    ip.add_index("tag", "STL_SORT")
    ip.add_index("name", "TRIE")
    ip.add_index("j", "INVERTED", index_name="ja", params={"json_path": 'j["a"]', "json_cast_type": "double"})
    ip.add_index("j", "NGRAM", index_name="jt", params={"json_path": 'j["t"]', "json_cast_type": "varchar", "min_gram": 2, "max_gram": 2})
    ip.add_index("j", "INVERTED", index_name="jf", params={"json_path": 'j["o"]', "json_cast_type": "JSON"})
    c.create_collection("t", schema=s, index_params=ip)


def _run(data: Path, journal: Path, crash_at: str) -> int:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, KEELDB_CRASH_AT=crash_at, KEELDB_INDEX_MIN_ROWS="10", KEELDB_COMPACTION_RETENTION_MS="0")
    env["PYTHONPATH"] = str(root / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), str(journal), str(root)], env=env,
                          capture_output=True, timeout=120)  # fmt: skip
    if proc.returncode not in (0, -9):
        raise AssertionError(proc.stderr.decode()[-3000:])
    return proc.returncode


def _answers(c: keeldb.Client, batch: int) -> dict[str, list[int]]:
    return {f.format(b=batch): sorted(r["id"] for r in c.query("t", f.format(b=batch), output_fields=["id"]))
            for f, _ in FILTERS}  # fmt: skip


def _check(data: Path, journal: Path) -> None:
    acked = [int(x) for x in journal.read_text().split()] if journal.exists() else []
    last = acked[-1] if acked else -1
    c = keeldb.Client(str(data))
    try:
        rows = c.query("t", "", output_fields=["tag", "name", "j"], limit=100)
        assert len(rows) == KEYS == c.query("t", "", output_fields=["count(*)"])[0]["count(*)"]
        batches = {int(r["name"].split("-")[0][1:]) for r in rows}
        assert len(batches) == 1
        (batch,) = batches
        assert batch in (last, last + 1)
        assert all({k: r[k] for k in ("tag", "name", "j")} == values(batch, r["id"]) for r in rows)
        want = {f.format(b=batch): sorted(r["id"] for r in rows if ref(r, batch)) for f, ref in FILTERS}
        assert _answers(c, batch) == want
        coll = c._coll("t")
        manifest = coll._versions.current
        segments = {e.id for e in manifest.segments}
        assert all(e.segment in segments for e in manifest.indexes)
        if manifest.version == coll.report.manifest_version:
            assert coll.report.indexes_loaded == len(manifest.indexes)
        assert not coll.report.indexes_skipped
        c.flush("t")
        c.compact("t")
        c.wait_for_index("t")
        assert _answers(c, batch) == want
        sealed = [v.segment for v in c.snapshot("t").views if type(v.segment).__name__ == "SealedSegment"]
        assert sealed and all({"tag#tag", "name#name", "j#ja", "j#jt", "j#jf"} <= set(s.indexes) for s in sealed)
    finally:
        c.close()


POINTS = ["index.after_write:1", "index.after_write:4", "index.after_commit:2", "index.after_commit:5",
          "flush.after_segment_write:2", "compaction.after_commit:1"]  # fmt: skip


@pytest.mark.parametrize("point", POINTS)
def test_crash_during_scalar_index_builds(tmp_path: Path, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from keeldb.engine import index_builder

    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert _run(data, journal, point) == -9, f"{point} was never reached"
    _check(data, journal)

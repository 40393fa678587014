"""Crash points on a collection with a BM25 function: the output field is derived on the
write path (``rows.columns_to_batch``) and then logged, flushed, indexed and compacted like
any column. A child upserts every key in each batch (the batch number in the text),
flushing, compacting and indexing as it goes, and is killed at a crash point; the reopened
collection must hold every key once, all from one batch at or after the last acknowledged
one, each row's stored vector equal to the derivation of its text, and BM25 scores equal to
an independent BM25 over the visible rows -- the same before and after a flush and a
compaction of the recovered data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import keeldb
from keeldb.text import token_hash
from tests.test_bm25 import ANALYZER, QUERIES, WORDS, assert_close, reference, scores

KEYS = 20
BATCHES = 12

CHILD = """
import os, sys
sys.path.insert(0, sys.argv[3])
import keeldb
from tests.test_bm25 import create
from tests.test_crash_bm25 import KEYS, BATCHES, text
c = keeldb.Client(sys.argv[1])
if not c.has_collection("t"):
    create(c, "t")
journal = open(sys.argv[2], "a")
for b in range(BATCHES):
    c.upsert("t", [{"id": k, "text": text(b, k), "tag": b} for k in range(KEYS)])
    journal.write(f"{b}\\n"); journal.flush(); os.fsync(journal.fileno())
    if b % 3 == 2:
        c.flush("t")
        c.wait_for_index("t", "sparse")
    if b % 6 == 5:
        c.compact("t")
"""


def text(batch: int, key: int) -> str:
    """Each batch rewrites every key's text; the batch shows in the words."""
    n = 2 + (batch * 7 + key * 3) % 6
    return " ".join(WORDS[(batch + key * i) % len(WORDS)] for i in range(1, n + 1)) + f" b{batch}"


def _run(data: Path, journal: Path, crash_at: str) -> int:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, KEELDB_CRASH_AT=crash_at, KEELDB_INDEX_MIN_ROWS="10", KEELDB_COMPACTION_RETENTION_MS="0")
    env["PYTHONPATH"] = str(root / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), str(journal), str(root)], env=env,
                          capture_output=True, timeout=120)  # fmt: skip
    if proc.returncode not in (0, -9):
        raise AssertionError(proc.stderr.decode()[-3000:])
    return proc.returncode


def _check(data: Path, journal: Path) -> None:
    acked = [int(x) for x in journal.read_text().split()] if journal.exists() else []
    last = acked[-1] if acked else -1
    c = keeldb.Client(str(data))
    try:
        rows = c.query("t", "", output_fields=["text", "tag"], limit=100)
        assert len(rows) == KEYS == c.count("t")
        (batch,) = {r["tag"] for r in rows}  # one batch, whole
        assert batch in (last, last + 1)
        assert all(r["text"] == text(batch, r["id"]) for r in rows)
        snap = c.snapshot("t")
        stored = {}
        for v in snap.views:
            vis = v.visible(snap.ts)
            ids = v.take(list(range(v.num_rows)), ["id"])["id"] if v.num_rows else []
            for i, vec in enumerate(v.vectors("sparse").to_dicts()):
                if vis[i]:
                    stored[ids[i]] = vec
        for r in rows:
            want = Counter(token_hash(t) for t in ANALYZER.terms(r["text"]))
            assert stored[r["id"]] == {k: float(n) for k, n in want.items()}
        docs = {r["id"]: r["text"] for r in rows}
        before = {q: scores(c, "t", q) for q in QUERIES}
        for q in QUERIES:
            assert_close(before[q], reference(docs, q))
        c.flush("t")
        c.compact("t")
        assert {q: scores(c, "t", q) for q in QUERIES} == before
    finally:
        c.close()


POINTS = ["wal.after_append:5", "wal.after_fsync:7", "flush.after_segment_write:2", "manifest.after_rename:2",
          "compaction.after_write:1", "compaction.after_commit:1", "index.after_commit:1"]  # fmt: skip


@pytest.mark.parametrize("point", POINTS)
def test_crash_with_bm25(tmp_path: Path, point: str) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert _run(data, journal, point) == -9, f"{point} was never reached"
    _check(data, journal)

"""The crash matrix over a collection with every index kind: the crash workload
(``tests/crash_workload.py``) with ``KEELDB_CRASH_VECTORS=1`` adds a sparse vector field
(inverted index), a binary one (BIN_IVF_FLAT) and a float16 one (HNSW over fp16 codes), so
its flushes write those columns and its index builds and compactions write and commit
``idx-*.sparse`` / ``idx-*.faissbin`` / ``idx-*.faiss`` files. A child process is killed at
each crash point that touches segment, index or manifest files (several hits of the index
points: one per index kind and segment), and the reopened data must be a legal outcome of
the acknowledged operations — every vector read back exactly, and a search through each
index kind finding each live row's own vector first, never an old version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keeldb.storage.crash import CRASH_POINTS
from tests import crash_workload
from tests.crash_workload import check, expected_states, observed_state, run_child

ENV = {"KEELDB_CRASH_VECTORS": "1"}
POINTS = [
    *[(p, 1) for p in sorted(CRASH_POINTS) if p.split(".")[0] in ("flush", "manifest", "compaction", "index", "gc")],
    ("index.after_write", 3),
    ("index.after_commit", 4),
    ("recovery.during_replay", 1),
]


@pytest.fixture(autouse=True)
def vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crash_workload, "VECTORS", True)  # observed_state checks the vector fields


@pytest.mark.parametrize(("point", "nth"), POINTS, ids=[f"{p}:{n}" for p, n in POINTS])
def test_crash_with_every_index_kind(tmp_path: Path, point: str, nth: int) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    if point == "recovery.during_replay":
        # Kill a write first, then recovery itself, twice: replay is idempotent.
        assert run_child(data, journal, "wal.after_fsync:12", ENV) == -9
        import os
        import subprocess
        import sys

        for _ in range(2):
            env = dict(os.environ, KEELDB_CRASH_AT="recovery.during_replay:2", **ENV)
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
            proc = subprocess.run([sys.executable, "-c", "import sys, keeldb; keeldb.Client(sys.argv[1])", str(data)],
                                  env=env, timeout=60)  # fmt: skip
            assert proc.returncode in (0, -9)
        check(data, journal)
        return
    rc = run_child(data, journal, f"{point}:{nth}", ENV)
    assert rc == -9, f"crash point {point} hit {nth} was never reached by the workload"
    check(data, journal)
    check(data, journal)  # and again after the first reopen's own GC and truncation


def test_workload_with_every_index_kind_without_crash(tmp_path: Path) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, None, ENV) == 0
    states, done = expected_states(journal)
    assert done
    assert observed_state(data) == states[0]


def test_every_index_kind_reaches_the_disk(tmp_path: Path) -> None:
    """Each kind's index file is written and committed before the workload's first schema
    change (later, a TTL expires every row and compaction reclaims their files, so the end
    state no longer shows them): stop the workload there and look."""
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, "schema.before_commit:1", ENV) == -9
    names = {p.suffix for p in (data / "collections").rglob("idx-*")}
    assert {".sparse", ".faissbin", ".faiss"} <= names, names
    check(data, journal)

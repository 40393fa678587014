"""Recovery verifies what it assumes: a row version in two places is corruption, named with
the files, the key and the timestamp — whatever the deletes (engine/recovery.py).

Each test makes the overlap the way a real bug would (a compaction that commits its output
before dropping its inputs; a flush that adds its segment without moving the checkpoint),
in a collection with deletes and in one without, where the timestamp rebuild would
otherwise hide it or fail with a bare "duplicate key".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb.engine import collection as collection_mod
from keeldb.engine.recovery import OverlapError
from keeldb.storage.manifest import ManifestEdit
from keeldb.storage.store import LocalStore


def make(db: Path, *, deletes: bool) -> None:
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=3, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [i, 0, 1]} for i in range(20)])
    if deletes:
        c.upsert("c", [{"id": i, "vector": [i, 1, 1]} for i in range(5)])
        c.delete("c", ids=[7])
    c.flush("c")
    c.close()


def coll_dir(db: Path) -> Path:
    return next((db / "collections").iterdir())


def add_segment_file(db: Path, src: Path, seg: Any) -> str:
    """Copy segment file ``src`` (its manifest entry ``seg``) into ``db``'s collection and
    commit it as one more live segment, past the engine: a state only a bug makes. Returns
    the new file's name."""
    store = LocalStore(coll_dir(db))
    cur, _ = store.load()
    name = store.file_name("seg", cur.next_id, "arrow")
    shutil.copyfile(src, store.local(name))
    entry = type(seg)(cur.next_id, name, seg.rows, seg.bytes, seg.crc32, seg.max_ts)
    store.commit(cur.apply(ManifestEdit(add_segments=(entry,)), version=cur.version + 1, next_id=cur.next_id + 1))
    return name


def first_segment(db: Path) -> Any:
    return LocalStore(coll_dir(db)).load()[0].segments[0]


def add_copy_of_a_segment(db: Path) -> tuple[str, str]:
    """What a compaction committed in two steps leaves after a crash between them: the
    manifest names an input and an output holding the same row versions."""
    seg = first_segment(db)
    return seg.file, add_segment_file(db, coll_dir(db) / seg.file, seg)


def flushes_keep_the_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a flush adds its segment but leaves the log checkpoint where it was
    (the seed's bug), through the engine's own ManifestEdit."""
    real = collection_mod.ManifestEdit
    monkeypatch.setattr(collection_mod, "ManifestEdit", lambda **kw: real(**{**kw, "log_checkpoint": None}))


@pytest.mark.parametrize("deletes", [True, False], ids=["with-deletes", "insert-only"])
def test_a_version_in_two_live_segments_is_corruption(tmp_path: Path, deletes: bool) -> None:
    db = tmp_path / "db"
    make(db, deletes=deletes)
    a, b = add_copy_of_a_segment(db)
    with pytest.raises(OverlapError) as e:
        keeldb.Client(str(db))
    msg = str(e.value)
    assert a in msg and b in msg and "key 0" in msg and "ts " in msg, msg


def test_a_version_in_a_segment_and_the_log_tail_is_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's bug: a flush adds its segment but leaves the checkpoint where it was. An
    upsert-only tail replays without any insert meeting a live key, so only the version
    check can tell."""
    db = tmp_path / "db"
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=3, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [i, 0, 1]} for i in range(20)])
    c.flush("c")
    flushes_keep_the_checkpoint(monkeypatch)
    c.upsert("c", [{"id": i, "vector": [i, 2, 1]} for i in range(3)])
    c.flush("c")
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 20  # nothing shows yet
    c.close()
    with pytest.raises(OverlapError) as e:
        keeldb.Client(str(db))
    msg = str(e.value)
    assert "seg-" in msg and "key 0" in msg and "replayed log record" in msg and "checkpoint" in msg, msg


def test_a_delete_in_the_log_tail_older_than_the_files_is_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "db"
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=3, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [i, 0, 1]} for i in range(20)])
    c.flush("c")
    flushes_keep_the_checkpoint(monkeypatch)
    c.delete("c", ids=[3])
    c.flush("c")
    c.close()
    with pytest.raises(OverlapError, match="not newer than the committed files"):
        keeldb.Client(str(db))


def test_two_versions_of_a_key_without_a_delete_file_are_named(tmp_path: Path) -> None:
    """Insert-only files holding a key twice at different timestamps: no delete record ends
    the older one, so it cannot be told which is live; the error says where both are."""
    db = tmp_path / "db"
    c = keeldb.Client(str(db))
    c.create_collection("c", dimension=3, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [i, 0, 1]} for i in range(5)])
    c.flush("c")
    c.close()
    other = tmp_path / "other"
    c = keeldb.Client(str(other))
    c.create_collection("c", dimension=3, metric_type="L2")
    c.insert("c", [{"id": 4, "vector": [9, 9, 9]}])
    c.flush("c")
    c.close()
    src, first = first_segment(other), first_segment(db).file
    name = add_segment_file(db, coll_dir(other) / src.file, src)
    with pytest.raises(keeldb.KeelError, match="key 4 has two versions") as e:
        keeldb.Client(str(db))
    assert first in str(e.value) and name in str(e.value)


def test_a_clean_reopen_passes_the_checks(tmp_path: Path) -> None:
    db = tmp_path / "db"
    make(db, deletes=True)
    c = keeldb.Client(str(db))
    c.upsert("c", [{"id": i, "vector": [i, 3, 1]} for i in range(10)])  # a log tail over flushed keys (7 comes back)
    c.close()
    c = keeldb.Client(str(db))
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 20
    c.close()


def test_a_manifest_that_parses_but_fails_its_checksum_is_not_used(tmp_path: Path) -> None:
    """A damaged newest manifest whose JSON still parses (one digit changed, as a torn write
    over older bytes or a bit flip can leave it) is skipped for its predecessor: a file that
    parses is not a file that was written whole."""
    import re

    from keeldb.storage.manifest import list_versions

    db = tmp_path / "db"
    make(db, deletes=True)
    c = keeldb.Client(str(db))
    c.insert("c", [{"id": 100 + i, "vector": [i, 5, 1]} for i in range(5)])
    c.flush("c")
    c.close()
    d = coll_dir(db)
    newest = max(list_versions(d))
    path = d / f"MANIFEST-{newest:012d}"
    raw = path.read_bytes()
    m = re.search(rb'"rows":(\d)', raw)
    assert m is not None
    digit = m.group(1)[0]
    raw = raw[: m.start(1)] + bytes([ord("1") if digit != ord("1") else ord("2")]) + raw[m.start(1) + 1 :]
    path.write_bytes(raw)
    c = keeldb.Client(str(db))
    rep = c.recovery_report("c")
    assert rep["manifests_skipped"] and rep["manifest_version"] == newest - 1, rep
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 24
    c.close()

"""The one commit path (VersionSet.log_and_apply) and the one file-writing helper, alone:
what a commit writes, what a failed commit does to the collection, and which files GC may
take while they are being written."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeldb.engine.versions import VersionSet
from keeldb.errors import KeelError, StorageError
from keeldb.storage.fs import write_durable
from keeldb.storage.manifest import FileEntry, IndexEntry, Manifest, ManifestEdit
from keeldb.storage.store import LocalStore


def entry(i: int) -> FileEntry:
    return FileEntry(i, f"seg-{i:012d}.arrow", 10, 100, 0, 5)


def index(seg: int, spec: str = "s") -> IndexEntry:
    return IndexEntry(seg, "v", spec, f"idx-{seg:012d}-{spec}.faiss", 10, 0)


def test_apply_builds_the_next_version_from_an_edit() -> None:
    cur = Manifest(version=3, log_checkpoint=4, next_id=9, segments=(entry(1), entry(2)), indexes=(index(1), index(2)))
    flush = cur.apply(ManifestEdit(add_segments=(entry(5),), log_checkpoint=6), version=4, next_id=10)
    assert (flush.version, flush.log_checkpoint, flush.next_id) == (4, 6, 10)
    assert [e.id for e in flush.segments] == [1, 2, 5] and flush.indexes == cur.indexes
    merged = cur.apply(ManifestEdit(add_segments=(entry(7),), drop_segments=frozenset({1, 2})), version=4, next_id=9)
    assert [e.id for e in merged.segments] == [7]
    assert merged.indexes == () and merged.log_checkpoint == 4  # indexes go with their segments
    rebuilt = cur.apply(ManifestEdit(add_indexes=(index(1, "t"),)), version=4, next_id=9)
    assert rebuilt.indexes == (index(2), index(1, "t"))  # one index per (segment, field)


class FakeStore:
    """A CollectionStore whose commit does what the test says."""

    def __init__(self, directory: Path, error: BaseException | None = None) -> None:
        self.dir = directory
        self.error = error
        self.committed: list[Manifest] = []

    def commit(self, manifest: Manifest) -> None:
        if self.error is not None:
            raise self.error
        self.committed.append(manifest)

    def next_version(self, current: Manifest) -> int:
        return current.version + 1


def versions(store: object, current: Manifest) -> tuple[VersionSet, list[KeelError]]:
    failures: list[KeelError] = []
    return VersionSet(store, current, [current], failures.append), failures  # type: ignore[arg-type]


def test_a_commit_moves_current_and_retained(tmp_path: Path) -> None:
    store = FakeStore(tmp_path)
    first = Manifest()
    vs, failures = versions(store, first)
    vs.new_id(3)
    one = vs.log_and_apply(ManifestEdit(add_segments=(entry(1),), log_checkpoint=2), "flush")
    assert store.committed == [one] and vs.current is one and vs.retained == [one]  # version 0 is no file
    assert (one.version, one.next_id) == (1, 4)
    two = vs.log_and_apply(ManifestEdit(add_indexes=(index(1),)), "index")
    assert vs.current is two and vs.retained == [two, one] and not failures


@pytest.mark.parametrize("what", ["flush", "compaction", "index"])
def test_a_failed_commit_makes_the_collection_read_only_and_leaves_memory_alone(tmp_path: Path, what: str) -> None:
    cur = Manifest(version=2, segments=(entry(1),))
    vs, failures = versions(FakeStore(tmp_path, OSError(5, "Input/output error")), cur)
    with pytest.raises(StorageError, match=f"{what} commit failed") as err:
        vs.log_and_apply(ManifestEdit(add_segments=(entry(2),)), what)
    assert failures == [err.value]  # the collection's failed state: read-only until reopened
    assert vs.current is cur and vs.retained == [cur]  # memory still says what it knew


def test_a_refused_cluster_commit_is_the_failure_itself(tmp_path: Path) -> None:
    class Fenced(KeelError):
        pass

    cur = Manifest(version=2)
    refusal = Fenced("another writer holds the shard")
    vs, failures = versions(FakeStore(tmp_path, refusal), cur)
    with pytest.raises(Fenced):
        vs.log_and_apply(ManifestEdit(), "flush")
    assert failures == [refusal] and vs.current is cur


def write(path: Path) -> tuple[int, int]:
    write_durable(path, b"data")
    return 4, 0


def test_files_in_progress_are_safe_from_gc_until_their_block_ends(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    vs, _ = versions(store, Manifest())
    with vs.new_files() as files:
        f = files.write("seg", vs.new_id(), "arrow", write)
        files.publish()
        assert vs.collect_garbage(active_log=1) == []  # written, named by nothing, not garbage
    # Abandoned (no commit named it): now it is garbage.
    assert vs.collect_garbage(active_log=1) == [f.name]


def test_files_of_a_step_that_failed_stay_until_reopen(tmp_path: Path) -> None:
    """A failed commit may have reached the disk: its files may be named by the manifest
    recovery will read, so nothing may delete them while this process runs."""
    store = LocalStore(tmp_path)
    vs, _ = versions(store, Manifest())
    with pytest.raises(OSError), vs.new_files() as files:
        f = files.write("seg", vs.new_id(), "arrow", write)
        raise OSError("the commit failed")
    assert vs.collect_garbage(active_log=1) == []
    assert (tmp_path / f.name).exists()

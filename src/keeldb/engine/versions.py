"""A collection's manifest versions and the one way to change them (LevelDB's ``VersionSet``).

Every change to what a collection's durable state is made of — a flush adding its segment
and delete file and moving the log checkpoint, a compaction swapping its inputs for its
output, an index build adding an index — is a ``ManifestEdit`` handed to ``log_and_apply``
(LevelDB's ``LogAndApply``). So the commit rule is written once:

1. build the next version from the current one (``Manifest.apply``), numbered past any
   version on disk, with the file-id counter as it stands;
2. commit it through the store: the rename of ``MANIFEST-<v>`` locally, one etcd
   transaction in a cluster — the atomic step every crash-safety argument rests on;
3. if the commit fails, it may or may not have reached the disk, so memory can no longer
   be trusted to match it: the collection turns read-only (``on_failure``) until it is
   reopened, where recovery decides from what is actually there;
4. on success, the in-memory current version and the retained pair (what GC keeps) move.

Callers serialise commits with the collection's flush lock (it also orders a commit with
the memory swap that follows it); ``log_and_apply`` does not take it itself because each
caller holds it across more than the commit.

Files a commit will name are written first, through ``new_files`` — the one helper for
segment, delete and index files: the store names the file, it is registered as *in
progress* before it exists (GC skips it: no manifest names it yet, but it is not garbage),
written and fsynced, then published (made durable where it lives) before the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keeldb.errors import KeelError, StorageError
from keeldb.storage.manifest import Manifest, ManifestEdit
from keeldb.storage.store import CollectionStore


@dataclass(frozen=True)
class WrittenFile:
    name: str
    bytes: int
    crc32: int


class NewFiles:
    """The files one flush, compaction or index build writes before its commit."""

    def __init__(self, versions: VersionSet) -> None:
        self._versions = versions
        self.names: list[str] = []

    def write(self, kind: str, fid: int, ext: str, writer: Callable[[Path], tuple[int, int]]) -> WrittenFile:
        """Name a file, register it as in progress, and have ``writer`` write and fsync it
        (returning its size and CRC-32). Not yet durable by name: see ``publish``."""
        store = self._versions.store
        name = store.file_name(kind, fid, ext)
        self._versions.register(name)
        self.names.append(name)
        size, crc = writer(store.dir / name)
        return WrittenFile(name, size, crc)

    def publish(self) -> None:
        """Make every file written so far durable where it lives (one directory fsync
        locally, an upload each in a cluster). Separate from ``write`` because a flush's
        crash matrix stops between the two (``flush.after_segment_write``), and one fsync
        covers all of a commit's files."""
        self._versions.store.publish(self.names)


class VersionSet:
    def __init__(
        self,
        store: CollectionStore,
        current: Manifest,
        retained: list[Manifest],
        on_failure: Callable[[KeelError], None],
    ) -> None:
        self.store = store
        self.current = current
        # The versions GC keeps the files of: the newest and its predecessor, so a newest
        # manifest damaged on the medium can fall back with nothing missing.
        self.retained = retained
        self._on_failure = on_failure
        self._next_id = current.next_id
        self._id_lock = threading.Lock()
        # GC runs under _gc_lock and skips _in_progress, or a flush's GC could delete a
        # compaction's output just before its commit (tests/test_concurrency.py caught it).
        self._gc_lock = threading.Lock()
        self._in_progress: set[str] = set()

    # -- ids ----------------------------------------------------------------------------

    def new_id(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive ids (segments, delete files, indexes share one
        counter); return the first. Every commit records the counter, so an id is never
        reused for a file a committed manifest could name."""
        with self._id_lock:
            first = self._next_id
            self._next_id += n
            return first

    @property
    def next_id(self) -> int:
        return self._next_id

    # -- the commit -----------------------------------------------------------------------

    def log_and_apply(self, edit: ManifestEdit, what: str) -> Manifest:
        """Commit the version ``edit`` makes of the current one and make it current; return
        it. Caller holds the flush lock. ``what`` names the step in the error."""
        cur = self.current
        new = cur.apply(edit, version=self.store.next_version(cur), next_id=self._next_id)
        try:
            self.store.commit(new)
        except OSError as e:
            failed = StorageError(f"{what} commit failed: {e}")
            self._on_failure(failed)
            raise failed from e
        except KeelError as e:  # a cluster commit refused (fenced, raced) or not known
            self._on_failure(e)
            raise
        self.current = new
        self.retained = [new, cur] if cur.version else [new]
        return new

    # -- files ------------------------------------------------------------------------------

    @contextmanager
    def new_files(self) -> Iterator[NewFiles]:
        """Write files for one commit. When the block ends normally — committed and recorded
        in memory, or abandoned (an index build that lost its segment) — the files stop
        being in progress: GC keeps them if the current versions name them, else deletes
        them. When it ends with an exception they STAY in progress until the collection is
        reopened: the commit may have reached the disk although memory does not know it,
        and deleting a file a durable manifest names would lose its rows."""
        files = NewFiles(self)
        yield files
        with self._gc_lock:
            self._in_progress.difference_update(files.names)

    def register(self, name: str) -> None:
        with self._gc_lock:
            self._in_progress.add(name)

    def collect_garbage(self, active_log: int, *, at_open: bool = False) -> list[str]:
        """Delete what neither retained version needs (storage/gc.py). Only after a commit
        is durable, or at open once recovery chose its version."""
        with self._gc_lock:
            return self.store.collect_garbage(self.retained, active_log, self._in_progress, at_open=at_open)

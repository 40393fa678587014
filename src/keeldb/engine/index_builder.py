"""The background index builder: which segments need an index, one thread that builds
them, and the commit that makes each one part of the collection.

An index is derived data: the segment file alone answers every query (exactly), so an index
can be missing, stale or unreadable without any effect on what a search may return, only on
how fast. What must hold is that an index is used only with the segment it was built from:
the manifest names it next to its segment id, the commit that adds it checks that the
segment is still in the manifest, and a compaction's commit drops its inputs' indexes in
the same version that drops the inputs (``Manifest.apply``).

Builds run in the background after flushes, compactions, ``create_index`` and the open;
``build_all`` runs them in the caller's thread (``Client.wait_for_index``). One at a time
(``lock``): a build holds no other lock while it trains, so reads and writes go on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from keeldb import telemetry
from keeldb.engine.memstate import MemState
from keeldb.engine.segment import SealedSegment
from keeldb.engine.versions import VersionSet
from keeldb.errors import KeelError
from keeldb.index.base import VectorIndex, build_index, index_kind, load_index
from keeldb.index.params import IndexSpec
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import INDEX
from keeldb.storage.manifest import IndexEntry, ManifestEdit
from keeldb.storage.segment_file import verify_file

log = logging.getLogger(__name__)
# Segments with fewer rows get no ANN index: an exact scan of them is as fast (Milvus's
# own threshold is 1,024 rows too). Tests lower it to reach the index paths cheaply.
INDEX_MIN_ROWS = int(os.environ.get("KEELDB_INDEX_MIN_ROWS", 1024))


def needs_index(seg: SealedSegment, field: str, spec: IndexSpec) -> bool:
    """Whether ``seg`` should get an index file for ``field`` and has none for ``spec`` yet
    (FLAT needs no file; small segments are searched exactly)."""
    cur = seg.indexes.get(field)
    return spec.needs_file and seg.num_rows >= INDEX_MIN_ROWS and (cur is None or cur.spec.key != spec.key)


class IndexBuilder:
    def __init__(
        self,
        mem: MemState,
        versions: VersionSet,
        flush_lock: threading.Lock,
        specs: dict[str, IndexSpec],
        *,
        closing: Callable[[], bool],
        failed: Callable[[], bool],
        collect_garbage: Callable[[], None],
        read_only: bool,
    ) -> None:
        self.mem = mem
        self.versions = versions
        self.flush_lock = flush_lock  # serialises every manifest commit
        self.specs = dict(specs)  # replaced whole, never mutated: a build reads one version
        self._closing = closing
        self._failed = failed
        self._collect_garbage = collect_garbage
        # A replica (cluster reader) builds nothing: its writer does, and the next manifest
        # brings the files.
        self.read_only = read_only
        self.lock = threading.Lock()  # one builder at a time
        self.thread: threading.Thread | None = None
        self._flags = threading.Lock()
        self._wanted = self._running = False

    # -- what is built ------------------------------------------------------------------

    def set_specs(self, specs: dict[str, IndexSpec]) -> None:
        """The index definitions changed (create_index / drop_index): stop using indexes
        built for another definition and build what is missing, in the background."""
        self.specs = dict(specs)
        for seg in self.mem.sealed_segments():
            seg.indexes = {f: a for f, a in seg.indexes.items() if f in specs and specs[f].key == a.spec.key}
        self._reopen(self.specs)
        self.start()

    def _reopen(self, specs: dict[str, IndexSpec]) -> None:
        """Open again, from its committed file, every index whose definition is the same
        but whose ``mmap.enabled`` changed (alter_index_properties): memory-mapped or read
        into memory as now asked. Under ``flush_lock``, so a build that committed with the
        old setting has attached its index before this looks (one committing after sees a
        changed spec and abandons its file). A file that no longer verifies or loads keeps
        the open index (the same contents, opened the old way) and is logged."""
        with self.flush_lock:
            files = {(e.segment, e.field): e for e in self.versions.current.indexes}
            for seg in self.mem.sealed_segments():
                reopened: dict[str, VectorIndex] = {}
                for fname, index in seg.indexes.items():
                    spec, entry = specs.get(fname), files.get((seg.sid, fname))
                    if spec is None or entry is None or spec.key != index.spec.key or spec.mmap == index.spec.mmap:
                        continue
                    try:
                        path = self.versions.store.local(entry.file)
                        verify_file(path, entry.bytes, entry.crc32)
                        reopened[fname] = load_index(spec, path)
                    except (OSError, RuntimeError, KeelError) as e:
                        log.error("index file %s could not be reopened (%s); the open one stays in use", entry.file, e)
                if reopened:
                    seg.indexes = {**seg.indexes, **reopened}

    def todo(self) -> tuple[SealedSegment, str, IndexSpec] | None:
        """The next (segment, field, spec) to build, oldest segment first."""
        specs = self.specs
        for seg in self.mem.sealed_segments():
            for fname, spec in specs.items():
                if needs_index(seg, fname, spec):
                    return seg, fname, spec
        return None

    @property
    def busy(self) -> bool:
        """Whether the builder is running or queued. False with rows still pending means it
        gave up (e.g. a full disk): those segments are searched exactly, and a caller
        polling for "finished" must not wait forever (pymilvus's create_index would)."""
        return self._running or self.lock.locked()

    def progress(self, field: str) -> tuple[int, int]:
        """(rows in segments whose index is in use or not needed, rows still waiting)."""
        spec = self.specs.get(field)
        with self.mem.lock:
            segs = list(self.mem.sealed.values())
            other = self.mem.unsealed_rows()
        pending = sum(seg.num_rows for seg in segs if spec is not None and needs_index(seg, field, spec))
        return sum(seg.num_rows for seg in segs) + other - pending, pending

    # -- building -------------------------------------------------------------------------

    def build_all(self) -> int:
        """Build and commit every missing index now, in the caller's thread; return how
        many (it queues behind a running build)."""
        if self.read_only:
            return 0
        built = 0
        with self.lock:
            while not (self._closing() or self._failed()):
                todo = self.todo()
                if todo is None or not self.build_one(*todo):
                    break
                built += 1
        return built

    @telemetry.timed(telemetry.INDEX_BUILD)
    def build_one(self, seg: SealedSegment, fname: str, spec: IndexSpec) -> bool:
        """Build one segment's index and commit it. Step by step (docs/crash-safety.md, "An
        index build"): build in memory, outside every lock (reads and writes go on); write
        and fsync the file under a fresh name (**index.after_write**: no manifest names it,
        garbage); commit ONE manifest version that adds it, after checking its segment is
        still in the manifest (**index.after_commit**: recovery loads it); then attach it to
        the segment in memory, where the next search picks it up. Returns False if it could
        not be written (e.g. the disk is full): the segment stays exact, nothing is lost."""
        index: VectorIndex | None = build_index(spec, seg.index_input(fname, spec))
        iid = self.versions.new_id()
        with self.versions.new_files() as files:
            try:
                assert index is not None
                f = files.write(INDEX, iid, index_kind(spec).file_ext, index.save)
                files.publish()
            except (OSError, RuntimeError, KeelError) as e:  # FAISS reports its own I/O errors as RuntimeError
                log.error("index build for segment %d failed to write %s: %s", seg.sid, ", ".join(files.names), e)
                return False
            index = None  # the in-memory copy goes; the committed one is used memory-mapped
            try:
                loaded = load_index(spec, self.versions.store.dir / f.name)
            except RuntimeError as e:
                log.error("index file %s does not load back (%s); segment %d stays exact", f.name, e, seg.sid)
                return False
            crash_point("index.after_write")
            with self.flush_lock:
                cur = self.versions.current
                if (
                    seg.sid not in {e.id for e in cur.segments}
                    or self.specs.get(fname) != spec
                    or self._closing()
                    or self._failed()
                ):
                    return True  # compacted away, redefined or closing meanwhile: abandon the file
                entry = IndexEntry(seg.sid, fname, spec.key, f.name, f.bytes, f.crc32)
                self.versions.log_and_apply(ManifestEdit(add_indexes=(entry,)), "index")
                crash_point("index.after_commit")
                seg.indexes = {**seg.indexes, fname: loaded}
                seg.drop_text_postings(fname)  # the file's postings replace any kept in memory
        self._collect_garbage()
        return True

    # -- the background thread --------------------------------------------------------------

    def start(self) -> None:
        """Start the background builder if there is something to build. A request that
        arrives while it runs sets ``_wanted``, which the builder checks under the same
        lock before exiting, so no new segment is left unindexed by a race."""
        if self.read_only or self.todo() is None:
            return
        with self._flags:
            self._wanted = True
            if self._running or self._closing():
                return
            self._running = True
            t = threading.Thread(target=self._worker, name="keeldb-index", daemon=True)
            self.thread = t
        t.start()

    def _worker(self) -> None:
        while True:
            with self._flags:
                if not self._wanted or self._closing():
                    self._running = False
                    return
                self._wanted = False
            try:
                self.build_all()
            except Exception as e:  # a background thread must not die silently or loudly
                log.error("background index build failed: %r", e)
                with self._flags:
                    self._running = False
                return

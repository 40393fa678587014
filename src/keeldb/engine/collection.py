"""One collection: its write path, its flush, its recovery and its snapshots.

The write path, in order, under the collection's write lock:

1. validate the batch (``rows.py``) and, for ``insert``, check no key is already live;
2. take a timestamp from the oracle;
3. append ONE log record holding the whole batch (an upsert's delete half and insert half
   share it and its timestamp);
4. apply it to memory: append rows to the growing segment, stamp ``deleted_at`` on the
   versions it overwrites or deletes, update the live-key index.

Then, outside the lock, group commit makes the record durable, and only then is the
*visible* timestamp advanced past it and the caller acknowledged. Step 4 happens before
durability, but invisibly: readers use the visible timestamp, and MVCC hides every row and
every deletion stamped later than it. So readers see exactly the durable prefix of the log,
and a reader never waits for a writer or a flush.

The crash-safety argument for flush and recovery is in ``docs/crash-safety.md``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.engine.live_index import LiveIndex
from keeldb.engine.rows import Batch, batch_from_table, decode_table, encode_table, numpy_of
from keeldb.engine.segment import NEVER, GrowingSegment, SealedSegment, Segment, SegmentView
from keeldb.errors import (
    CorruptionError,
    InvalidArgument,
    KeelError,
    PrimaryKeyExists,
    ReadOnlyReplica,
    StorageError,
)
from keeldb.index.faiss_index import AnnIndex
from keeldb.index.params import IndexSpec
from keeldb.schema import PARTITION_FIELD, CollectionSchema, DataType
from keeldb.storage.crash import crash_point
from keeldb.storage.log_format import RecordType
from keeldb.storage.log_reader import Record
from keeldb.storage.manifest import FileEntry, IndexEntry, Manifest
from keeldb.storage.oracle import LOGICAL_BITS, TimestampOracle
from keeldb.storage.segment_file import TS_COLUMN, read_table, verify_file, write_table
from keeldb.storage.store import CollectionStore, LocalStore, Log, Replay

log = logging.getLogger(__name__)
ROW_BITS = 40  # live index packs (segment id << 40 | row)
ROW_MASK = (1 << ROW_BITS) - 1
DEFAULT_AUTO_FLUSH_BYTES = 256 * 1024 * 1024
COMPACTION_MIN_SEGMENTS = 8  # merge once this many small segments (or delete files) exist
# Compaction policy knobs (Collection arguments; the environment sets the defaults):
# merged segments grow up to the target size (Milvus's default segment size is 1 GiB), a
# segment below half of it is "small", and a segment whose purgeable versions (deleted
# before the retention horizon) reach the ratio is rewritten even if it is large.
SEGMENT_TARGET_BYTES = int(os.environ.get("KEELDB_SEGMENT_TARGET_BYTES", 1 << 30))
COMPACTION_DELETED_RATIO = float(os.environ.get("KEELDB_COMPACTION_DELETED_RATIO", 0.2))
# Segments with fewer rows get no ANN index: an exact scan of them is as fast (Milvus's
# own threshold is 1,024 rows too). Tests lower it to reach the index paths cheaply.
INDEX_MIN_ROWS = int(os.environ.get("KEELDB_INDEX_MIN_ROWS", 1024))
# Versions deleted more recently than this are kept by compaction, for older snapshots
# (iterators). Tests set it to 0 through the environment to make compaction drop eagerly.
COMPACTION_RETENTION_MS = int(os.environ.get("KEELDB_COMPACTION_RETENTION_MS", 10 * 60 * 1000))


def retention_ms() -> int:
    return COMPACTION_RETENTION_MS


@dataclass
class RecoveryReport:
    manifest_version: int = 0
    segments: int = 0
    logs_replayed: list[str] = field(default_factory=list)
    records_replayed: int = 0
    torn_tail: str = ""  # what was cut, "" if nothing
    bytes_dropped: int = 0
    manifests_skipped: list[str] = field(default_factory=list)
    indexes_loaded: int = 0
    indexes_skipped: list[str] = field(default_factory=list)
    garbage_removed: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """One consistent read: a timestamp and the segments that existed at it."""

    ts: int
    views: list[SegmentView]
    count: int | None  # live rows at ts, when known without a scan

    def live_count(self) -> int:
        if self.count is not None:
            return self.count
        return sum(v.count_visible(self.ts) for v in self.views)


@dataclass
class _Pending:
    log: Log
    end: int
    ts: int
    count: int


class Collection:
    def __init__(
        self,
        directory: Path,
        schema: CollectionSchema,
        oracle: TimestampOracle,
        *,
        auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES,
        partition_ids: Iterable[int] = (0,),
        auto_compact: bool = True,
        index_specs: dict[str, IndexSpec] | None = None,
        segment_target_bytes: int = SEGMENT_TARGET_BYTES,
        compaction_deleted_ratio: float = COMPACTION_DELETED_RATIO,
        store: CollectionStore | None = None,
        read_only: bool = False,
    ) -> None:
        self.dir = directory
        self._partition_ids = set(partition_ids)
        self.schema = schema
        self.pk_name = schema.primary.name
        self.oracle = oracle
        self.auto_flush_bytes = auto_flush_bytes
        self._write_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._sealed: dict[int, SealedSegment] = {}
        self._frozen: GrowingSegment | None = None
        self._by_sid: dict[int, Segment] = {}
        self._live = LiveIndex(str_keys=schema.primary.dtype == DataType.VARCHAR)
        self._pending: deque[_Pending] = deque()
        self._delete_pks: list[Any] = []
        self._delete_ts: list[int] = []
        self._failed: KeelError | None = None
        self._closed = False
        self._bg_flush: threading.Thread | None = None
        self._bg_compact: threading.Thread | None = None
        self._compact_lock = threading.Lock()
        # Files written but not yet named by a committed manifest. GC runs under _gc_lock and
        # skips these, or a flush's GC could delete a compaction's output before its commit.
        self._gc_lock = threading.Lock()
        self._in_progress: set[str] = set()
        self._file_bytes: dict[int, int] = {}  # sealed segment id -> file size (compaction policy)
        self.auto_compact = auto_compact
        self.segment_target_bytes = segment_target_bytes
        self.compaction_deleted_ratio = compaction_deleted_ratio
        self._index_specs: dict[str, IndexSpec] = dict(index_specs or {})
        self._index_lock = threading.Lock()  # one index builder at a time
        self._bg_index: threading.Thread | None = None
        self._index_wanted = self._index_running = False
        self._closing = False
        self.report = RecoveryReport()
        self._store: CollectionStore = store if store is not None else LocalStore(directory)
        # A replica (cluster reader): recovers and then follows the writer's log; never
        # writes, flushes, compacts or builds indexes, so it never commits anything.
        self.read_only = read_only
        self._recover()
        self._maybe_build_indexes()

    # -- recovery ----------------------------------------------------------------------

    def _recover(self) -> None:
        """Rebuild memory as a pure function of (newest valid manifest, log tail after it)."""
        manifest, retained = self._store.load()
        self._manifest, self._retained = manifest, retained
        self.report.manifest_version = manifest.version
        self.report.manifests_skipped = list(self._store.skipped)
        self._next_id = manifest.next_id
        for e in manifest.segments:
            seg = SealedSegment(e.id, self.schema, read_table(self._store.local(e.file), e.bytes, e.crc32))
            self._sealed[e.id] = seg
            self._by_sid[e.id] = seg
            self._file_bytes[e.id] = e.bytes
        self.report.segments = len(self._sealed)
        self._load_indexes(manifest)
        deletes = [read_table(self._store.local(e.file), e.bytes, e.crc32) for e in manifest.deletes]
        self._rebuild_visibility(deletes)
        self._growing = self._new_growing()

        max_ts = max([0] + [int(s.ts.max()) for s in self._sealed.values() if s.num_rows])
        for t in deletes:
            if t.num_rows:
                max_ts = max(max_ts, int(pc.max(t[TS_COLUMN]).as_py()))
        flushed_max = max_ts
        replay = Replay()

        def apply(rec: Record) -> None:
            nonlocal max_ts
            self._apply_record(rec.rtype, rec.ts, rec.payload)
            max_ts = max(max_ts, rec.ts)
            crash_point("recovery.during_replay")

        self._store.replay(manifest.log_checkpoint, apply, replay)
        self.report.logs_replayed = replay.logs
        self.report.records_replayed = replay.records
        self.report.torn_tail = replay.torn_tail
        self.report.bytes_dropped = replay.bytes_dropped
        self.oracle.observe(max_ts)
        next_log = replay.next_log
        self._log = self._store.open_log(next_log)
        self._visible_ts = max_ts
        self._applied_ts = max_ts
        self._visible_count = len(self._live)
        # Every write at or below this is in a committed segment or delete file: the replayed
        # tail's records all come later than anything flushed (they follow the checkpoint).
        self._committed_through = flushed_max
        self.report.garbage_removed = self._store.collect_garbage(retained, next_log, (), at_open=True)  # no writer yet

    def _rebuild_visibility(self, deletes: list[pa.Table]) -> None:
        """Compute every sealed row's ``deleted_at`` and the live-key index, vectorised.

        Sort all events on a key (row versions and deletes) by (pk, ts, deletes first).
        A version's successor event for the same key, if any, is the delete or overwrite that
        ended it: its ``deleted_at`` is that event's timestamp. (An upsert logs a delete at
        the same timestamp as its new version; sorting deletes first keeps that delete from
        ending the new version.)
        """
        pks, tss, kinds, sids, rows = [], [], [], [], []
        for seg_id, seg in self._sealed.items():
            if not seg.num_rows:
                continue
            pks.append(seg.pk_numpy())
            tss.append(seg.ts)
            kinds.append(np.ones(seg.num_rows, dtype=np.int8))
            sids.append(np.full(seg.num_rows, seg_id, dtype=np.int64))
            rows.append(np.arange(seg.num_rows, dtype=np.int64))
        for t in deletes:
            if not t.num_rows:
                continue
            pks.append(numpy_of(t["pk"]))
            tss.append(numpy_of(t[TS_COLUMN]))
            kinds.append(np.zeros(t.num_rows, dtype=np.int8))
            sids.append(np.full(t.num_rows, -1, dtype=np.int64))
            rows.append(np.full(t.num_rows, -1, dtype=np.int64))
        if not pks:
            return
        if not deletes:
            # No delete file means no flushed delete or upsert ever happened: every version
            # is live (insert refuses live keys), so the sort below would find nothing.
            segs = [(seg_id, seg) for seg_id, seg in self._sealed.items() if seg.num_rows]
            self._live.bulk_load(
                np.concatenate([seg.pk_numpy() for _, seg in segs]),
                np.concatenate([(seg_id << ROW_BITS) + np.arange(seg.num_rows, dtype=np.int64) for seg_id, seg in segs]),
            )
            return
        pk = np.concatenate(pks)
        ts = np.concatenate(tss)
        kind = np.concatenate(kinds)
        sid = np.concatenate(sids)
        row = np.concatenate(rows)
        order = np.lexsort((kind, ts, pk))
        pk, ts, kind, sid, row = pk[order], ts[order], kind[order], sid[order], row[order]
        same_next = np.zeros(len(pk), dtype=bool)
        same_next[:-1] = pk[1:] == pk[:-1]
        end = np.full(len(pk), NEVER, dtype=np.int64)
        end[:-1] = np.where(same_next[:-1], ts[1:], NEVER)
        is_version = kind == 1
        for s in np.unique(sid[is_version]):
            sel = is_version & (sid == s)
            self._sealed[int(s)].mark_deleted(row[sel], end[sel])
        live = is_version & (end == NEVER)
        locs = (sid[live] << ROW_BITS) | row[live]
        self._live.bulk_load(pk[live], locs)  # already sorted by key: no second sort

    def _new_growing(self) -> GrowingSegment:
        seg = GrowingSegment(self._next_id, self.schema)
        self._next_id += 1
        self._by_sid[seg.sid] = seg
        return seg

    # -- applying a log record to memory (shared by live writes and replay) -------------

    def _apply_record(self, rtype: int, ts: int, payload: bytes | memoryview) -> None:
        """Replay one log record. An insert that meets an already-live key can only mean
        that the log and the segments overlap (a row in both places); applying it would
        count the row twice, so recovery stops loudly instead."""
        table = decode_table(payload)
        if rtype == RecordType.DELETE:
            self._apply_delete(table["pk"].to_pylist(), ts)
            return
        batch = batch_from_table(self.schema, table)
        if rtype == RecordType.INSERT:
            clash = self._live.first_present(batch.pks)
            if clash is not None:
                raise CorruptionError(
                    f"log record at ts {ts} inserts key {clash!r}, which a segment already holds: "
                    "the manifest's checkpoint and the log overlap"
                )
        self._apply_rows(batch, ts, rtype == RecordType.UPSERT)

    def _end_versions(self, pks: Iterable[Any], ts: int) -> list[Any]:
        """Stamp ``deleted_at = ts`` on the live version of each key; return the keys hit."""
        hit, locs = self._live.pop_many(list(pks))
        if locs:
            arr = np.asarray(locs, dtype=np.int64)
            sids = arr >> ROW_BITS
            for s in np.unique(sids):
                self._by_sid[int(s)].mark_deleted(arr[sids == s] & ROW_MASK, ts)
            self._delete_pks.extend(hit)
            self._delete_ts.extend([ts] * len(hit))
        return hit

    def _apply_rows(self, batch: Batch, ts: int, upsert: bool) -> None:
        if upsert:
            self._end_versions(batch.pks, ts)
        g = self._growing
        start = g.append(batch, ts)
        base = (g.sid << ROW_BITS) | start
        self._live.add_many(batch.pks, range(base, base + batch.num_rows))
        self._applied_ts = ts

    def _apply_delete(self, pks: list[Any], ts: int) -> list[Any]:
        hit = self._end_versions(pks, ts)
        self._applied_ts = ts
        return hit

    # -- the write path -----------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyReplica("this is a read replica: writes go to the collection's writer node")
        if self._failed:
            raise StorageError(
                f"collection is read-only after an I/O error ({self._failed}); reopen to recover"
            )
        if self._closed:
            raise KeelError("collection is closed")

    def write(self, batch: Batch, *, upsert: bool, partition_id: int = 0) -> int:
        """Log, apply and make durable one insert or upsert batch; return its timestamp."""
        if batch.num_rows == 0:
            return self._visible_ts
        with self._write_lock:
            self._check_writable()
            if partition_id not in self._partition_ids:
                raise InvalidArgument("the partition does not exist (dropped concurrently?)")
            if not upsert:
                k = self._live.first_present(batch.pks)
                if k is not None:
                    raise PrimaryKeyExists(
                        f"primary key {k!r} already exists; use upsert to overwrite it "
                        "(nothing in this batch was written)"
                    )
            payload = encode_table(batch.table)
            ts = self.oracle.next()
            rtype = RecordType.UPSERT if upsert else RecordType.INSERT
            end = self._append(rtype, ts, payload)
            self._guarded_apply(lambda: self._apply_rows(batch, ts, upsert))
            self._pending.append(_Pending(self._log, end, ts, len(self._live)))
            logw = self._log
        self._make_durable(logw, end)
        self._maybe_auto_flush()
        return ts

    def delete(self, pks: list[Any] | None = None, filter_fn: Any = None) -> tuple[int, int]:
        """Delete keys (or every row a filter selects); return (rows deleted, timestamp).

        A filter is evaluated under the write lock on the newest applied state, so the rows it
        picks are exactly the rows live just before the delete's own timestamp.
        """
        with self._write_lock:
            self._check_writable()
            if filter_fn is not None:
                with self._state_lock:
                    snap = self._snapshot_locked(self._applied_ts, None)
                pks = filter_fn(snap)
            keys = [k for k in dict.fromkeys(pks or []) if k in self._live]
            if not keys:
                return 0, self._visible_ts
            ts = self.oracle.next()
            payload = encode_table(pa.table({"pk": pa.array(keys, type=self.schema.primary.arrow_type)}))
            end = self._append(RecordType.DELETE, ts, payload)
            self._guarded_apply(lambda: self._apply_delete(keys, ts))
            self._pending.append(_Pending(self._log, end, ts, len(self._live)))
            logw = self._log
        self._make_durable(logw, end)
        return len(keys), ts

    def add_partition(self, partition_id: int) -> None:
        with self._write_lock:
            self._partition_ids.add(partition_id)

    def drop_partition(self, partition_id: int) -> int:
        """Delete every live row of a partition, in one delete record; return how many.

        The id leaves the set of writable partitions first, under the write lock, so no
        insert can slip into the partition between the delete and the catalog change.
        """
        with self._write_lock:
            self._partition_ids.discard(partition_id)
        value = pa.array([partition_id], type=pa.int64())

        def pick(snap: Snapshot) -> list[Any]:
            keys: list[Any] = []
            for view in snap.views:
                if not view.num_rows:
                    continue
                mask = view.visible(snap.ts) & np.asarray(
                    pc.is_in(view.column(PARTITION_FIELD), value_set=value), dtype=bool
                )
                rows = np.flatnonzero(mask)
                if rows.size:
                    keys.extend(view.take(rows, [self.pk_name])[self.pk_name])
            return keys

        n, _ = self.delete(filter_fn=pick)
        return n

    def _append(self, rtype: int, ts: int, payload: bytes) -> int:
        try:
            return self._log.append(rtype, ts, payload)
        except StorageError as e:
            # The append was undone (or the writer poisoned itself); memory is untouched.
            if self._log._error:  # noqa: SLF001 - the writer could not restore a clean log
                self._failed = e
            raise

    def _guarded_apply(self, fn: Any) -> None:
        try:
            fn()
        except BaseException as e:
            self._failed = StorageError(f"in-memory apply failed after logging: {e!r}")
            raise

    def _make_durable(self, logw: Log, end: int) -> None:
        try:
            logw.sync(end)
        except StorageError as e:
            self._failed = e
            raise
        self._advance_visible()

    def _advance_visible(self) -> None:
        with self._state_lock:
            pending = self._pending
            while pending and pending[0].log.synced >= pending[0].end:
                p = pending.popleft()
                self._visible_ts, self._visible_count = p.ts, p.count

    def follow(self, records: Iterable[Record]) -> int:
        """A replica applies records its writer logged after the ones it has, making them
        visible at once: they are durable already (read back from where the writer made
        them durable), in log order. Returns how many."""
        n = 0
        with self._write_lock:
            for rec in records:
                self._apply_record(rec.rtype, rec.ts, rec.payload)  # advances _applied_ts
                n += 1
            if n:
                with self._state_lock:
                    self._visible_ts = max(self._visible_ts, self._applied_ts)
                    self._visible_count = len(self._live)
        return n

    # -- reads ------------------------------------------------------------------------

    def snapshot(self, ts: int | None = None) -> Snapshot:
        """A consistent read at ``ts`` (default: the newest durable state). Never blocks on
        writers or flushes beyond a few pointer copies."""
        with self._state_lock:
            s = self._visible_ts if ts is None else min(ts, self._visible_ts)
            count = self._visible_count if s == self._visible_ts else None
            return self._snapshot_locked(s, count)

    def _snapshot_locked(self, ts: int, count: int | None) -> Snapshot:
        views = [seg.view() for seg in self._sealed.values()]
        if self._frozen is not None:
            views.append(self._frozen.view())
        views.append(self._growing.view())
        return Snapshot(ts, views, count)

    @property
    def visible_ts(self) -> int:
        return self._visible_ts

    def catch_up(self, ts: int) -> None:
        """Make every write already logged with a timestamp <= ``ts`` visible, waiting for its
        fsync if need be. This is what a Strong or Session read at guarantee time ``ts`` needs:
        acknowledged writes are visible anyway; this also covers writes still in flight."""
        while True:
            with self._state_lock:
                p = self._pending[0] if self._pending else None
            if p is None or p.ts > ts:
                return
            p.log.sync(p.end)
            self._advance_visible()

    # -- flush ------------------------------------------------------------------------

    def flushed(self, ts: int) -> bool:
        """Whether every write of this collection at or below ``ts`` is in committed segment
        and delete files (Milvus's GetFlushState): yes if nothing waits for a flush at all,
        else if ``ts`` is at or below the last flush's timestamp."""
        with self._write_lock:
            idle = self._growing.num_rows == 0 and not self._delete_pks and self._frozen is None
            return idle or ts <= self._committed_through

    def flush(self) -> int:
        """Persist everything written so far into segment files and commit one manifest;
        return the flush's timestamp: every write at or below it is now in committed files.

        Step by step (each step's crash safety is argued in docs/crash-safety.md):
        1. under the write lock, rotate: new writes go to a new log and a new growing
           segment from now on; the old growing segment and the buffered deletes freeze;
        2. sync the old log, so every frozen row is durable (and visible);
        3. write the frozen rows to a segment file and the frozen deletes to a delete file,
           fsync both and the directory;
        4. commit ONE manifest version that names the new files and moves the log
           checkpoint to the new log: from now on recovery reads those rows from the
           segment and never from the log;
        5. swap the frozen segment for the sealed one in memory, then delete obsolete logs
           and unreferenced files.
        """
        with self._flush_lock:
            with self._write_lock:
                self._check_writable()
                # Writes get their timestamps and are applied under the write lock, so every
                # write of this collection at or below the oracle's newest timestamp is in the
                # segment (or deletes) frozen here, and every later one goes to the new
                # growing segment.
                through = max(self.oracle.last(), self._applied_ts)
                if self._growing.num_rows == 0 and not self._delete_pks:
                    self._committed_through = through
                    return through
                old_log = self._log
                self._log = self._store.open_log(old_log.number + 1)
                with self._state_lock:
                    frozen = self._growing
                    self._frozen = frozen
                    self._growing = self._new_growing()
                del_pks, del_ts = self._delete_pks, self._delete_ts
                self._delete_pks, self._delete_ts = [], []
                del_id = self._next_id
                self._next_id += 1
            try:
                self._flush_frozen(old_log, frozen, del_pks, del_ts, del_id)
                self._committed_through = through
                return through
            except OSError as e:
                self._failed = StorageError(f"flush failed: {e}")
                raise self._failed from e
            except BaseException as e:
                self._failed = StorageError(f"flush failed: {e!r}")
                raise

    def _flush_frozen(
        self,
        old_log: Log,
        frozen: GrowingSegment,
        del_pks: list[Any],
        del_ts: list[int],
        del_id: int,
    ) -> None:
        crash_point("flush.after_rotate")
        old_log.sync()
        old_log.end()
        self._advance_visible()
        seg_entry = del_entry = None
        sealed_table = None
        if frozen.num_rows:
            sealed_table = frozen.to_table()
            name = self._store.file_name("seg", frozen.sid, "arrow")
            self._writing(name)
            size, crc = write_table(self.dir / name, sealed_table)
            seg_entry = FileEntry(frozen.sid, name, frozen.num_rows, size, crc, int(frozen.view().ts.max()))
        if del_pks:
            name = self._store.file_name("del", del_id, "arrow")
            self._writing(name)
            table = pa.table(
                {
                    "pk": pa.array(del_pks, type=self.schema.primary.arrow_type),
                    TS_COLUMN: pa.array(del_ts, type=pa.int64()),
                }
            )
            size, crc = write_table(self.dir / name, table)
            del_entry = FileEntry(del_id, name, len(del_pks), size, crc, max(del_ts))
        crash_point("flush.after_segment_write")
        self._store.publish(e.file for e in (seg_entry, del_entry) if e is not None)
        crash_point("flush.after_segment_fsync")
        cur = self._manifest
        new = replace(
            cur,
            version=self._next_version(),
            log_checkpoint=self._log.number,
            next_id=self._next_id,
            segments=cur.segments + ((seg_entry,) if seg_entry else ()),
            deletes=cur.deletes + ((del_entry,) if del_entry else ()),
        )
        self._store.commit(new)
        self._manifest = new
        self._retained = [new, cur] if cur.version else [new]
        if seg_entry is not None:
            # Serve the sealed rows from the file (page cache, not heap) but keep the frozen
            # segment's deleted_at array: deletes that landed during the flush are in it.
            table = pa.ipc.open_file(pa.memory_map(str(self.dir / seg_entry.file))).read_all()
            sealed = SealedSegment(frozen.sid, self.schema, table, deleted_at=frozen.deleted_at)
            # Under the write lock: a delete stamping the frozen segment between the line
            # above and the swap would otherwise be missing from sealed.min_stamped.
            with self._write_lock, self._state_lock:
                sealed.note_stamp(frozen.min_stamped)
                self._sealed[sealed.sid] = sealed
                self._by_sid[sealed.sid] = sealed
                self._file_bytes[sealed.sid] = seg_entry.bytes
                self._frozen = None
        else:
            with self._state_lock:
                self._by_sid.pop(frozen.sid, None)
                self._frozen = None
        old_log.close()
        self._written(*(e.file for e in (seg_entry, del_entry) if e is not None))
        self._collect_garbage()
        self._maybe_compact()
        self._maybe_build_indexes()

    # -- compaction ---------------------------------------------------------------------

    def compact(self, *, force: bool = False) -> bool:
        """Merge small sealed segments (and the delete files) into one, dropping versions
        that every reader can do without. Returns whether anything was merged.

        Crash safety, step by step (docs/crash-safety.md, "A compaction"): the merged
        segment is written and fsynced under a new name (**compaction.after_write**: an
        orphan, garbage); then ONE manifest version drops the inputs (and their indexes)
        and adds the output (the atomic rename is the commit); then memory swaps, under the
        write lock, so no write can stamp an input row that has just stopped being the live
        version (**compaction.after_commit**: recovery loads the output only). The output's
        index is built afterwards like any new segment's; until it is committed the output
        is searched exactly.

        A version is dropped only if it was deleted at or before the *horizon*: older than
        ``COMPACTION_RETENTION_MS`` (so iterators and older snapshots still find it) and not
        after the visible timestamp (so the delete that ended it is durable: a version
        ended by a delete that a crash then loses must not be gone). A reader holding an
        older snapshot keeps the input segments' files open (memory-mapped) and in memory
        until it lets go: GC unlinks a name, the pages stay until the last mapping goes.

        Compactions run one at a time (``_compact_lock``), so a segment takes part in at
        most one; an index build racing a compaction of its segment finds the segment gone
        at its commit and abandons its file."""
        with self._compact_lock:
            horizon = self._horizon()
            group = self._compaction_group(horizon, force)
            cur_deletes = self._manifest.deletes
            merge_deletes = len(cur_deletes) >= 2 and (force or len(cur_deletes) >= COMPACTION_MIN_SEGMENTS or bool(group))
            if not group and not merge_deletes:
                return False
            parts, keeps = [], []
            for seg in group:
                keeps.append(np.flatnonzero(seg.deleted_at > horizon))
                parts.append(seg.file_table.take(pa.array(keeps[-1])))
            with self._write_lock:
                self._check_writable()
                out_id = self._next_id
                self._next_id += 2  # the segment, and the merged delete file
            out_entry = None
            if group:
                table = pa.concat_tables(parts).combine_chunks()
                name = self._store.file_name("seg", out_id, "arrow")
                self._writing(name)
                size, crc = write_table(self.dir / name, table)
                max_ts = int(pc.max(table[TS_COLUMN]).as_py()) if table.num_rows else 0
                out_entry = FileEntry(out_id, name, table.num_rows, size, crc, max_ts)
            del_entry = None
            if merge_deletes:
                dts = [read_table(self._store.local(e.file), e.bytes, e.crc32) for e in cur_deletes]
                dtable = pa.concat_tables(dts).combine_chunks()
                dname = self._store.file_name("del", out_id + 1, "arrow")
                self._writing(dname)
                dsize, dcrc = write_table(self.dir / dname, dtable)
                del_entry = FileEntry(out_id + 1, dname, dtable.num_rows, dsize, dcrc, max(e.max_ts for e in cur_deletes))
            self._store.publish(e.file for e in (out_entry, del_entry) if e is not None)
            crash_point("compaction.after_write")
            inputs = {seg.sid for seg in group}
            merged_deletes = {e.id for e in cur_deletes} if del_entry else set()
            with self._flush_lock, self._write_lock:
                self._check_writable()
                cur = self._manifest
                new = replace(
                    cur,
                    version=self._next_version(),
                    next_id=self._next_id,
                    segments=tuple(e for e in cur.segments if e.id not in inputs) + ((out_entry,) if out_entry else ()),
                    deletes=tuple(e for e in cur.deletes if e.id not in merged_deletes) + ((del_entry,) if del_entry else ()),
                    indexes=tuple(e for e in cur.indexes if e.segment not in inputs),
                )
                self._commit_manifest(new, "compaction")
                crash_point("compaction.after_commit")
                try:
                    if out_entry is not None:
                        self._swap_in(out_entry, group, keeps)
                except BaseException as e:
                    # The manifest already names the output; memory no longer matches disk.
                    self._failed = StorageError(f"compaction swap failed after commit: {e!r}")
                    raise self._failed from e
                self._manifest = new
                self._retained = [new, cur]
            self._written(*(e.file for e in (out_entry, del_entry) if e is not None))
            self._collect_garbage()
            self._maybe_build_indexes()
            return True

    def _compaction_group(self, horizon: int, force: bool) -> list[SealedSegment]:
        """The segments the next compaction merges (oldest first), up to the target size:
        segments with enough purgeable versions, then small segments. Empty when the policy
        says nothing is worth rewriting (``force``: any two small segments are)."""
        with self._state_lock:
            segs = sorted(self._sealed.values(), key=lambda seg: seg.sid)
        small_below = self.segment_target_bytes // 2
        small = [seg for seg in segs if self._file_bytes.get(seg.sid, 0) < small_below]
        dirty = [
            seg
            for seg in segs
            if seg.num_rows
            and seg.min_stamped <= horizon
            and np.count_nonzero(seg.deleted_at <= horizon) >= self.compaction_deleted_ratio * seg.num_rows
        ]
        if not dirty and len(small) < (2 if force else COMPACTION_MIN_SEGMENTS):
            return []
        group: list[SealedSegment] = []
        total = 0
        for seg in dirty + [seg for seg in small if seg not in dirty]:
            size = self._file_bytes.get(seg.sid, 0)
            if group and total + size > self.segment_target_bytes:
                break
            group.append(seg)
            total += size
        if len(group) == 1 and group[0] not in dirty:
            return []  # rewriting one clean segment gains nothing
        return group

    def _swap_in(self, entry: FileEntry, inputs: list[SealedSegment], keeps: list[np.ndarray]) -> None:
        """Replace the inputs by the output in memory (caller holds the write lock): copy
        each kept row's current deleted_at, and point the live-key index at the new rows."""
        table = pa.ipc.open_file(pa.memory_map(str(self.dir / entry.file))).read_all()
        deleted_at = np.concatenate([seg.deleted_at[k] for seg, k in zip(inputs, keeps, strict=True)]) if inputs else None
        out = SealedSegment(entry.id, self.schema, table, deleted_at=deleted_at)
        self._file_bytes[entry.id] = entry.bytes
        live_rows = np.flatnonzero(out.deleted_at == NEVER)
        if live_rows.size:
            base = entry.id << ROW_BITS
            moved = self._live.repoint(out.pk_numpy()[live_rows], base + live_rows)
            assert moved == live_rows.size, f"compaction re-pointed {moved} of {live_rows.size} live keys"
        with self._state_lock:
            for seg in inputs:
                self._sealed.pop(seg.sid, None)
                self._by_sid.pop(seg.sid, None)
                self._file_bytes.pop(seg.sid, None)
            self._sealed[out.sid] = out
            self._by_sid[out.sid] = out

    # -- ANN indexes ----------------------------------------------------------------------
    #
    # An index is derived data: the segment file alone answers every query (exactly), so an
    # index can be missing, stale or unreadable without any effect on what a search may
    # return, only on how fast. What must hold is that an index is used only with the
    # segment it was built from: the manifest names it next to its segment id, the commit
    # that adds it checks that the segment is still in the manifest, and a compaction's
    # commit drops its inputs' indexes in the same version that drops the inputs.

    @property
    def store(self) -> CollectionStore:
        return self._store

    @property
    def index_specs(self) -> dict[str, IndexSpec]:
        return dict(self._index_specs)

    def set_index_specs(self, specs: dict[str, IndexSpec]) -> None:
        """The catalog's index definitions changed (create_index / drop_index): stop using
        indexes built for another definition and build what is missing, in the background."""
        self._index_specs = dict(specs)
        with self._state_lock:
            segs = list(self._sealed.values())
        for seg in segs:
            seg.indexes = {f: a for f, a in seg.indexes.items() if f in specs and specs[f].key == a.spec.key}
        self._maybe_build_indexes()

    def _load_indexes(self, manifest: Manifest) -> None:
        """At open: attach every committed index that matches its segment and the current
        definition. One that fails its checksum or does not load is reported and skipped:
        its segment is searched exactly until the builder replaces it."""
        for e in manifest.indexes:
            seg, spec = self._sealed.get(e.segment), self._index_specs.get(e.field)
            if seg is None or spec is None or spec.key != e.spec:
                continue
            try:
                path = self._store.local(e.file)
                verify_file(path, e.bytes, e.crc32)
                ann = AnnIndex.load(spec, path)
            except (CorruptionError, RuntimeError) as err:
                log.error("index %s is unusable (%s); its segment is searched exactly until rebuilt", e.file, err)
                self.report.indexes_skipped.append(f"{e.file}: {err}")
                continue
            if ann.ntotal != seg.num_rows:
                self.report.indexes_skipped.append(f"{e.file}: {ann.ntotal} rows, segment has {seg.num_rows}")
                continue
            seg.indexes = {**seg.indexes, e.field: ann}
            self.report.indexes_loaded += 1

    def _index_todo(self) -> tuple[SealedSegment, str, IndexSpec] | None:
        specs = self._index_specs
        with self._state_lock:
            segs = sorted(self._sealed.values(), key=lambda seg: seg.sid)
        for seg in segs:
            for fname, spec in specs.items():
                if _needs_index(seg, fname, spec):
                    return seg, fname, spec
        return None

    @property
    def index_building(self) -> bool:
        """Whether the builder is running or queued. False with rows still pending means it
        gave up (e.g. a full disk): those segments are searched exactly, and a caller
        polling for "finished" must not wait forever (pymilvus's create_index would)."""
        return self._index_running or self._index_lock.locked()

    def index_progress(self, field: str) -> tuple[int, int]:
        """(rows in segments whose index is in use or not needed, rows still waiting)."""
        spec = self._index_specs.get(field)
        with self._state_lock:
            segs = list(self._sealed.values())
            other = self._growing.num_rows + (self._frozen.num_rows if self._frozen is not None else 0)
        pending = sum(seg.num_rows for seg in segs if spec is not None and _needs_index(seg, field, spec))
        return sum(seg.num_rows for seg in segs) + other - pending, pending

    def build_indexes(self) -> int:
        """Build and commit every missing index now, in the caller's thread; return how
        many. The background builder runs this after flushes, compactions, create_index and
        open; ``Client.wait_for_index`` calls it to wait (it queues behind a running build).
        A replica builds nothing: its writer does, and the next manifest brings the files."""
        if self.read_only:
            return 0
        built = 0
        with self._index_lock:
            while not (self._closing or self._failed):
                todo = self._index_todo()
                if todo is None or not self._build_one(*todo):
                    break
                built += 1
        return built

    def _build_one(self, seg: SealedSegment, fname: str, spec: IndexSpec) -> bool:
        """Build one segment's index and commit it. Step by step (docs/crash-safety.md, "An
        index build"): build in memory, outside every lock (reads and writes go on); write
        and fsync the file under a fresh name (**index.after_write**: no manifest names it,
        garbage); commit ONE manifest version that adds it, after checking its segment is
        still in the manifest (**index.after_commit**: recovery loads it); then attach it to
        the segment in memory, where the next search picks it up. Returns False if it could
        not be written (e.g. the disk is full): the segment stays exact, nothing is lost."""
        ann: AnnIndex | None = AnnIndex.build(spec, seg.vectors[fname])
        with self._write_lock:
            iid = self._next_id
            self._next_id += 1
        name = self._store.file_name("idx", iid, "faiss")
        path = self.dir / name
        self._writing(name)
        try:
            try:
                assert ann is not None
                size, crc = ann.save(path)
                self._store.publish([name])
            except (OSError, RuntimeError, KeelError) as e:  # FAISS reports its own I/O errors as RuntimeError
                log.error("index build for segment %d failed to write %s: %s", seg.sid, name, e)
                return False
            ann = None  # the in-memory copy goes; the committed one is used memory-mapped
            try:
                loaded = AnnIndex.load(spec, path)
            except RuntimeError as e:
                log.error("index file %s does not load back (%s); segment %d stays exact", name, e, seg.sid)
                return False
            crash_point("index.after_write")
            with self._flush_lock:
                cur = self._manifest
                sids = {e.id for e in cur.segments}
                if seg.sid not in sids or self._index_specs.get(fname) != spec or self._closing or self._failed:
                    return True  # compacted away, redefined or closing meanwhile: abandon the file
                entry = IndexEntry(seg.sid, fname, spec.key, name, size, crc)
                keep = tuple(e for e in cur.indexes if e.segment in sids and (e.segment, e.field) != (seg.sid, fname))
                new = replace(cur, version=self._next_version(), next_id=self._next_id, indexes=(*keep, entry))
                self._commit_manifest(new, "index")
                crash_point("index.after_commit")
                self._manifest = new
                self._retained = [new, cur]
                seg.indexes = {**seg.indexes, fname: loaded}
        finally:
            self._written(name)
        self._collect_garbage()
        return True

    def _maybe_build_indexes(self) -> None:
        """Start the background builder if there is something to build. A request that
        arrives while it runs sets ``_index_wanted``, which the builder checks under the same
        lock before exiting, so no new segment is left unindexed by a race."""
        if self.read_only or self._index_todo() is None:
            return
        with self._state_lock:
            self._index_wanted = True
            if self._index_running or self._closing:
                return
            self._index_running = True
            t = threading.Thread(target=self._index_worker, name="keeldb-index", daemon=True)
            self._bg_index = t
        t.start()

    def _index_worker(self) -> None:
        while True:
            with self._state_lock:
                if not self._index_wanted or self._closing:
                    self._index_running = False
                    return
                self._index_wanted = False
            try:
                self.build_indexes()
            except Exception as e:  # a background thread must not die silently or loudly
                log.error("background index build failed: %r", e)
                with self._state_lock:
                    self._index_running = False
                return

    def _writing(self, *names: str) -> None:
        with self._gc_lock:
            self._in_progress.update(names)

    def _written(self, *names: str) -> None:
        """Call once the manifest naming ``names`` is committed and recorded (or abandoned)."""
        with self._gc_lock:
            self._in_progress.difference_update(names)

    def _collect_garbage(self) -> None:
        with self._gc_lock:
            self._store.collect_garbage(self._retained, self._log.number, self._in_progress)

    def _maybe_compact(self) -> None:
        """After a flush: compact in the background if the policy finds work (the check is
        the same one ``compact`` makes, so a pointless thread is never started)."""
        if not self.auto_compact:
            return
        if self._compaction_group(self._horizon(), False) or len(self._manifest.deletes) >= COMPACTION_MIN_SEGMENTS:
            self._in_background("_bg_compact", self.compact, "keeldb-compact")

    def _horizon(self) -> int:
        """Versions deleted at or before this may be dropped (see ``compact``)."""
        return min(self._visible_ts, self.oracle.last() - (retention_ms() << LOGICAL_BITS))

    def _commit_manifest(self, new: Manifest, what: str) -> None:
        """Commit ``new`` (caller holds the flush lock). A failed commit may or may not have
        reached the disk, so memory can no longer be trusted to match it: read-only until
        reopened, where recovery decides from what is actually there."""
        try:
            self._store.commit(new)
        except OSError as e:
            self._failed = StorageError(f"{what} commit failed: {e}")
            raise self._failed from e
        except KeelError as e:  # a cluster commit refused (fenced, raced) or not known
            self._failed = e
            raise

    def _next_version(self) -> int:
        return self._store.next_version(self._manifest)

    def _maybe_auto_flush(self) -> None:
        if self._growing.nbytes >= self.auto_flush_bytes:
            self._in_background("_bg_flush", self.flush, "keeldb-flush")

    def _in_background(self, slot: str, job: Any, name: str) -> None:
        """Run ``job`` in a thread unless the previous one in ``slot`` is still running. A
        failure is logged; the job itself has already put the collection in its failed state
        if the failure left anything uncertain."""

        def run() -> None:
            try:
                job()
            except KeelError as e:
                log.error("%s failed: %s", name, e)

        with self._state_lock:
            running = getattr(self, slot)
            if self._closing or (running is not None and running.is_alive()):
                return
            t = threading.Thread(target=run, name=name, daemon=True)
            setattr(self, slot, t)
        t.start()

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Stop taking writes. No flush is needed: everything acknowledged is in the log."""
        self._closing = True  # no new background job starts; index builds stop early
        # Join until none is left: a background flush starts a compaction, a compaction an
        # index build. Joining a list taken once let a compaction started by a flush being
        # joined outlive close() and race the next open's manifest commits.
        while True:
            with self._state_lock:
                running = [t for t in (self._bg_flush, self._bg_compact, self._bg_index) if t is not None and t.is_alive()]
            if not running:
                break
            for t in running:
                t.join()
        with self._flush_lock, self._write_lock:
            if self._closed:
                return
            self._closed = True
            if not self._failed:
                try:
                    self._log.sync()
                except StorageError:
                    pass
            self._log.close()

    @property
    def live_keys(self) -> int:
        return len(self._live)

    def stats(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {
            "row_count": snap.live_count(),
            "sealed_segments": len(self._sealed),
            "growing_rows": self._growing.num_rows,
            "manifest_version": self._manifest.version,
            "log": self._log.number,
        }


def _needs_index(seg: SealedSegment, field: str, spec: IndexSpec) -> bool:
    """Whether ``seg`` should get an index file for ``field`` and has none for ``spec`` yet
    (FLAT needs no file; small segments are searched exactly)."""
    cur = seg.indexes.get(field)
    return spec.needs_file and seg.num_rows >= INDEX_MIN_ROWS and (cur is None or cur.spec.key != spec.key)

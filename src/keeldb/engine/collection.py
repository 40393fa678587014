"""One collection: its write path, its flush and its snapshots, and the wiring of the rest.

The write path, in order, under the collection's write lock:

1. validate the batch (``rows.py``) and, for ``insert``, check no key is already live;
2. take a timestamp from the oracle;
3. append ONE log record holding the whole batch (an upsert's delete half and insert half
   share it and its timestamp);
4. apply it to memory (``memstate.py``): append rows to the growing segment, stamp
   ``deleted_at`` on the versions it overwrites or deletes, update the live-key index.

Then, outside the lock, group commit makes the record durable, and only then is the
*visible* timestamp advanced past it and the caller acknowledged. Step 4 happens before
durability, but invisibly: readers use the visible timestamp, and MVCC hides every row and
every deletion stamped later than it. So readers see exactly the durable prefix of the log,
and a reader never waits for a writer or a flush.

The rest of the engine, one concept a module (LevelDB's split, which this follows):

- ``recovery.py``: the open — memory rebuilt from the newest manifest and the log tail;
- ``memstate.py``: the rows in memory, what every log record is applied to;
- ``versions.py``: the manifest versions and ``log_and_apply``, the ONE way any flush,
  compaction or index build changes them, and the one helper that writes their files;
- ``compaction.py``: the pure compaction policy and the merge that carries it out;
- ``index_builder.py``: the background index builder.

This module keeps what ties them together: the locks, the visible timestamp, the log being
written, the flush (it moves the log checkpoint, so it is the write path's other half) and
the background threads. The crash-safety argument is in ``docs/crash-safety.md``.

Locks, always taken in this order: the compactor's and the index builder's ``lock`` (one
compaction, one build at a time) → ``_flush_lock`` (one flush at a time; serialises every
manifest commit) → ``_write_lock`` (writes, log rotation, swaps of committed files into
memory) → ``_state_lock`` (the segment lists and the visible timestamp: what a snapshot
reads).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb import telemetry
from keeldb.engine import compaction, schema_change, ttl
from keeldb.engine.compaction import Compactor
from keeldb.engine.index_builder import IndexBuilder
from keeldb.engine.live_index import ROW_BITS, ROW_MASK
from keeldb.engine.recovery import RecoveryReport, recover
from keeldb.engine.rows import Batch, batch_from_table, encode_table, numpy_of
from keeldb.engine.segment import GrowingSegment, SealedSegment, SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.errors import (
    InvalidArgument,
    KeelError,
    PrimaryKeyExists,
    ReadOnlyReplica,
    StorageError,
)
from keeldb.index.params import IndexSpec
from keeldb.schema import PARTITION_FIELD, CollectionSchema
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import ARROW, DELETES, SEGMENT
from keeldb.storage.log_format import RecordType
from keeldb.storage.log_reader import Record
from keeldb.storage.manifest import FileEntry, ManifestEdit
from keeldb.storage.oracle import LOGICAL_BITS, TimestampOracle
from keeldb.storage.segment_file import TS_COLUMN, map_table, write_table
from keeldb.storage.store import CollectionStore, LocalStore, Log

__all__ = ["DEFAULT_AUTO_FLUSH_BYTES", "Collection", "RecoveryReport", "Snapshot"]

log = logging.getLogger(__name__)
# What a partial update reads the current rows with: (keys, column names) -> per key the
# live version's stored values, or None.
RowReader = Callable[[list[Any], list[str]], list[dict[str, Any] | None]]
DEFAULT_AUTO_FLUSH_BYTES = 256 * 1024 * 1024


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
        segment_target_bytes: int = compaction.SEGMENT_TARGET_BYTES,
        compaction_deleted_ratio: float = compaction.COMPACTION_DELETED_RATIO,
        store: CollectionStore | None = None,
        read_only: bool = False,
        ttl_seconds: int = 0,
    ) -> None:
        self.dir = directory
        self._ttl_ms = max(0, ttl_seconds) * 1000  # collection.ttl.seconds (engine/ttl.py)
        self._partition_ids = set(partition_ids)
        self.schema = schema
        self.pk_name = schema.primary.name
        # Plain searches already checked, by their parameters (client.py ``_PlainSearch``):
        # valid while the catalog entry and the schema they were checked against are current.
        self.search_plans: dict[Any, Any] = {}
        self.oracle = oracle
        self.auto_flush_bytes = auto_flush_bytes
        self.auto_compact = auto_compact
        self._write_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._failed: KeelError | None = None
        self._closed = False
        self._closing = False
        self._bg_flush: threading.Thread | None = None
        self._bg_compact: threading.Thread | None = None
        self._store: CollectionStore = store if store is not None else LocalStore(directory)
        # A replica (cluster reader): recovers and then follows the writer's log; never
        # writes, flushes, compacts or builds indexes, so it never commits anything.
        self.read_only = read_only

        r = recover(self._store, schema, oracle, dict(index_specs or {}), self._fail)
        self.report: RecoveryReport = r.report
        self._versions = r.versions
        self._mem = r.mem
        self._state_lock = self._mem.lock  # one lock for what a snapshot reads
        self._log: Log = r.log
        self._visible_ts = r.max_ts
        self._visible_count = len(self._mem.live)
        self._committed_through = r.committed_through
        self._compactor = Compactor(
            schema,
            self._mem,
            self._versions,
            self._flush_lock,
            self._write_lock,
            self._check_writable,
            self._fail,
            target_bytes=segment_target_bytes,
            deleted_ratio=compaction_deleted_ratio,
            expire_cutoff=self._expire_cutoff,
        )
        self._indexer = IndexBuilder(
            self._mem,
            self._versions,
            self._flush_lock,
            dict(index_specs or {}),
            closing=lambda: self._closing,
            failed=lambda: self._failed is not None,
            collect_garbage=self._collect_garbage,
            read_only=read_only,
        )
        self._indexer.start()

    def _fail(self, error: KeelError) -> None:
        """Something that may or may not have reached the disk failed: memory can no longer
        be trusted to match it, so the collection is read-only until reopened, where
        recovery decides from what is actually there."""
        self._failed = error

    @property
    def store(self) -> CollectionStore:
        return self._store

    # -- the write path -----------------------------------------------------------------

    @property
    def failed(self) -> bool:
        """Read-only after an I/O error whose effect on disk is uncertain (until reopened)."""
        return self._failed is not None

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyReplica("this is a read replica: writes go to the collection's writer node")
        if self._failed:
            raise StorageError(
                f"collection is read-only after an I/O error ({self._failed}); reopen to recover"
            )
        if self._closed:
            raise KeelError("collection is closed")

    def write(self, batch: Batch, *, upsert: bool, partition_id: int | None = 0) -> int:
        """Log, apply and make durable one insert or upsert batch; return its timestamp.
        ``partition_id`` None: the rows carry their own partition ids (partition key)."""
        if batch.num_rows == 0:
            return self._visible_ts
        with self._write_lock:
            self._check_writable()
            end, ts, logw = self._log_rows(batch, upsert, partition_id)
        self._make_durable(logw, end)
        self._maybe_auto_flush()
        return ts

    def write_merged(self, make: Callable[[RowReader], Batch], *, partition_id: int | None = 0) -> tuple[Batch, int]:
        """A partial update: ``make`` builds the batch from the current values of the rows it
        names (``RowReader``), under the write lock, so no other write can land between
        that read and this record; the batch is then logged and applied as ONE UPSERT record
        (one timestamp), exactly like a full upsert. Returns the batch and its timestamp."""
        with self._write_lock:
            self._check_writable()
            batch = make(self._current_rows)
            if batch.num_rows == 0:
                return batch, self._visible_ts
            end, ts, logw = self._log_rows(batch, True, partition_id)
        self._make_durable(logw, end)
        self._maybe_auto_flush()
        return batch, ts

    def _log_rows(self, batch: Batch, upsert: bool, partition_id: int | None) -> tuple[int, int, Log]:
        """Steps 2-4 of the write path for one batch (caller holds the write lock)."""
        mem = self._mem
        if batch.table.schema.names != mem.growing.arrow_schema.names:
            # Converted against a schema a change has since replaced: the batch is as if
            # written just before the change, so its rows read the added fields' defaults.
            batch = batch_from_table(self.schema, batch.table)
        if partition_id is None:
            wanted = set(np.unique(numpy_of(batch.table[PARTITION_FIELD])).tolist())
        else:
            wanted = {partition_id}
        if not wanted <= self._partition_ids:
            raise InvalidArgument("the partition does not exist (dropped concurrently?)")
        if not upsert:
            k = mem.live.first_present(batch.pks)
            if k is not None:
                # A key whose live version has expired (TTL) is not there for a reader: the
                # insert is taken, logged as an UPSERT so the expired version ends with it.
                live = [p for p in batch.pks if p in mem.live]
                fresh = [p for p, gone in zip(live, self._expired(live), strict=True) if not gone]
                if fresh:
                    raise PrimaryKeyExists(
                        f"primary key {fresh[0]!r} already exists; use upsert to overwrite it "
                        "(nothing in this batch was written)"
                    )
                upsert = True
        payload = encode_table(batch.table)
        ts = self.oracle.next()
        rtype = RecordType.UPSERT if upsert else RecordType.INSERT
        end = self._append(rtype, ts, payload)
        self._guarded_apply(lambda: mem.apply_rows(batch, ts, upsert))
        self._pending.append(_Pending(self._log, end, ts, len(mem.live)))
        return end, ts, self._log

    def delete(self, pks: list[Any] | None = None, filter_fn: Any = None) -> tuple[int, int]:
        """Delete keys (or every row a filter selects); return (rows deleted, timestamp).

        A filter is evaluated under the write lock on the newest applied state, so the rows it
        picks are exactly the rows live just before the delete's own timestamp.
        """
        mem = self._mem
        with self._write_lock:
            self._check_writable()
            if filter_fn is not None:
                with self._state_lock:
                    now = max(mem.applied_ts, self.oracle.last())
                    snap = Snapshot(mem.applied_ts, self._stamp(mem.views(), now), None, self.schema)
                pks = filter_fn(snap)
            keys = [k for k in dict.fromkeys(pks or []) if k in mem.live]
            if not keys:
                return 0, self._visible_ts
            # Expired versions (TTL) are ended too -- a later, longer TTL must not bring a
            # deleted row back -- but were not visible, so they do not count as deleted.
            expired = sum(self._expired(keys)) if self._ttl_ms else 0
            ts = self.oracle.next()
            payload = encode_table(pa.table({"pk": pa.array(keys, type=self.schema.primary.arrow_type)}))
            end = self._append(RecordType.DELETE, ts, payload)
            self._guarded_apply(lambda: mem.apply_delete(keys, ts))
            self._pending.append(_Pending(self._log, end, ts, len(mem.live)))
            logw = self._log
        self._make_durable(logw, end)
        return len(keys) - expired, ts

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
                self._fail(e)
            raise

    def _guarded_apply(self, fn: Any) -> None:
        try:
            fn()
        except BaseException as e:
            self._fail(StorageError(f"in-memory apply failed after logging: {e!r}"))
            raise

    def _make_durable(self, logw: Log, end: int) -> None:
        try:
            logw.sync(end)
        except StorageError as e:
            self._fail(e)
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
                self._mem.apply_record(rec.rtype, rec.ts, rec.payload)  # advances applied_ts
                n += 1
            if n:
                with self._state_lock:
                    self._visible_ts = max(self._visible_ts, self._mem.applied_ts)
                    self._visible_count = len(self._mem.live)
        return n

    # -- reads ------------------------------------------------------------------------

    def snapshot(self, ts: int | None = None) -> Snapshot:
        """A consistent read at ``ts`` (default: the newest durable state). Never blocks on
        writers or flushes beyond a few pointer copies (with a TTL, a newest-state read may
        wait for a writer's in-memory apply: see ``_refresh_visible``)."""
        if self._ttl_ms and ts is None:
            self._refresh_visible()
        with self._state_lock:
            s = self._visible_ts if ts is None else min(ts, self._visible_ts)
            count = self._visible_count if s == self._visible_ts and not self._ttl_ms else None
            return Snapshot(s, self._stamp(self._mem.views(), s), count, self.schema)

    def sole_segment(self) -> tuple[int, SealedSegment] | None:
        """(live rows, segment) when the newest state's only rows are those of one sealed
        segment, every one visible -- what ``snapshot()`` would list as that segment plus
        empty ones -- else None. The per-call check of a kept plain search
        (``search.SoleSegmentSearch``), which then needs no snapshot: building one (a view
        per segment) cost as much as the rest of its own work. Without a TTL only (expiry
        moves with the clock, ``snapshot`` stamps it on the views)."""
        if self._ttl_ms:
            return None
        with self._state_lock:
            mem = self._mem
            if mem.growing.num_rows or (mem.frozen is not None and mem.frozen.num_rows):
                return None
            sole = None
            for seg in mem.sealed.values():
                if seg.num_rows:
                    if sole is not None:
                        return None
                    sole = seg
            ts, count = self._visible_ts, self._visible_count
        # As Snapshot's views are read: after the lock, a delete newer than ts may be
        # stamping; all_visible is False at ts only for stamps at or before it.
        return (count, sole) if sole is not None and sole.all_visible(ts) else None

    # -- collection TTL (engine/ttl.py) ------------------------------------------------------

    @property
    def ttl_seconds(self) -> int:
        return self._ttl_ms // 1000

    def set_ttl(self, seconds: int) -> None:
        """The ``collection.ttl.seconds`` property changed (0: no TTL)."""
        with self._state_lock:
            self._ttl_ms = max(0, seconds) * 1000

    def _expire_cutoff(self, ts: int) -> int:
        return ttl.expire_before(ts, self._ttl_ms)

    def _stamp(self, views: list[SegmentView], at: int) -> list[SegmentView]:
        cut = self._expire_cutoff(at)
        if cut:
            for v in views:
                v.expire_before = cut
        return views

    def _refresh_visible(self) -> None:
        """Move the visible timestamp to a fresh oracle timestamp when no write is in flight,
        so that a TTL is measured against now, not against the last write (engine/ttl.py).
        Under the write lock: a writer takes its timestamp and joins ``_pending`` under it,
        so with ``_pending`` empty every timestamp below the fresh one is already visible."""
        if self.read_only or self._closed or self._failed:
            return
        with self._write_lock, self._state_lock:
            if not self._pending:
                self._visible_ts = max(self._visible_ts, self.oracle.next())

    def _expired(self, keys: list[Any]) -> list[bool]:
        """For live keys: whether each one's live version has expired by now (caller holds
        the write lock; every later write's timestamp is past ``oracle.last()``)."""
        if not self._ttl_ms:
            return [False] * len(keys)
        cut = self._expire_cutoff(self.oracle.last())
        out = []
        for k in keys:
            loc = self._mem.live.get(k)
            seg = self._mem.by_sid[loc >> ROW_BITS] if loc is not None else None
            out.append(seg is not None and int(seg.view().ts[loc & ROW_MASK]) <= cut)
        return out

    def _current_rows(self, keys: list[Any], names: list[str]) -> list[dict[str, Any] | None]:
        """The live, unexpired version of each key as ``{name: stored value}``, or None
        (caller holds the write lock: the newest applied state, which precedes any record
        logged next)."""
        mem = self._mem
        gone = self._expired(keys)
        by_seg: dict[int, list[tuple[int, int]]] = {}
        for i, k in enumerate(keys):
            loc = mem.live.get(k)
            if loc is not None and not gone[i]:
                by_seg.setdefault(loc >> ROW_BITS, []).append((i, loc & ROW_MASK))
        out: list[dict[str, Any] | None] = [None] * len(keys)
        for sid, pairs in by_seg.items():
            view = mem.by_sid[sid].view()
            got = view.take(np.array([r for _, r in pairs], dtype=np.int64), names)
            for j, (i, _) in enumerate(pairs):
                out[i] = {n: got[n][j] for n in names}
        return out

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

    @property
    def live_keys(self) -> int:
        return len(self._mem.live)

    def stats(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {
            "row_count": snap.live_count(),
            "sealed_segments": len(self._mem.sealed),
            "growing_rows": self._mem.growing.num_rows,
            "manifest_version": self._versions.current.version,
            "log": self._log.number,
        }

    # -- flush ------------------------------------------------------------------------

    def flushed(self, ts: int) -> bool:
        """Whether every write of this collection at or below ``ts`` is in committed segment
        and delete files (Milvus's GetFlushState): yes if nothing waits for a flush at all,
        else if ``ts`` is at or below the last flush's timestamp."""
        mem = self._mem
        with self._write_lock:
            idle = mem.growing.num_rows == 0 and not mem.delete_pks and mem.frozen is None
            return idle or ts <= self._committed_through

    @telemetry.timed(telemetry.FLUSH)
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
        mem = self._mem
        with self._flush_lock:
            with self._write_lock:
                self._check_writable()
                # Writes get their timestamps and are applied under the write lock, so every
                # write of this collection at or below the oracle's newest timestamp is in the
                # segment (or deletes) frozen here, and every later one goes to the new
                # growing segment.
                through = max(self.oracle.last(), mem.applied_ts)
                if mem.growing.num_rows == 0 and not mem.delete_pks:
                    self._committed_through = through
                    return through
                old_log = self._log
                self._log = self._store.open_log(old_log.number + 1)
                frozen, del_pks, del_ts = mem.freeze()
                del_id = self._versions.new_id()
            try:
                self._flush_frozen(old_log, frozen, del_pks, del_ts, del_id)
                self._committed_through = through
                return through
            except OSError as e:
                failed = StorageError(f"flush failed: {e}")
                self._fail(failed)
                raise failed from e
            except BaseException as e:
                self._fail(StorageError(f"flush failed: {e!r}"))
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
        with self._versions.new_files() as files:
            seg_entry = del_entry = None
            if frozen.num_rows:
                sealed_table = frozen.to_table()
                f = files.write(SEGMENT, frozen.sid, ARROW, lambda path: write_table(path, sealed_table))
                seg_entry = FileEntry(frozen.sid, f.name, frozen.num_rows, f.bytes, f.crc32, int(frozen.view().ts.max()))
            if del_pks:
                table = pa.table(
                    {
                        "pk": pa.array(del_pks, type=self.schema.primary.arrow_type),
                        TS_COLUMN: pa.array(del_ts, type=pa.int64()),
                    }
                )
                f = files.write(DELETES, del_id, ARROW, lambda path: write_table(path, table))
                del_entry = FileEntry(del_id, f.name, len(del_pks), f.bytes, f.crc32, max(del_ts))
            crash_point("flush.after_segment_write")
            files.publish()
            crash_point("flush.after_segment_fsync")
            self._versions.log_and_apply(
                ManifestEdit(
                    add_segments=(seg_entry,) if seg_entry else (),
                    add_deletes=(del_entry,) if del_entry else (),
                    log_checkpoint=self._log.number,
                ),
                "flush",
            )
            if seg_entry is not None:
                # Serve the sealed rows from the file (page cache, not heap) but keep the frozen
                # segment's deleted_at array: deletes that landed during the flush are in it.
                sealed = SealedSegment(
                    frozen.sid, self.schema, map_table(self.dir / seg_entry.file), deleted_at=frozen.deleted_at
                )
                with self._write_lock:
                    self._mem.seal(frozen, sealed, seg_entry.bytes)
            else:
                self._mem.seal(frozen, None, 0)
            old_log.close()
        self._collect_garbage()
        self._maybe_compact()
        self._indexer.start()

    def _maybe_auto_flush(self) -> None:
        if self._mem.growing.nbytes >= self.auto_flush_bytes:
            self._in_background("_bg_flush", self.flush, "keeldb-flush")

    # -- schema change (engine/schema_change.py) -----------------------------------------------

    def change_schema(self, schema: CollectionSchema, commit: Callable[[], None]) -> None:
        """ONE schema change: ``commit`` makes it durable (the catalog commit) while no flush,
        compaction or write runs; then every segment in memory reads with ``schema``. A crash
        before the commit leaves the old schema, after it the new one: recovery conforms
        whatever it loads to the schema the catalog names."""
        with self._compactor.lock, self._flush_lock, self._write_lock:
            self._check_writable()
            crash_point("schema.before_commit")
            commit()
            crash_point("schema.after_commit")
            schema_change.apply(self._mem, schema)
            self.schema = schema
            self._compactor.schema = schema

    # -- compaction ---------------------------------------------------------------------

    @telemetry.timed(telemetry.COMPACTION)
    def compact(self, *, force: bool = False) -> bool:
        """Merge small sealed segments (and the delete files) into one, dropping versions
        that every reader can do without; return whether anything was merged. What is
        merged is ``compaction.pick_compaction``'s call, how is ``Compactor.run``'s."""
        with self._compactor.lock:
            if not self._compactor.run(self._horizon(), force):
                return False
            self._collect_garbage()
            self._indexer.start()
            return True

    def _maybe_compact(self) -> None:
        """After a flush: compact in the background if the policy finds work (the check is
        the same one ``compact`` makes, so a pointless thread is never started)."""
        if not self.auto_compact:
            return
        if self._compactor.pick(self._horizon(), False, len(self._versions.current.deletes)) is not None:
            self._in_background("_bg_compact", self.compact, "keeldb-compact")

    def _horizon(self) -> int:
        """Versions deleted at or before this may be dropped (see ``compaction.py``)."""
        return min(self._visible_ts, self.oracle.last() - (compaction.COMPACTION_RETENTION_MS << LOGICAL_BITS))

    # -- indexes ------------------------------------------------------------------------

    @property
    def index_specs(self) -> dict[str, IndexSpec]:
        return dict(self._indexer.specs)

    def json_casts(self) -> dict[tuple[str, tuple[str | int, ...]], str]:
        """The JSON paths whose index has a ``json_cast_function``: a filter comparing such a
        path with numbers reads the cast's numbers, in every segment (``expr.parse_filter``)."""
        return {
            (s.build["field"], tuple(s.build["path"])): s.build["cast_function"]
            for s in self._indexer.specs.values()
            if "cast_function" in s.build
        }

    def set_index_specs(self, specs: dict[str, IndexSpec]) -> None:
        """The catalog's index definitions changed (create_index / drop_index): stop using
        indexes built for another definition and build what is missing, in the background."""
        self._indexer.set_specs(specs)

    @property
    def index_building(self) -> bool:
        """Whether the builder is running or queued (``IndexBuilder.busy``)."""
        return self._indexer.busy

    def index_progress(self, field: str) -> tuple[int, int]:
        """(rows in segments whose index is in use or not needed, rows still waiting)."""
        return self._indexer.progress(field)

    def build_indexes(self) -> int:
        """Build and commit every missing index now, in the caller's thread; return how
        many. The background builder runs this after flushes, compactions, create_index and
        open; ``Client.wait_for_index`` calls it to wait (it queues behind a running build).
        A replica builds nothing: its writer does, and the next manifest brings the files."""
        return self._indexer.build_all()

    # -- background work and lifecycle ------------------------------------------------

    def _collect_garbage(self) -> None:
        self._versions.collect_garbage(self._log.number)

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

    def wait_background(self) -> None:
        """Return once no background flush, compaction or index build is running. Joins
        until none is left: a background flush starts a compaction, a compaction an index
        build. (Joining a list taken once let a compaction started by a flush being joined
        outlive close() and race the next open's manifest commits.) What the caller's own
        threads start meanwhile is theirs to wait for."""
        while True:
            with self._state_lock:
                threads = (self._bg_flush, self._bg_compact, self._indexer.thread)
                running = [t for t in threads if t is not None and t.is_alive()]
            if not running:
                return
            for t in running:
                t.join()

    def close(self) -> None:
        """Stop taking writes. No flush is needed: everything acknowledged is in the log."""
        self._closing = True  # no new background job starts; index builds stop early
        self.wait_background()
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

"""A collection's rows in memory: segments, the live-key index, unflushed deletes.

This is what a log record is applied to — by a live write, by recovery's replay and by a
replica following its writer, the same code for all three, so that memory after a crash
is what it was before it — and what a snapshot lists. It knows nothing of files, logs or
manifests: the flush, compaction and recovery that move rows between memory and disk call
``freeze``/``seal``, ``replace`` and ``add_sealed``.

Segments: sealed ones (loaded from committed segment files), at most one *frozen* one (a
flush is writing it out) and the *growing* one that takes appends. ``lock`` guards those
lists, so that a snapshot lists each row in exactly one of them (a row moves from frozen to
sealed in one swap under it). Everything else here is changed only under the collection's
write lock, which callers hold; ``lock`` is the collection's state lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from keeldb.engine.live_index import ROW_BITS, ROW_MASK, LiveIndex
from keeldb.engine.rows import Batch, batch_from_table, decode_table
from keeldb.engine.segment import NEVER, GrowingSegment, SealedSegment, Segment, SegmentView
from keeldb.errors import CorruptionError
from keeldb.schema import CollectionSchema, DataType
from keeldb.storage.log_format import RecordType


class MemState:
    def __init__(self, schema: CollectionSchema, new_id: Callable[[], int]) -> None:
        self.schema = schema
        self.lock = threading.Lock()
        self._new_id = new_id
        self.sealed: dict[int, SealedSegment] = {}
        self.frozen: GrowingSegment | None = None
        self.by_sid: dict[int, Segment] = {}  # every segment a live-index location can name
        self.file_bytes: dict[int, int] = {}  # sealed segment id -> file size (compaction policy)
        self.live = LiveIndex(str_keys=schema.primary.dtype == DataType.VARCHAR)
        self.delete_pks: list[Any] = []  # deletes (and upserts' delete halves) not yet flushed
        self.delete_ts: list[int] = []
        self.applied_ts = 0  # the newest record applied (durable or not yet)
        self.growing = self._new_growing()

    def _new_growing(self) -> GrowingSegment:
        seg = GrowingSegment(self._new_id(), self.schema)
        self.by_sid[seg.sid] = seg
        return seg

    # -- reading ------------------------------------------------------------------------

    def views(self) -> list[SegmentView]:
        """Every segment's current view, sealed first (caller holds ``lock``)."""
        views = [seg.view() for seg in self.sealed.values()]
        if self.frozen is not None:
            views.append(self.frozen.view())
        views.append(self.growing.view())
        return views

    def sealed_segments(self) -> list[SealedSegment]:
        """The sealed segments, oldest (smallest id) first."""
        with self.lock:
            return sorted(self.sealed.values(), key=lambda seg: seg.sid)

    def unsealed_rows(self) -> int:
        """Rows in the growing and frozen segments (caller holds ``lock``)."""
        return self.growing.num_rows + (self.frozen.num_rows if self.frozen is not None else 0)

    # -- applying a log record (live writes, replay, replicas) ---------------------------

    def apply_record(self, rtype: int, ts: int, payload: bytes | memoryview) -> None:
        """Apply one logged record. An insert that meets an already-live key can only mean
        that the log and the segments overlap (a row in both places); applying it would
        count the row twice, so recovery stops loudly instead."""
        table = decode_table(payload)
        if rtype == RecordType.DELETE:
            self.apply_delete(table["pk"].to_pylist(), ts)
            return
        batch = batch_from_table(self.schema, table)
        if rtype == RecordType.INSERT:
            clash = self.live.first_present(batch.pks)
            if clash is not None:
                raise CorruptionError(
                    f"log record at ts {ts} inserts key {clash!r}, which a segment already holds: "
                    "the manifest's checkpoint and the log overlap"
                )
        self.apply_rows(batch, ts, rtype == RecordType.UPSERT)

    def apply_rows(self, batch: Batch, ts: int, upsert: bool) -> None:
        if upsert:
            self._end_versions(batch.pks, ts)
        g = self.growing
        start = g.append(batch, ts)
        base = (g.sid << ROW_BITS) | start
        self.live.add_many(batch.pks, range(base, base + batch.num_rows))
        self.applied_ts = ts

    def apply_delete(self, pks: list[Any], ts: int) -> list[Any]:
        hit = self._end_versions(pks, ts)
        self.applied_ts = ts
        return hit

    def _end_versions(self, pks: Iterable[Any], ts: int) -> list[Any]:
        """Stamp ``deleted_at = ts`` on the live version of each key; return the keys hit."""
        hit, locs = self.live.pop_many(list(pks))
        if locs:
            arr = np.asarray(locs, dtype=np.int64)
            sids = arr >> ROW_BITS
            for s in np.unique(sids):
                self.by_sid[int(s)].mark_deleted(arr[sids == s] & ROW_MASK, ts)
            self.delete_pks.extend(hit)
            self.delete_ts.extend([ts] * len(hit))
        return hit

    # -- moving rows between memory and files ---------------------------------------------

    def add_sealed(self, seg: SealedSegment, file_bytes: int) -> None:
        """Recovery: a segment the manifest names."""
        self.sealed[seg.sid] = seg
        self.by_sid[seg.sid] = seg
        self.file_bytes[seg.sid] = file_bytes

    def freeze(self) -> tuple[GrowingSegment, list[Any], list[int]]:
        """A flush starts (caller holds the write lock): the growing segment and the
        buffered deletes freeze, and new writes go to a new growing segment."""
        with self.lock:
            frozen = self.frozen = self.growing
            self.growing = self._new_growing()
        del_pks, del_ts = self.delete_pks, self.delete_ts
        self.delete_pks, self.delete_ts = [], []
        return frozen, del_pks, del_ts

    def seal(self, frozen: GrowingSegment, sealed: SealedSegment | None, file_bytes: int) -> None:
        """A flush committed: the frozen segment is replaced by ``sealed`` (None when it had
        no rows). With a segment the caller holds the write lock: a delete stamping the
        frozen segment between building ``sealed`` and this swap would otherwise be missing
        from ``sealed.min_stamped`` (its ``deleted_at`` is the frozen segment's array)."""
        with self.lock:
            if sealed is not None:
                sealed.note_stamp(frozen.min_stamped)
                self.sealed[sealed.sid] = sealed
                self.by_sid[sealed.sid] = sealed
                self.file_bytes[sealed.sid] = file_bytes
            else:
                self.by_sid.pop(frozen.sid, None)
            self.frozen = None

    def replace(self, inputs: list[SealedSegment], out: SealedSegment | None, file_bytes: int) -> None:
        """A compaction committed (caller holds the write lock): point the live-key index
        at the output's live rows, then swap the segments. Holding the write lock means no
        write can stamp an input row after its ``deleted_at`` was copied into ``out``."""
        if out is not None:
            live_rows = np.flatnonzero(out.deleted_at == NEVER)
            if live_rows.size:
                base = out.sid << ROW_BITS
                moved = self.live.repoint(out.pk_numpy()[live_rows], base + live_rows)
                assert moved == live_rows.size, f"compaction re-pointed {moved} of {live_rows.size} live keys"
        with self.lock:
            for seg in inputs:
                self.sealed.pop(seg.sid, None)
                self.by_sid.pop(seg.sid, None)
                self.file_bytes.pop(seg.sid, None)
            if out is not None:
                self.sealed[out.sid] = out
                self.by_sid[out.sid] = out
                self.file_bytes[out.sid] = file_bytes

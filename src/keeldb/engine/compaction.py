"""Compaction: which segments to merge (a pure policy) and the merge itself.

As in LevelDB, the policy (``PickCompaction``) is apart from the work
(``DoCompactionWork``): ``pick_compaction`` is a function of plain numbers — segment ids,
file sizes, rows, versions purgeable at the horizon, delete files — so it is tested without
threads or files (tests/test_compaction_policy.py), and ``Compactor.run`` carries a pick
out.

Policy (``Collection`` arguments, defaults from the environment): a segment below half the
target size is *small*; a segment whose versions deleted at or before the horizon reach
``deleted_ratio`` of its rows is *dirty*. A compaction is worth running when there are
``COMPACTION_MIN_SEGMENTS`` small segments or any dirty one (``force``: two small ones),
and the delete files are merged along once there are two or more of them. One compaction
merges dirty segments first, then small ones, oldest first, up to the target size.

The horizon is min(visible timestamp, now - retention): a version is dropped only once the
delete that ended it is durable (a version ended by a delete a crash then loses must not be
gone) and no snapshot younger than the retention can still read it (iterators).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.engine import schema_change
from keeldb.engine.memstate import MemState
from keeldb.engine.segment import NEVER, SealedSegment
from keeldb.engine.versions import VersionSet
from keeldb.errors import StorageError
from keeldb.schema import CollectionSchema
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import ARROW, DELETES, SEGMENT
from keeldb.storage.manifest import FileEntry, ManifestEdit
from keeldb.storage.segment_file import TS_COLUMN, map_table, read_table, write_table

COMPACTION_MIN_SEGMENTS = 8  # merge once this many small segments (or delete files) exist
# Merged segments grow up to the target size (Milvus's default segment size is 1 GiB), a
# segment below half of it is "small", and a segment whose purgeable versions (deleted
# before the retention horizon) reach the ratio is rewritten even if it is large.
SEGMENT_TARGET_BYTES = int(os.environ.get("KEELDB_SEGMENT_TARGET_BYTES", 1 << 30))
COMPACTION_DELETED_RATIO = float(os.environ.get("KEELDB_COMPACTION_DELETED_RATIO", 0.2))
# Versions deleted more recently than this are kept by compaction, for older snapshots
# (iterators). Tests set it to 0 through the environment to make compaction drop eagerly.
COMPACTION_RETENTION_MS = int(os.environ.get("KEELDB_COMPACTION_RETENTION_MS", 10 * 60 * 1000))


# -- the policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentStats:
    """What the policy knows of one sealed segment."""

    id: int
    bytes: int  # file size
    rows: int
    purgeable: int  # versions deleted at or before the horizon: droppable by a merge now


@dataclass(frozen=True)
class CompactionPick:
    segments: tuple[int, ...]  # ids to merge into one, in merge order (may be empty)
    merge_deletes: bool  # merge every delete file into one as well


def pick_compaction(
    segments: Sequence[SegmentStats],
    delete_files: int,
    *,
    target_bytes: int,
    deleted_ratio: float,
    force: bool = False,
    min_segments: int = COMPACTION_MIN_SEGMENTS,
) -> CompactionPick | None:
    """The next compaction, or None when nothing is worth rewriting. ``segments`` are
    ordered oldest first."""
    group = _segment_group(segments, target_bytes, deleted_ratio, force, min_segments)
    merge_deletes = delete_files >= 2 and (force or delete_files >= min_segments or bool(group))
    if not group and not merge_deletes:
        return None
    return CompactionPick(tuple(s.id for s in group), merge_deletes)


def _segment_group(
    segments: Sequence[SegmentStats], target_bytes: int, deleted_ratio: float, force: bool, min_segments: int
) -> list[SegmentStats]:
    small = [s for s in segments if s.bytes < target_bytes // 2]
    dirty = [s for s in segments if s.rows and s.purgeable and s.purgeable >= deleted_ratio * s.rows]
    if not dirty and len(small) < (2 if force else min_segments):
        return []
    group: list[SegmentStats] = []
    total = 0
    for s in dirty + [s for s in small if s not in dirty]:
        if group and total + s.bytes > target_bytes:
            break
        group.append(s)
        total += s.bytes
    if len(group) == 1 and group[0] not in dirty:
        return []  # rewriting one clean segment gains nothing
    return group


def segment_stats(seg: SealedSegment, file_bytes: int, horizon: int, expired_through: int = 0) -> SegmentStats:
    """A segment's numbers at ``horizon``. ``min_stamped`` answers "nothing purgeable"
    without scanning ``deleted_at`` (the common case for a segment nobody deletes from).
    ``expired_through``: versions written at or before it have expired (collection TTL) and
    are purgeable too."""
    purgeable = int(np.count_nonzero(seg.deleted_at <= horizon)) if seg.min_stamped <= horizon else 0
    if expired_through and seg.min_ts() <= expired_through:
        purgeable += int(np.count_nonzero((seg.ts <= expired_through) & (seg.deleted_at > horizon)))
    return SegmentStats(seg.sid, file_bytes, seg.num_rows, purgeable)


# -- the work -------------------------------------------------------------------------------


@dataclass
class Compactor:
    """Carries out picks, one at a time (``lock``), so a segment takes part in at most one
    compaction.

    Crash safety, step by step (docs/crash-safety.md, "A compaction"): the merged segment
    (and delete file) is written and fsynced under new names (**compaction.after_write**:
    orphans, garbage); then, under the flush lock and the write lock, ONE manifest version
    drops the inputs (and their indexes) and adds the outputs (**compaction.after_commit**:
    recovery loads the outputs only); then memory swaps, still under the write lock, so no
    write can stamp an input row that has just stopped being the live version. A reader
    holding an older snapshot keeps the inputs' files open (memory-mapped) until it lets
    go: GC unlinks a name, the pages stay until the last mapping goes. The output's index is
    built afterwards like any new segment's; until then it is searched exactly."""

    schema: CollectionSchema
    mem: MemState
    versions: VersionSet
    flush_lock: threading.Lock  # serialises every manifest commit
    write_lock: threading.Lock
    check_writable: Callable[[], None]
    fail: Callable[[StorageError], None]  # the collection's failed state
    _: KW_ONLY
    target_bytes: int
    deleted_ratio: float
    # The newest write timestamp expired at a given horizon (collection TTL; 0: none).
    expire_cutoff: Callable[[int], int] = lambda horizon: 0
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def pick(self, horizon: int, force: bool, delete_files: int) -> tuple[CompactionPick, list[SealedSegment]] | None:
        """The policy's pick over the current segments, with the segments it names."""
        segs = self.mem.sealed_segments()
        cut = self.expire_cutoff(horizon)
        stats = [segment_stats(seg, self.mem.file_bytes.get(seg.sid, 0), horizon, cut) for seg in segs]
        pick = pick_compaction(
            stats,
            delete_files,
            target_bytes=self.target_bytes,
            deleted_ratio=self.deleted_ratio,
            force=force,
        )
        if pick is None:
            return None
        by_id = {seg.sid: seg for seg in segs}
        return pick, [by_id[sid] for sid in pick.segments]

    def run(self, horizon: int, force: bool) -> bool:
        """Pick and merge; return whether anything was merged. Caller holds ``lock``."""
        cur_deletes = self.versions.current.deletes
        picked = self.pick(horizon, force, len(cur_deletes))
        if picked is None:
            return False
        pick, group = picked
        parts, keeps = [], []
        cut = self.expire_cutoff(horizon)
        for seg in group:
            keep = seg.deleted_at > horizon
            if cut:
                keep &= seg.ts > cut  # expired at the horizon: reclaimed (engine/ttl.py)
            keeps.append(np.flatnonzero(keep))
            parts.append(schema_change.conform(seg.file_table.take(pa.array(keeps[-1])), self.schema))
        with self.write_lock:
            self.check_writable()
            out_id = self.versions.new_id(2)  # the segment, and the merged delete file
        with self.versions.new_files() as files:
            out_entry = del_entry = None
            if group:
                table = pa.concat_tables(parts).combine_chunks()
                f = files.write(SEGMENT, out_id, ARROW, lambda path: write_table(path, table))
                max_ts = int(pc.max(table[TS_COLUMN]).as_py()) if table.num_rows else 0
                out_entry = FileEntry(out_id, f.name, table.num_rows, f.bytes, f.crc32, max_ts)
            if pick.merge_deletes:
                store = self.versions.store
                dtable = pa.concat_tables(
                    [read_table(store.local(e.file), e.bytes, e.crc32) for e in cur_deletes]
                ).combine_chunks()
                f = files.write(DELETES, out_id + 1, ARROW, lambda path: write_table(path, dtable))
                del_entry = FileEntry(out_id + 1, f.name, dtable.num_rows, f.bytes, f.crc32, max(e.max_ts for e in cur_deletes))
            files.publish()
            crash_point("compaction.after_write")
            edit = ManifestEdit(
                add_segments=(out_entry,) if out_entry else (),
                drop_segments=frozenset(seg.sid for seg in group),
                add_deletes=(del_entry,) if del_entry else (),
                drop_deletes=frozenset(e.id for e in cur_deletes) if del_entry else frozenset(),
            )
            with self.flush_lock, self.write_lock:
                self.check_writable()
                self.versions.log_and_apply(edit, "compaction")
                crash_point("compaction.after_commit")
                if out_entry is not None:
                    try:
                        self._swap_in(out_entry, group, keeps)
                    except BaseException as e:
                        # The manifest already names the output; memory no longer matches disk.
                        failed = StorageError(f"compaction swap failed after commit: {e!r}")
                        self.fail(failed)
                        raise failed from e
        return True

    def _swap_in(self, entry: FileEntry, inputs: list[SealedSegment], keeps: list[np.ndarray]) -> None:
        """Replace the inputs by the output in memory (caller holds the write lock): the
        output takes each kept row's *current* deleted_at (deletes that arrived while the
        merge ran are in it)."""
        table = map_table(self.versions.store.dir / entry.file)
        deleted_at = np.concatenate([seg.deleted_at[k] for seg, k in zip(inputs, keeps, strict=True)]) if inputs else None
        out = SealedSegment(entry.id, self.schema, table, deleted_at=deleted_at)
        # Live versions left out were expired (TTL): their keys leave the live-key index in
        # this same swap, so it never points into a segment that is gone.
        for seg, k in zip(inputs, keeps, strict=True):
            dropped = np.ones(seg.num_rows, dtype=bool)
            dropped[k] = False
            gone = dropped & (seg.deleted_at == NEVER)
            if gone.any():
                self.mem.live.pop_many(seg.pk_numpy()[gone].tolist())
        self.mem.replace(inputs, out, entry.bytes)

"""Recovery: a collection's memory as a pure function of (newest valid manifest, log tail).

Step by step (docs/crash-safety.md, "Recovery"): load the newest manifest that verifies;
load its segment and delete files, verifying each; attach the committed indexes that still
match; rebuild every row's ``deleted_at`` and the live-key index from timestamps alone; then
replay every log from the manifest's checkpoint on, through the same ``apply_record`` live
writes use. Replay changes only memory (and cuts a torn tail, itself idempotent), so dying
in the middle and starting again is the same as never having started
(**recovery.during_replay**). Finally the oracle moves past every timestamp seen, a fresh
log is started and garbage is collected.

Recovery also verifies what the rebuild assumes (invariant I2: every row version is in
exactly one place), whatever the deletes say:

- a version (key, timestamp) in two live segments — or twice in one — is corruption, named
  with the files, the key and the timestamp. The timestamp rebuild alone would hide it: it
  ends the first copy at the second one's timestamp and counts the key once, so a
  compaction that committed its output before dropping its inputs would pass unnoticed in
  any collection with deletes (and make an insert-only one fail with a bare "duplicate
  key");
- a record of the replayed log that is not newer than everything in the committed files is
  corruption (named with the segment holding the same version, when one does): the log
  tail starts after the checkpoint, and a flush moves the checkpoint past exactly the rows
  it wrote, so every record there was written after every flushed row. Replaying an
  upsert a segment already holds would end the segment's copy and add the same version
  again — a flush that forgot to move the checkpoint, invisible in ``count(*)``.

Both checks are a few vector comparisons over arrays the rebuild sorts anyway, and one
integer comparison per replayed record.

Nothing here runs after the open: the collection takes over from ``Recovered``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb import telemetry
from keeldb.engine.heap import release_free_pages
from keeldb.engine.live_index import ROW_BITS
from keeldb.engine.memstate import MemState
from keeldb.engine.rows import decode_table, numpy_of
from keeldb.engine.segment import NEVER, SealedSegment
from keeldb.engine.versions import VersionSet
from keeldb.errors import CorruptionError, KeelError
from keeldb.index.base import load_index
from keeldb.index.params import IndexSpec
from keeldb.schema import CollectionSchema
from keeldb.storage.crash import crash_point
from keeldb.storage.log_format import RecordType
from keeldb.storage.log_reader import Record
from keeldb.storage.manifest import Manifest
from keeldb.storage.oracle import TimestampOracle
from keeldb.storage.segment_file import TS_COLUMN, read_table, verify_file
from keeldb.storage.store import CollectionStore, Log, Replay

log = logging.getLogger(__name__)


class OverlapError(CorruptionError):
    """A row version in two places: two live segments, or a segment and the log tail."""


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
class Recovered:
    """What the open hands the collection."""

    versions: VersionSet
    mem: MemState
    log: Log  # the fresh log new writes go to
    max_ts: int  # newest timestamp in the files or the replayed tail: visible from the start
    committed_through: int  # every write at or below this is in a committed file
    report: RecoveryReport


@telemetry.timed(telemetry.RECOVERY)
def recover(
    store: CollectionStore,
    schema: CollectionSchema,
    oracle: TimestampOracle,
    index_specs: dict[str, IndexSpec],
    on_failure: Callable[[KeelError], None],
) -> Recovered:
    report = RecoveryReport()
    manifest, retained = store.load()
    report.manifest_version = manifest.version
    report.manifests_skipped = list(store.skipped)
    versions = VersionSet(store, manifest, retained, on_failure)
    mem = MemState(schema, versions.new_id)
    for e in manifest.segments:
        table = read_table(store.local(e.file), e.bytes, e.crc32)
        mem.add_sealed(SealedSegment(e.id, schema, table), e.bytes)
    report.segments = len(mem.sealed)
    load_indexes(store, manifest, mem.sealed, index_specs, report)
    deletes = [read_table(store.local(e.file), e.bytes, e.crc32) for e in manifest.deletes]
    names = {e.id: e.file for e in manifest.segments}
    rebuild_visibility(mem, deletes, names)

    max_ts = max([0] + [int(s.ts.max()) for s in mem.sealed.values() if s.num_rows])
    for t in deletes:
        if t.num_rows:
            max_ts = max(max_ts, int(pc.max(t[TS_COLUMN]).as_py()))
    # Every write at or below this is in a committed segment or delete file: the replayed
    # tail's records all come later than anything flushed (they follow the checkpoint).
    flushed_max = max_ts
    # What the files hold is applied: a delete by filter reads the newest applied state,
    # which without a log tail to replay used to be "nothing" (timestamp 0) -- found by
    # the model test (insert, flush, reopen, delete with a filter deleted no row).
    mem.applied_ts = max_ts
    replay = Replay()

    def apply(rec: Record) -> None:
        nonlocal max_ts
        if rec.ts <= flushed_max:
            raise tail_overlap(mem, schema, rec, flushed_max, names, manifest.log_checkpoint)
        mem.apply_record(rec.rtype, rec.ts, rec.payload)
        max_ts = max(max_ts, rec.ts)
        crash_point("recovery.during_replay")

    store.replay(manifest.log_checkpoint, apply, replay)
    # Everything in the files is applied too: a delete by filter reads the newest applied
    # state, which was empty after an open that replayed no record (tests/test_model.py:
    # insert, flush, reopen, delete with a filter deleted nothing).
    mem.applied_ts = max(mem.applied_ts, max_ts)
    report.logs_replayed = replay.logs
    report.records_replayed = replay.records
    report.torn_tail = replay.torn_tail
    report.bytes_dropped = replay.bytes_dropped
    oracle.observe(max_ts)
    new_log = store.open_log(replay.next_log)
    report.garbage_removed = versions.collect_garbage(replay.next_log, at_open=True)  # no writer yet
    release_free_pages()  # the rebuild's sorted copies of every key (engine/heap.py)
    return Recovered(versions, mem, new_log, max_ts, flushed_max, report)


def load_indexes(
    store: CollectionStore,
    manifest: Manifest,
    sealed: dict[int, SealedSegment],
    specs: dict[str, IndexSpec],
    report: RecoveryReport,
) -> None:
    """Attach every committed index that matches its segment and the current definition.
    One that fails its checksum or does not load is reported and skipped: its segment is
    searched exactly until the builder replaces it."""
    for e in manifest.indexes:
        seg, spec = sealed.get(e.segment), specs.get(e.field)
        if seg is None or spec is None or spec.key != e.spec:
            continue
        try:
            path = store.local(e.file)
            verify_file(path, e.bytes, e.crc32)
            index = load_index(spec, path)
        except (CorruptionError, RuntimeError) as err:
            log.error("index %s is unusable (%s); its segment is searched exactly until rebuilt", e.file, err)
            report.indexes_skipped.append(f"{e.file}: {err}")
            continue
        if index.ntotal != seg.num_rows:
            report.indexes_skipped.append(f"{e.file}: {index.ntotal} rows, segment has {seg.num_rows}")
            continue
        seg.indexes = {**seg.indexes, e.field: index}
        report.indexes_loaded += 1


def tail_overlap(
    mem: MemState, schema: CollectionSchema, rec: Record, flushed_max: int, names: dict[int, str], checkpoint: int
) -> OverlapError:
    """The error for a replayed record not newer than the committed files: the segment
    holding the same version, if one does (found the slow way: this is the failure path)."""
    where = f"log record at ts {rec.ts} (offset {rec.offset} of a log at or after checkpoint {checkpoint})"
    if rec.rtype != RecordType.DELETE:
        pks = numpy_of(decode_table(rec.payload)[schema.primary.name])
        for sid, seg in sorted(mem.sealed.items()):
            held = seg.pk_numpy()[seg.ts == rec.ts]
            both = np.intersect1d(held, pks) if held.size else held
            if both.size:
                return OverlapError(
                    f"row version (key {_key(both[0])!r}, ts {rec.ts}) is both in {names.get(sid, sid)} and in the "
                    f"replayed {where}: the manifest's checkpoint and the log overlap"
                )
    return OverlapError(
        f"{where} is not newer than the committed files (newest ts {flushed_max}): the manifest's "
        "checkpoint and the log overlap"
    )


def rebuild_visibility(mem: MemState, deletes: list[pa.Table], names: dict[int, str] | None = None) -> None:
    """Compute every sealed row's ``deleted_at`` and the live-key index, vectorised.

    Sort all events on a key (row versions and deletes) by (pk, ts, deletes first).
    A version's successor event for the same key, if any, is the delete or overwrite that
    ended it: its ``deleted_at`` is that event's timestamp. (An upsert logs a delete at
    the same timestamp as its new version; sorting deletes first keeps that delete from
    ending the new version.) A version present twice — in two segments, or twice in one —
    is an ``OverlapError`` naming the files (``names``: segment id -> file).
    """
    names = names or {}
    pks, tss, kinds, sids, rows = [], [], [], [], []
    for seg_id, seg in mem.sealed.items():
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
        # is live (insert refuses live keys), so the sort below would find nothing. The
        # live-key index refuses a key twice; only then is the slow search for why run.
        segs = [(seg_id, seg) for seg_id, seg in mem.sealed.items() if seg.num_rows]
        try:
            mem.live.bulk_load(
                np.concatenate([seg.pk_numpy() for _, seg in segs]),
                np.concatenate([(seg_id << ROW_BITS) + np.arange(seg.num_rows, dtype=np.int64) for seg_id, seg in segs]),
            )
        except ValueError as e:
            raise duplicate_versions(mem, names) from e
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
    # Two copies of one version sort next to each other (same key, same ts, both versions).
    twice = np.flatnonzero(same_next[:-1] & (ts[1:] == ts[:-1]) & (kind[1:] == 1) & (kind[:-1] == 1))
    if twice.size:
        i = int(twice[0])
        raise OverlapError(_twice(pk[i], int(ts[i]), int(sid[i]), int(sid[i + 1]), names))
    end = np.full(len(pk), NEVER, dtype=np.int64)
    end[:-1] = np.where(same_next[:-1], ts[1:], NEVER)
    is_version = kind == 1
    for s in np.unique(sid[is_version]):
        sel = is_version & (sid == s)
        mem.sealed[int(s)].mark_deleted(row[sel], end[sel])
    live = is_version & (end == NEVER)
    locs = (sid[live] << ROW_BITS) | row[live]
    mem.live.bulk_load(pk[live], locs)  # already sorted by key: no second sort


def _key(pk: Any) -> Any:
    """A key as the user wrote it (not numpy's repr)."""
    return pk.item() if isinstance(pk, np.generic) else pk


def _twice(pk: Any, ts: int, a: int, b: int, names: dict[int, str]) -> str:
    where = f"twice in {names.get(a, a)}" if a == b else f"in {names.get(a, a)} and in {names.get(b, b)}"
    return (
        f"row version (key {_key(pk)!r}, ts {ts}) is {where}: the manifest names the same rows in two "
        "places (a compaction that committed its output before dropping its inputs?)"
    )


def duplicate_versions(mem: MemState, names: dict[int, str]) -> CorruptionError:
    """Why the sealed segments hold a key twice although no delete file exists: the same
    version twice (an overlap), or two versions with no delete record ending the older."""
    segs = [(sid, seg) for sid, seg in mem.sealed.items() if seg.num_rows]
    pk = np.concatenate([seg.pk_numpy() for _, seg in segs])
    ts = np.concatenate([seg.ts for _, seg in segs])
    sid = np.concatenate([np.full(seg.num_rows, s, dtype=np.int64) for s, seg in segs])
    order = np.lexsort((ts, pk))
    pk, ts, sid = pk[order], ts[order], sid[order]
    i = int(np.flatnonzero(pk[1:] == pk[:-1])[0])
    if ts[i] == ts[i + 1]:
        return OverlapError(_twice(pk[i], int(ts[i]), int(sid[i]), int(sid[i + 1]), names))
    return CorruptionError(
        f"key {_key(pk[i])!r} has two versions (ts {int(ts[i])} in {names.get(int(sid[i]), sid[i])}, ts {int(ts[i + 1])} in "
        f"{names.get(int(sid[i + 1]), sid[i + 1])}) and no delete file ends the older one"
    )

"""A collection's durable state in a cluster: manifest in etcd, files and log in object storage.

The second implementation of ``keeldb.storage.store.CollectionStore``; the engine above it
is unchanged. The local directory becomes a cache: a node that starts with an empty disk
downloads what the manifest names.

Object layout under the cluster's prefix (docs/formats.md, "Cluster objects"):

    collections/<id>/files/<name>              segment, delete and index files
    collections/<id>/wal/<log:012d>/<chunk:08d> log records, one object per group commit

**Why two writers can never both own a log position.** Every log object is written with
``If-None-Match: *``: of two writers putting the same key, exactly one succeeds. A writer
puts chunk *k+1* only after chunk *k* succeeded, so each log is a gap-free sequence. When a
new writer takes a shard over, it reads each log from the manifest's checkpoint up to its
first missing chunk and then *seals* it by putting an end marker at that position. A
previous writer that is still running (paused, partitioned) wants that same position for
its next group commit: if the seal got there first, its put fails and it learns it was
fenced before acknowledging anything; if its put got there first, the new writer's seal
fails, so the new writer reads the chunk (its writes may have been acknowledged) and seals
the next position. Either way every acknowledged write is in what the new writer replays.
The new writer then logs under a number past every log it sealed (two past the last log with
any object, see ``replay``), so the logs never mix.

**Files** get names that carry the writer's lease id (``seg-000000000012-7f3a.arrow``): a
previous writer still uploading cannot overwrite a file the new writer made, and garbage
collection can tell whose a file is (``collect_garbage``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from keeldb.cluster.objectstore import ObjectStore, ObjectStoreError, PositionTaken
from keeldb.cluster.shard import ShardWriter
from keeldb.errors import CorruptionError, StorageError
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import (
    data_file_name,
    has_tag,
    parse_wal_chunk_name,
    wal_chunk_name,
    wal_log_label,
)
from keeldb.storage.framed import decode_framed, encode_framed
from keeldb.storage.gc import KeepSet, collect_garbage
from keeldb.storage.group_commit import GroupCommit
from keeldb.storage.log_format import HEADER_SIZE, encode_record
from keeldb.storage.log_reader import Record, iter_records
from keeldb.storage.manifest import MAGIC, Manifest
from keeldb.storage.store import Replay

log = logging.getLogger(__name__)
# The end marker: shorter than a record header, so no real chunk (whole records only) can
# equal it. Not empty: SeaweedFS 4.48 answers an empty-bodied PUT in a way that leaves the
# kept-alive connection hanging for the client's whole read timeout on the next request.
END = b"END"
assert len(END) < HEADER_SIZE


# Seconds an object stays after it became garbage (see ClusterStore.collect_garbage).
GC_GRACE_S = float(os.environ.get("KEELDB_CLUSTER_GC_GRACE_S", 30))


class ReplicaBehind(StorageError):
    """What a replica was following has been superseded (a newer manifest) and collected:
    reload from the current manifest."""


class LogFenced(StorageError):
    """Another writer took this log position: this node no longer owns the shard. Nothing
    it had not already acknowledged is acknowledged; the caller's write has unknown outcome
    (the successor's replay is the truth)."""


def chunk_key(base: str, number: int, chunk: int) -> str:
    return f"{base}wal/{wal_chunk_name(number, chunk)}"


def parse_chunk_key(base: str, key: str) -> tuple[int, int] | None:
    return parse_wal_chunk_name(key[len(base) + 4 :] if key.startswith(base + "wal/") else "")


def records_of(chunks: Iterable[bytes]) -> Iterator[Record]:
    """The records of whole chunks. A chunk was put whole or not at all, so any damage is
    corruption, never a torn tail."""
    for data in chunks:
        for item in iter_records(memoryview(data)):
            if isinstance(item, str):
                raise CorruptionError(f"log chunk in the object store: {item}")
            yield item


class ObjectLog(GroupCommit):
    """One log as a sequence of objects. ``append`` buffers; ``sync`` is group commit
    (``storage/group_commit.py``): the leader puts everything buffered as ONE conditional
    object, so concurrent writers share one request, and nobody returns before the object
    holding their record exists."""

    def __init__(self, objects: ObjectStore, base: str, number: int, next_chunk: int = 0) -> None:
        super().__init__()
        self.number = number
        self._objects = objects
        self._base = base
        self._chunk = next_chunk
        self._buf = bytearray()
        self._ended = False
        self.puts = 0  # objects this log wrote (measurements)

    def append(self, rtype: int, ts: int, payload: bytes) -> int:
        crash_point("wal.before_append")
        record = encode_record(rtype, ts, payload)
        with self._cond:
            if self._error:
                raise self._error
            if self._ended:
                raise StorageError(f"log {self.number} has ended")
            self._buf += record
            self._written += len(record)
            end = self._written
        crash_point("wal.after_append")
        return end

    def _take_batch(self) -> tuple[str, bytes]:
        return chunk_key(self._base, self.number, self._chunk), bytes(self._buf)

    def _persist(self, batch: tuple[str, bytes]) -> None:
        crash_point("wal.before_fsync")
        self._objects.put_if_absent(*batch)
        crash_point("wal.after_fsync")

    def _persisted(self, batch: tuple[str, bytes]) -> None:
        self.puts += 1
        del self._buf[: len(batch[1])]
        self._chunk += 1

    def _failure(self, error: BaseException) -> StorageError:
        if isinstance(error, PositionTaken):
            return LogFenced(f"log position {error.key} was taken by another writer: this node no longer owns the shard ({error})")
        # Whether the object landed is unknown: the caller's write is not acknowledged (and
        # not refused either); the next owner's replay decides.
        return StorageError(f"log put failed, outcome unknown: {error}")

    def end(self) -> None:
        """Put the end marker, so a reader tailing the logs knows to move to the next one.
        If the position is taken, a successor sealed this log (fine: it is ended either
        way) — or wrote its own records here, which means this writer lost the shard and
        must not commit the flush that is ending this log."""
        with self._cond:
            if self._error or self._ended or self._buf:
                return
            self._ended = True
            key = chunk_key(self._base, self.number, self._chunk)
        try:
            self._objects.put_if_absent(key, END)
        except PositionTaken as e:
            if self._objects.get(key) != END:
                error = LogFenced(f"log position {key} holds another writer's records: this node no longer owns the shard")
                with self._cond:
                    self._error = error
                raise error from e
        except ObjectStoreError as e:
            log.warning("could not end log %d (%s); the next writer seals it", self.number, e)

    def close(self) -> None:
        pass


class ClusterStore:
    """``CollectionStore`` over etcd (manifest) and object storage (files, log).

    ``shard`` holds the writer lease when ``writer``; otherwise (a read replica) it is only
    used to read the manifest, and the store never seals, commits or deletes anything."""

    def __init__(
        self,
        directory: Path,
        objects: ObjectStore,
        collection_id: int,
        shard: ShardWriter,
        *,
        writer: bool = True,
    ) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "wal").mkdir(exist_ok=True)  # stays empty: the local GC expects it
        self.objects = objects
        self.collection_id = collection_id
        self.base = f"collections/{collection_id}/"
        self.shard = shard
        self.writer = writer
        self.tag = f"{shard.lease:x}" if writer else ""
        self.skipped: list[str] = []
        self._revision = 0
        self._seen: set[str] = set()  # every file a manifest this store loaded or committed named
        self._position = (0, 0)  # replica: the next log position to read
        self._doomed_since: dict[str, float] = {}  # object -> when GC first found it deletable
        self._orphans: set[str] = set()  # files no manifest named when this writer opened

    # -- the manifest ---------------------------------------------------------------------

    def load(self) -> tuple[Manifest, list[Manifest]]:
        raw, revision = self.shard.read_manifest()
        self._revision = revision
        if raw is None:
            return Manifest(), []
        try:
            m = Manifest.from_dict(decode_framed(MAGIC, raw, self.shard.manifest_key))
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptionError(f"manifest in etcd at {self.shard.manifest_key} does not decode: {e}") from e
        self._seen |= m.files()
        return m, [m]

    def commit(self, manifest: Manifest) -> None:
        """ONE etcd transaction, fenced by the writer lease and based on the revision this
        store last saw (``ShardWriter.commit``): it either moves the pointer or raises."""
        if not self.writer:
            raise StorageError("a reader replica cannot commit")
        crash_point("manifest.before_rename")
        self._revision = self.shard.commit(encode_framed(MAGIC, manifest.to_dict()), self._revision)
        self._seen |= manifest.files()
        crash_point("manifest.after_rename")

    def next_version(self, current: Manifest) -> int:
        return current.version + 1

    # -- files ------------------------------------------------------------------------------

    def file_name(self, kind: str, fid: int, ext: str) -> str:
        return data_file_name(kind, fid, ext, self.tag)

    def publish(self, names: Iterable[str]) -> None:
        """Upload each file (conditionally: a name is never written twice). A manifest
        commit only follows a successful publish, so a manifest never names a file that is
        not in the object store."""
        for name in names:
            try:
                self.objects.upload_file(self.dir / name, self._file_key(name))
            except PositionTaken as e:
                raise LogFenced(f"file {name} already exists in the object store: {e}") from e

    def local(self, name: str) -> Path:
        path = self.dir / name
        if not path.exists() and not self.objects.download(self._file_key(name), path):
            raise CorruptionError(f"{self._file_key(name)} is named by the manifest but missing from the object store")
        return path

    def _file_key(self, name: str) -> str:
        return f"{self.base}files/{name}"

    # -- the log ----------------------------------------------------------------------------

    def open_log(self, number: int) -> ObjectLog:
        return ObjectLog(self.objects, self.base, number)

    def _wal_positions(self) -> set[tuple[int, int]]:
        """(log, chunk) of every log object there is: one LIST."""
        parsed = (parse_chunk_key(self.base, k) for k in self.objects.list(self.base + "wal/"))
        return {p for p in parsed if p is not None}

    def _chunks(self, checkpoint: int) -> dict[int, list[int]]:
        by_log: dict[int, list[int]] = {}
        for number, chunk in self._wal_positions():
            if number >= checkpoint:
                by_log.setdefault(number, []).append(chunk)
        return by_log

    def replay(self, checkpoint: int, apply: Callable[[Record], None], out: Replay) -> None:
        """Read every log from ``checkpoint`` on; as the writer, seal each one first (see
        the module docstring), then apply all records in log order. A replica reads up to
        the first chunk not yet written and remembers where, to ``tail`` from there."""
        if not self.writer:
            chunks, self._position = self._follow(checkpoint, 0)
            for record in records_of(chunks):
                apply(record)
                out.records += 1
            out.next_log = self._position[0] + 1
            return
        by_log = self._chunks(checkpoint)
        last = max([checkpoint, *by_log])
        logs: list[tuple[int, list[bytes]]] = []
        # Seal two logs past the last one with objects: a previous writer may be writing a
        # log that has no object yet (its first, or the one a flush just rotated to) and be
        # about to rotate once more; it cannot get further without committing a manifest,
        # which its lost lease forbids. (Sealing one fewer lost acknowledged writes: the
        # hypothesis model in tests/test_cluster_log_model.py finds that interleaving.)
        for number in range(checkpoint, last + 3):
            chunks = sorted(by_log.get(number, []))
            if chunks != list(range(len(chunks))):
                raise CorruptionError(f"log {number} has a gap: chunks {chunks[:10]}...")
            contents = [self._get(chunk_key(self.base, number, c)) for c in chunks]
            ended = END in contents
            if ended:
                contents = contents[: contents.index(END)]
            else:
                contents += self._seal(number, len(chunks))
            logs.append((number, contents))
        for number, contents in logs:
            for record in records_of(contents):
                apply(record)
                out.records += 1
            if contents:
                out.logs.append(wal_log_label(number, len(contents)))
        out.next_log = last + 3

    # -- following the log (replicas) -------------------------------------------------------

    def manifest_moved(self) -> bool:
        """Whether the writer committed a manifest since this replica loaded its own."""
        return self.shard.read_manifest()[1] != self._revision

    def tail(self) -> tuple[list[Record], tuple[int, int]]:
        """Records the writer made durable since the last ``advance`` (or the open), in
        order, and the position after them: pass it to ``advance`` once they are applied."""
        chunks, position = self._follow(*self._position)
        return list(records_of(chunks)), position

    def advance(self, position: tuple[int, int]) -> None:
        self._position = position

    def _follow(self, number: int, chunk: int, wait: float = 2.0) -> tuple[list[bytes], tuple[int, int]]:
        """Every chunk from (``number``, ``chunk``) on, across ended logs, up to the first
        position not written yet. One LIST, then one GET per new chunk.

        A later log with chunks while this one has no end marker means a flush rotated the
        logs and is putting this log's last chunk and marker right now; writes in the later
        log may already be acknowledged, so a read must not stop here: wait for the marker
        (the writer's, or its successor's seal if it died), and refuse rather than answer
        with a gap."""
        out: list[bytes] = []
        deadline = time.monotonic() + wait
        while True:
            present = self._wal_positions()
            while (number, chunk) in present:
                data = self._get(chunk_key(self.base, number, chunk))
                if data == END:
                    number, chunk = number + 1, 0
                else:
                    out.append(data)
                    chunk += 1
            if not any(n > number for n, _ in present):
                return out, (number, chunk)
            if self.manifest_moved():
                raise ReplicaBehind(f"log {number} was collected after a newer manifest; reload")
            if time.monotonic() > deadline:
                raise StorageError(
                    f"log {number} has no end marker at chunk {chunk} while a later log has records "
                    f"(present: {sorted(present)[:12]}): the replica cannot tell whether it has "
                    "every acknowledged write; retry"
                )
            time.sleep(0.02)

    def _seal(self, number: int, position: int) -> list[bytes]:
        """Put the end marker at ``position``; every chunk a still-running previous writer
        managed to put first is returned (and the marker moves past it)."""
        found: list[bytes] = []
        while True:
            key = chunk_key(self.base, number, position)
            try:
                self.objects.put_if_absent(key, END)
                return found
            except PositionTaken:
                data = self._get(key)
                if data == END:
                    return found
                found.append(data)
                position += 1

    def _get(self, key: str) -> bytes:
        data = self.objects.get(key)
        if data is None:
            raise CorruptionError(f"{key} was listed but is gone (collected by another writer?)")
        return data

    # -- garbage ----------------------------------------------------------------------------

    def collect_garbage(
        self, retained: list[Manifest], active_log: int, in_progress: Collection[str], *, at_open: bool = False
    ) -> list[str]:
        """Local cache: whatever no retained manifest names. Object store (writers only):
        a file is deleted only if this store can prove it is garbage — its own (by the tag
        in its name) or named by a manifest it saw, and not named by a retained one. A
        previous writer still running thus never deletes a file its successor just made.
        At open, the new writer also removes other writers' files no manifest names: no
        one else can commit now, so they can never become live. Logs before the oldest
        retained checkpoint go too.

        Not at once, though: an object becomes deletable here and is deleted by the first
        collection at least ``GC_GRACE_S`` later. A replica loads a manifest and then
        fetches what it names; with flushes every fraction of a second, a manifest is two
        versions old before a large collection has finished loading, and without the grace
        its files and logs would be gone under it every time (it could never catch up)."""
        removed = collect_garbage(self.dir, self.dir / "wal", retained, active_log, in_progress, at_open=at_open)
        if not self.writer:
            return removed
        keep = KeepSet.of(retained)
        doomed = []
        for key in self.objects.list(self.base + "files/"):
            name = key.rsplit("/", 1)[1]
            if name in keep.files or name in in_progress:
                continue
            if at_open:
                self._orphans.add(name)  # other writers' leftovers: garbage at every later pass too
            if name in self._orphans or name in self._seen or has_tag(name, self.tag):
                doomed.append(key)
        doomed += [
            chunk_key(self.base, number, chunk)
            for number, chunk in self._wal_positions()
            if not keep.keeps_log(number, active_log)
        ]
        now = time.monotonic()
        since = {k: self._doomed_since.get(k, now) for k in doomed}
        self._doomed_since = since
        doomed = [k for k, t in since.items() if now - t >= GC_GRACE_S]
        if doomed:
            try:
                self.objects.delete_many(doomed)
            except ObjectStoreError as e:
                log.warning("object-store GC failed (%s); retried after the next commit", e)
                return removed
            names = {k.rsplit("/", 1)[1] for k in doomed}
            self._seen -= names
            self._orphans -= names
            for k in doomed:
                self._doomed_since.pop(k, None)
        return removed + doomed

"""A data directory: its lock, its clock, its catalog and its open collections.

Layout (byte-level formats in docs/formats.md):

    <root>/LOCK                  flock'd while open
    <root>/TSO                   the timestamp oracle's reserved bound
    <root>/CATALOG               collections, schemas, indexes, load state
    <root>/collections/<id>/     one collection: MANIFEST-*, seg-*.arrow, del-*.arrow, wal/*.log

One process opens a directory at a time (the lock); inside a process, every client of the
same directory shares one ``Database`` (see ``acquire``), so two clients cannot race each
other's logs either.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from keeldb.engine.collection import DEFAULT_AUTO_FLUSH_BYTES, Collection
from keeldb.errors import CollectionNotFound, InvalidArgument, PartitionNotFound, StorageError
from keeldb.index.params import IndexSpec, index_spec
from keeldb.schema import DEFAULT_PARTITION, CollectionSchema, check_name
from keeldb.storage.catalog import Catalog
from keeldb.storage.fs import DirectoryLock, fsync_dir, makedirs_durable
from keeldb.storage.oracle import TimestampOracle

MAX_PARTITIONS = 1024
MAX_REMEMBERED_JOBS = 10_000  # compaction job ids kept for get_compaction_state


def partitions_of(entry: dict[str, Any]) -> dict[str, int]:
    """Partition name -> id; every collection has ``_default`` (id 0)."""
    return dict(entry.get("partitions") or {DEFAULT_PARTITION: 0})


def loaded_partitions(entry: dict[str, Any]) -> set[int]:
    """Partition ids that reads see: every partition (also those created later) after
    ``load_collection``, the ones ``load_partitions`` named otherwise, none when released."""
    if entry.get("loaded"):
        return set(partitions_of(entry).values())
    return set(entry.get("loaded_partitions") or ())


def index_specs_of(entry: dict[str, Any], schema: CollectionSchema) -> dict[str, IndexSpec]:
    """Vector field -> how its segments' indexes are built, from the catalog's index list.
    A definition the current code cannot build (checked at create_index, so only possible
    for a catalog written by other code) means exact search for that field, not an error."""
    specs = {}
    for i in entry.get("indexes") or ():
        f = schema.field(i["field_name"])
        if f is None or f.dim is None:
            continue
        try:
            specs[f.name] = index_spec(i["index_type"], i["metric_type"], f.dim, i.get("params") or {})
        except InvalidArgument:
            continue
    return specs


class Database:
    def __init__(
        self,
        root: Path,
        *,
        auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES,
        collection_options: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        if root.exists() and not root.is_dir():
            raise InvalidArgument(f"the data directory {root} is not a directory")
        try:
            makedirs_durable(root)
        except PermissionError:
            raise StorageError(f"cannot create the data directory {root}: permission denied") from None
        self._dirlock = DirectoryLock(root)
        try:
            self.oracle = TimestampOracle(root / "TSO")
            self.catalog = Catalog(root / "CATALOG")
            self.collections_dir = root / "collections"
            makedirs_durable(self.collections_dir)
            self.auto_flush_bytes = auto_flush_bytes
            self.collection_options = dict(collection_options or {})  # compaction policy knobs
            self._lock = threading.RLock()
            self._collections: dict[str, Collection] = {}
            # Manual compaction jobs of this process: id -> segments merged. A job runs to
            # completion before its id is returned, so a known id is always Completed.
            self._compactions: dict[int, int] = {}
            self._remove_orphans()
            for name, entry in self.catalog.snapshot().items():
                self._collections[name] = self._open(entry)
        except BaseException:
            self._dirlock.release()
            raise

    def _dir(self, cid: int) -> Path:
        return self.collections_dir / f"{cid:06d}"

    def _open(self, entry: dict[str, Any], directory: Path | None = None, **extra: Any) -> Collection:
        """Open a catalog entry's collection. ``extra``: what a cluster node adds (its
        store, read-only for a replica)."""
        schema = CollectionSchema.from_dict(entry["schema"])
        return Collection(
            directory or self._dir(entry["id"]),
            schema,
            self.oracle,
            auto_flush_bytes=self.auto_flush_bytes,
            partition_ids=partitions_of(entry).values(),
            index_specs=index_specs_of(entry, schema),
            **{**self.collection_options, **extra},
        )

    def _remove_orphans(self) -> None:
        """Directories of collections whose create never committed or whose drop did."""
        known = {f"{e['id']:06d}" for e in self.catalog.snapshot().values()}
        removed = False
        for name in os.listdir(self.collections_dir):
            if name not in known:
                shutil.rmtree(self.collections_dir / name, ignore_errors=True)
                removed = True
        if removed:
            fsync_dir(self.collections_dir)

    # -- catalog operations -------------------------------------------------------------

    def names(self) -> list[str]:
        return self.catalog.names()

    def entry(self, name: str) -> dict[str, Any]:
        """A copy of the catalog entry, safe to change and pass to ``update``."""
        e = self.catalog.get(name)
        if e is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return e

    def peek(self, name: str) -> dict[str, Any]:
        """The catalog entry for reading only (no copy): the per-call path of reads."""
        e = self.catalog.peek(name)
        if e is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return e

    def collection(self, name: str) -> Collection:
        with self._lock:
            c = self._collections.get(name)
        if c is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return c

    def create(self, name: str, schema: CollectionSchema, entry: dict[str, Any]) -> None:
        check_name("collection", name)
        with self._lock:
            if name in self._collections:
                raise InvalidArgument(f"collection '{name}' already exists")
            cid = self.catalog.allocate_id()
            makedirs_durable(self._dir(cid))
            full = {**entry, "id": cid, "schema": schema.to_dict()}
            # The catalog commit is the moment the collection exists; a crash before it
            # leaves an orphan directory that the next open removes.
            self.catalog.update({name: full})
            self._collections[name] = self._open(full)

    def update(self, name: str, **changes: Any) -> None:
        with self._lock:
            e = self.entry(name)
            e.update(changes)
            self.catalog.update({name: e})
            if "indexes" in changes:
                self.collection(name).set_index_specs(index_specs_of(e, CollectionSchema.from_dict(e["schema"])))

    def create_partition(self, name: str, partition: str) -> None:
        check_name("partition", partition)
        with self._lock:
            e = self.entry(name)
            parts = partitions_of(e)
            if partition in parts:
                raise InvalidArgument(f"partition '{partition}' already exists")
            if len(parts) >= MAX_PARTITIONS:
                raise InvalidArgument(f"a collection can have at most {MAX_PARTITIONS} partitions")
            pid = int(e.get("next_partition_id", 1))
            e["partitions"] = {**parts, partition: pid}
            e["next_partition_id"] = pid + 1
            self.catalog.update({name: e})
            self._collections[name].add_partition(pid)

    def drop_partition(self, name: str, partition: str) -> None:
        """Rows first (one durable delete record), catalog second: a crash in between leaves
        an empty partition that still exists, never rows that count but cannot be named."""
        with self._lock:
            e = self.entry(name)
            parts = partitions_of(e)
            if partition == DEFAULT_PARTITION:
                raise InvalidArgument("the default partition cannot be dropped")
            if partition not in parts:
                raise PartitionNotFound(f"partition not found[partition={partition}]")
            self._collections[name].drop_partition(parts[partition])
            pid = parts.pop(partition)
            e["partitions"] = parts
            if pid in (e.get("loaded_partitions") or ()):
                e["loaded_partitions"] = [i for i in e["loaded_partitions"] if i != pid]
            self.catalog.update({name: e})

    def rename(self, old: str, new: str) -> None:
        check_name("collection", new)
        with self._lock:
            e = self.entry(old)
            if new in self._collections:
                raise InvalidArgument(f"collection '{new}' already exists")
            self.catalog.update({old: None, new: e})
            self._collections[new] = self._collections.pop(old)

    def drop(self, name: str) -> None:
        with self._lock:
            e = self.catalog.get(name)
            if e is None:
                return
            self.catalog.update({name: None})
            c = self._collections.pop(name)
            c.close()
            shutil.rmtree(self._dir(e["id"]), ignore_errors=True)
            fsync_dir(self.collections_dir)

    def compact(self, name: str) -> int:
        """Run a manual compaction of ``name`` to completion; return its job id (a fresh
        timestamp: unique, also across restarts)."""
        merged = self.collection(name).compact(force=True)
        job = self.oracle.next()
        with self._lock:
            self._compactions[job] = int(merged)
            while len(self._compactions) > MAX_REMEMBERED_JOBS:
                del self._compactions[next(iter(self._compactions))]
        return job

    def compaction_plans(self, job: int) -> int:
        """How many merges job ``job`` made; unknown ids are refused, never guessed."""
        with self._lock:
            plans = self._compactions.get(job)
        if plans is None:
            raise InvalidArgument(
                f"compaction {job} is unknown here: keeldb remembers the jobs this server ran "
                "(each finished before its id was returned) until it restarts"
            )
        return plans

    def close(self) -> None:
        with self._lock:
            for c in self._collections.values():
                c.close()
            self._collections.clear()
            self._dirlock.release()


_registry_lock = threading.Lock()
_registry: dict[str, tuple[Database, int]] = {}


def acquire(path: str | os.PathLike[str], **kwargs: Any) -> Database:
    """Open (or share the already-open) Database for ``path`` in this process."""
    key = os.path.realpath(path)
    with _registry_lock:
        if key in _registry:
            db, n = _registry[key]
            _registry[key] = (db, n + 1)
            return db
        db = Database(Path(key), **kwargs)
        _registry[key] = (db, 1)
        return db


def release(db: Database) -> None:
    key = os.path.realpath(db.root)
    with _registry_lock:
        held = _registry.get(key)
        if held is None or held[0] is not db:
            return
        if held[1] > 1:
            _registry[key] = (db, held[1] - 1)
            return
        del _registry[key]
    db.close()

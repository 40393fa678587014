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
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from keeldb.engine import namespace
from keeldb.engine.catalog import Catalog, CollectionEntry
from keeldb.engine.collection import DEFAULT_AUTO_FLUSH_BYTES, Collection
from keeldb.errors import CollectionNotFound, InvalidArgument, PartitionNotFound, StorageError
from keeldb.schema import DEFAULT_PARTITION, CollectionSchema, IndexParam, check_name
from keeldb.storage.catalog import FileCatalog
from keeldb.storage.filenames import collection_dir_name
from keeldb.storage.fs import DirectoryLock, fsync_dir, makedirs_durable, rmtree
from keeldb.storage.oracle import TimestampOracle
from keeldb.storage.store import CollectionStore

MAX_PARTITIONS = 1024
MAX_REMEMBERED_JOBS = 10_000  # compaction job ids kept for get_compaction_state


class ReadCall:
    """One read call (a search, a query, a statistics call), passed with each collection
    lookup it makes. A cluster node with the read role answers such lookups from a replica
    brought up to date once per call, at its first lookup (Strong needs no more, and a
    handler looks a collection up several times); one directory has nothing to catch up."""

    def __init__(self) -> None:
        self.caught_up: set[str] = set()


class Database:
    """``root`` is this process's directory, held by its lock. What a cluster node
    (``cluster/node.py``) does differently is injected rather than copied: ``catalog`` and
    ``oracle`` are made once the lock is held (defaults: the ``CATALOG`` and ``TSO`` files
    under ``root``; a failure releases the lock), ``collections_dir`` is where collections
    keep their files, ``_open(entry, store)`` takes the store a collection runs on (default:
    its directory), and ``_open_catalogued``/``_prepare``/``_adopt`` say when collections
    are opened. The engine uses the catalog through the ``Catalog`` protocol only."""

    def __init__(
        self,
        root: Path,
        *,
        auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES,
        collection_options: dict[str, Any] | None = None,
        catalog: Callable[[], Catalog] | None = None,
        oracle: Callable[[], TimestampOracle] | None = None,
        collections_dir: str = "collections",
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
            self.oracle = oracle() if oracle else TimestampOracle(root / "TSO")
            self.catalog: Catalog = catalog() if catalog else FileCatalog(root / "CATALOG", CollectionEntry.from_dict)
            self.collections_dir = root / collections_dir
            makedirs_durable(self.collections_dir)
            self.auto_flush_bytes = auto_flush_bytes
            self.collection_options = dict(collection_options or {})  # compaction policy knobs
            self._lock = threading.RLock()
            self._collections: dict[str, Collection] = {}
            # Manual compaction jobs of this process: id -> segments merged. A job runs to
            # completion before its id is returned, so a known id is always Completed.
            self._compactions: dict[int, int] = {}
            self._open_catalogued()
        except BaseException:
            self._dirlock.release()
            raise

    def _dir(self, cid: int) -> Path:
        return self.collections_dir / collection_dir_name(cid)

    def _open_catalogued(self) -> None:
        """At open: remove what no entry names, then open every collection the catalog has."""
        self._remove_orphans()
        for name, entry in self.catalog.snapshot().items():
            self._collections[name] = self._open(entry)

    def _open(self, entry: CollectionEntry, store: CollectionStore | None = None, **extra: Any) -> Collection:
        """Open a catalog entry's collection, in ``store``'s directory if one is given (a
        cluster node's), else in ``collections_dir``. ``extra``: a replica's options."""
        return Collection(
            store.dir if store is not None else self._dir(entry.id),
            entry.schema,
            self.oracle,
            auto_flush_bytes=self.auto_flush_bytes,
            partition_ids=entry.partitions.values(),
            index_specs=entry.index_specs(),
            store=store,
            ttl_seconds=entry.ttl_seconds,
            **{**self.collection_options, **extra},
        )

    def _remove_orphans(self) -> None:
        """Directories of collections whose create never committed or whose drop did."""
        known = {self._dir(e.id).name for e in self.catalog.snapshot().values()}
        removed = False
        for name in os.listdir(self.collections_dir):
            if name not in known:
                rmtree(self.collections_dir / name)
                removed = True
        if removed:
            fsync_dir(self.collections_dir)

    # -- catalog operations -------------------------------------------------------------

    def names(self) -> list[str]:
        return self.catalog.names()

    def entry(self, name: str) -> CollectionEntry:
        """The collection's catalog entry, current (in a cluster: as etcd has it now)."""
        e = self.catalog.get(name)
        if e is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return e

    def peek(self, name: str) -> CollectionEntry:
        """The catalog entry from memory where the catalog can (the per-call path of reads)."""
        e = self.catalog.peek(name)
        if e is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return e

    def collection(self, name: str, read: ReadCall | None = None) -> Collection:
        """The open collection ``name``. ``read``: the read call this lookup serves, if any
        (one directory answers reads and writes from the same collection)."""
        with self._lock:
            c = self._collections.get(name)
        if c is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        return c

    def create(
        self,
        name: str,
        schema: CollectionSchema,
        *,
        indexes: Sequence[IndexParam],
        loaded: bool,
        created_ts: int,
        partitions: dict[str, int] | None = None,
        properties: dict[str, Any] | None = None,
        consistency_level: int = 2,
        extra: namespace.Update | None = None,
    ) -> None:
        """``partitions``: a partition-key collection's fixed partitions (default: ``_default``).
        ``name`` is the catalog key (``engine/namespace.py``); ``extra`` checks or changes the
        catalog's other members in the same commit (the database must exist)."""
        check_name("collection", namespace.split(name)[1])
        with self._lock:
            if name in self._collections:
                raise InvalidArgument(f"collection '{namespace.split(name)[1]}' already exists")
            parts = partitions or {DEFAULT_PARTITION: 0}
            entry = CollectionEntry(
                id=self.catalog.allocate_id(), schema=schema, indexes=tuple(indexes), loaded=loaded,
                created_ts=created_ts, partitions=parts, next_partition_id=max(parts.values()) + 1,
                properties=dict(properties or {}), consistency_level=consistency_level,
            )  # fmt: skip
            self._prepare(entry)
            # The catalog commit is the moment the collection exists; a crash before it
            # leaves an orphan directory that the next open removes. A create of the same
            # name that won a race (another node) makes it fail.
            self.catalog.commit({name: entry}, new=(name,), extra=extra)
            self._adopt(name, entry)

    def _prepare(self, entry: CollectionEntry) -> None:
        """Before a create commits: the collection's directory exists and is durable."""
        makedirs_durable(self._dir(entry.id))

    def _adopt(self, name: str, entry: CollectionEntry) -> None:
        """After a create committed: open the new collection."""
        self._collections[name] = self._open(entry)

    def update(self, name: str, **changes: Any) -> None:
        """Replace fields of ``name``'s entry (``CollectionEntry`` field names)."""
        with self._lock:
            e = replace(self.entry(name), **changes)
            self.catalog.commit({name: e})
            if "indexes" in changes:
                self.collection(name).set_index_specs(e.index_specs())

    def set_properties(self, name: str, properties: dict[str, Any]) -> None:
        """Replace the collection's properties: one catalog commit, then the properties keeldb
        acts on (``collection.ttl.seconds``) take effect in the open collection."""
        with self._lock:
            e = replace(self.entry(name), properties=properties)
            c = self.collection(name)
            self.catalog.commit({name: e})
            c.set_ttl(e.ttl_seconds)

    def change_schema(self, name: str, schema: CollectionSchema) -> None:
        """A schema change (an added field, an altered field param) is ONE catalog commit,
        made while the collection runs no write, flush or compaction
        (``Collection.change_schema``; crash points ``schema.before_commit`` and
        ``schema.after_commit``); then its segments in memory read with the new schema."""
        with self._lock:
            e = self.entry(name)
            c = self.collection(name)
            c.change_schema(schema, lambda: self.catalog.commit({name: replace(e, schema=schema)}))
            # an added enable_match field brings its text-match index (CollectionEntry.index_specs)
            c.set_index_specs(replace(e, schema=schema).index_specs())

    def create_partition(self, name: str, partition: str) -> None:
        check_name("partition", partition)
        with self._lock:
            e = self.entry(name)
            if partition in e.partitions:
                raise InvalidArgument(f"partition '{partition}' already exists")
            if len(e.partitions) >= MAX_PARTITIONS:
                raise InvalidArgument(f"a collection can have at most {MAX_PARTITIONS} partitions")
            pid = e.next_partition_id
            self.catalog.commit(
                {name: replace(e, partitions={**e.partitions, partition: pid}, next_partition_id=pid + 1)}
            )
            self._collections[name].add_partition(pid)

    def drop_partition(self, name: str, partition: str) -> None:
        """Rows first (one durable delete record), catalog second: a crash in between leaves
        an empty partition that still exists, never rows that count but cannot be named."""
        with self._lock:
            e = self.entry(name)
            if partition == DEFAULT_PARTITION:
                raise InvalidArgument("the default partition cannot be dropped")
            if partition not in e.partitions:
                raise PartitionNotFound(f"partition not found[partition={partition}]")
            pid = e.partitions[partition]
            self._collections[name].drop_partition(pid)
            self.catalog.commit({name: replace(
                e,
                partitions={n: i for n, i in e.partitions.items() if n != partition},
                loaded_partitions=tuple(i for i in e.loaded_partitions if i != pid),
            )})  # fmt: skip

    def rename(self, old: str, new: str, extra: namespace.Update | None = None) -> None:
        """``extra``: its aliases move with it, in the same commit (``namespace``)."""
        check_name("collection", namespace.split(new)[1])
        with self._lock:
            e = self.entry(old)
            if self.catalog.get(new) is not None:
                raise InvalidArgument(f"collection '{namespace.split(new)[1]}' already exists")
            self.collection(old)  # a cluster node renames only what it writes
            self.catalog.commit({old: None, new: e}, new=(new,), extra=extra)
            if old in self._collections:
                self._collections[new] = self._collections.pop(old)

    def drop(self, name: str, extra: namespace.Update | None = None) -> None:
        """``extra``: refused while aliases name it, checked in the commit (``namespace``)."""
        with self._lock:
            e = self.catalog.get(name)
            if e is None:
                return
            self.catalog.commit({name: None}, extra=extra)
            c = self._collections.pop(name)
            c.close()
            rmtree(self._dir(e.id))
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

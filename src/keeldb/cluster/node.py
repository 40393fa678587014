"""One cluster node: which collections it writes, and where every other call goes.

A node is the ordinary engine (``Database`` → ``Collection``) over ``ClusterStore`` and the
etcd catalog, plus three duties:

- **membership**: ``/keeldb/<cluster>/nodes/<id>`` holds its gRPC address under a lease,
  so a dead node disappears from the directory within the lease TTL;
- **ownership**: a collection's shard is written by the node holding its writer lease
  (``ShardWriter``). A node with the write role takes shards nobody holds (after a writer
  died, its lease expires and the key goes), preferring the least-loaded node, and drops a
  shard as soon as its lease is not certainly valid or its log was fenced;
- **routing**: ``route`` tells the gRPC layer whether to serve a call here or forward it to
  the writer's address (``server/routing.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from keeldb.client import Client
from keeldb.cluster.catalog import EtcdCatalog
from keeldb.cluster.errors import NotOwner
from keeldb.cluster.etcd import Etcd, EtcdError
from keeldb.cluster.objectstore import ObjectStore
from keeldb.cluster.oracle import EtcdReservation
from keeldb.cluster.shard import ShardWriter, shard_prefix
from keeldb.cluster.store import ClusterStore
from keeldb.engine.catalog import CollectionEntry
from keeldb.engine.collection import DEFAULT_AUTO_FLUSH_BYTES, Collection
from keeldb.engine.database import Database, ReadCall
from keeldb.errors import CollectionNotFound, KeelError, StorageError
from keeldb.storage.filenames import replica_dir_name
from keeldb.storage.oracle import TimestampOracle

log = logging.getLogger(__name__)
ROLES = ("write", "read")


def _store_of(c: Collection) -> ClusterStore:
    store = c.store
    assert isinstance(store, ClusterStore)
    return store


def _id_of(c: Collection) -> int:
    return _store_of(c).collection_id


class ClusterDatabase(Database):
    """``Database`` whose catalog and oracle are in etcd, whose collections keep only a
    cache on this disk (``<data>/cache``), and whose collections are opened only while
    this node holds their writer lease (none at start: the tick and the first calls take
    them)."""

    def __init__(self, node: Node, *, auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES, collection_options: dict[str, Any] | None = None) -> None:  # noqa: E501
        self.node = node
        self._shards: dict[str, ShardWriter] = {}  # name -> its writer lease, while open here
        self._replicas: dict[str, Collection] = {}  # name -> read replica (over a ClusterStore)
        self._replica_cond = threading.Condition()
        self._catching_up: set[str] = set()
        self._catchups_started: dict[str, int] = {}
        self._catchups_done: dict[str, int] = {}
        super().__init__(
            node.data_dir,
            auto_flush_bytes=auto_flush_bytes,
            collection_options=collection_options,
            catalog=lambda: EtcdCatalog(node.etcd, node.cluster),
            oracle=lambda: TimestampOracle(EtcdReservation(node.etcd, f"/keeldb/{node.cluster}/tso")),
            collections_dir="cache",
        )

    def _open_catalogued(self) -> None:
        """Nothing at open: a collection is opened when this node takes its writer lease."""

    # -- ownership ------------------------------------------------------------------------

    def shard(self, cid: int) -> ShardWriter:
        return ShardWriter(self.node.etcd, self.node.cluster, str(cid), 0, self.node.node_id, ttl=self.node.lease_ttl)

    def owns(self, name: str) -> bool:
        # No lock: single dict reads are atomic, and try_open holds the lock through a whole
        # recovery, which must not stall every call on this node for other collections.
        c, w = self._collections.get(name), self._shards.get(name)
        return c is not None and w is not None and w.lease_valid() and not c.failed

    def try_open(self, name: str) -> bool:
        """Take the collection's writer lease and open it (recovery from the manifest and
        the log in object storage, sealing the log first). False if another node holds it."""
        with self._lock:
            if name in self._collections:
                if self.owns(name):
                    return True
                # Still open from a lease that lapsed or a log that was fenced: drop it now
                # (rather than at the next tick) and compete for the shard afresh.
                self.let_go(name, "lease not certainly valid, or log fenced")
            entry = self.catalog.get(name)  # fresh: the previous writer may have changed it
            if entry is None:
                raise CollectionNotFound(f"collection '{name}' does not exist")
            writer = self.shard(entry.id)
            if not writer.try_acquire():
                return False
            again = self.catalog.get(name)
            if again is None or again.id != entry.id:
                # Dropped (or dropped and created anew) between the read and the lease: the
                # lease is for a collection that no longer exists under this name.
                writer.release()
                if again is None:
                    raise CollectionNotFound(f"collection '{name}' does not exist")
                return False
            try:
                store = ClusterStore(self._dir(entry.id), self.node.objects, entry.id, writer)
                self._collections[name] = self._open(entry, store)
            except BaseException:
                writer.release()
                raise
            self._shards[name] = writer
            log.info("node %s now writes collection %s (id %d)", self.node.node_id, name, entry.id)
            return True

    def let_go(self, name: str, why: str) -> None:
        """Close a collection this node may no longer write, and give up its lease."""
        with self._lock:
            c = self._collections.pop(name, None)
            w = self._shards.pop(name, None)
        if c is None:
            return
        log.warning("node %s stops writing %s: %s", self.node.node_id, name, why)
        try:
            c.close()
        except KeelError as e:
            log.warning("closing %s: %s", name, e)
        if w is not None:
            w.release()

    def owned(self) -> dict[str, int]:
        """Name -> collection id of what this node writes (the id its store was opened on)."""
        with self._lock:
            return {name: _id_of(c) for name, c in self._collections.items()}

    def collection(self, name: str, read: ReadCall | None = None) -> Collection:
        """What this node writes; for a read call on a node with the read role, else, its
        replica (caught up at the call's first lookup); otherwise the collection is taken
        over if nobody writes it, or NotOwner (routing sends the call to the writer)."""
        if self.owns(name):
            return self._collections[name]
        if read is not None and self.node.can_read:
            held = self._replicas.get(name)
            if name in read.caught_up and held is not None:
                return held
            coll = self.replica(name)
            read.caught_up.add(name)
            return coll
        if self.catalog.get(name) is None:
            raise CollectionNotFound(f"collection '{name}' does not exist")
        if self.node.can_write and self.try_open(name):
            return self._collections[name]
        raise NotOwner(f"node {self.node.node_id} does not write collection '{name}'; retry (routing moves)")

    # -- read replicas ----------------------------------------------------------------------

    def replica(self, name: str) -> Collection:
        """This node's read replica of ``name``, brought up to date first: every write the
        writer has acknowledged is in a log chunk or a segment by now, so after this the
        replica answers as the writer would (Strong included).

        Concurrent reads share a catch-up, like writes share a group commit: a read waits
        for one that *started* after it arrived (one already running may have listed the
        log before a write the reader saw acknowledged), so a burst of reads costs at most
        two catch-ups, not one each."""
        with self._replica_cond:
            need = self._catchups_started.get(name, 0) + 1
            while True:
                if self._catchups_done.get(name, 0) >= need:
                    held = self._replicas.get(name)
                    if held is None:
                        raise CollectionNotFound(f"collection '{name}' does not exist")
                    return held
                if name not in self._catching_up:
                    self._catching_up.add(name)
                    gen = self._catchups_started[name] = self._catchups_started.get(name, 0) + 1
                    break
                self._replica_cond.wait()
        done = False
        try:
            coll = self._catch_up(name)
            done = True
            return coll
        finally:
            with self._replica_cond:
                self._catching_up.discard(name)
                if done:  # a failed one satisfies nobody: a waiter starts the next
                    self._catchups_done[name] = gen
                self._replica_cond.notify_all()

    def _catch_up(self, name: str) -> Collection:
        """A new manifest (a flush, compaction or index build committed) means a reload —
        from the local cache plus whatever new files the manifest names; otherwise only the
        log's new chunks are read (one LIST, one GET per chunk)."""
        entry = self.catalog.get(name)
        held = self._replicas.get(name)
        if entry is None:
            if held is not None:
                self._replicas.pop(name).close()
            raise CollectionNotFound(f"collection '{name}' does not exist")
        if (
            held is not None
            and _id_of(held) == entry.id
            and held.index_specs == entry.index_specs()
            and held.schema.to_dict() == entry.schema.to_dict()  # a schema change reloads
            and held.ttl_seconds == entry.ttl_seconds
        ):
            coll, store = held, _store_of(held)
            try:
                if not store.manifest_moved():
                    records, position = store.tail()
                    try:
                        coll.follow(records)
                    except BaseException:
                        # Half-applied: this replica's memory is no longer a prefix of the
                        # log. Drop it; the next read loads a fresh one.
                        self._replicas.pop(name, None)
                        coll.close()
                        raise
                    store.advance(position)
                    return coll
            except StorageError as e:  # the logs it was following were collected: reload
                log.info("replica of %s reloads: %s", name, e)
        fresh = self._open_replica(entry)
        self._replicas[name] = fresh
        if held is not None:
            held.close()
        return fresh

    def _open_replica(self, entry: CollectionEntry) -> Collection:
        """Open a replica at the current manifest. If that manifest was superseded while
        loading and what it named collected meanwhile (a writer committing faster than this
        node loads, past the GC grace), start over from the newer one — a few times, then
        give up (the read's outcome is unknown; the client retries)."""
        directory = self.collections_dir / replica_dir_name(entry.id)
        for attempt in range(4):
            store = ClusterStore(directory, self.node.objects, entry.id, self.shard(entry.id), writer=False)
            try:
                return self._open(entry, store, read_only=True, auto_compact=False)
            except StorageError as e:
                if attempt == 3 or not store.manifest_moved():
                    raise
                log.info("replica of %s starts over at a newer manifest: %s", entry.id, e)
        raise AssertionError("not reached")

    # -- catalog operations that differ from one directory --------------------------------

    def _prepare(self, entry: CollectionEntry) -> None:
        """Nothing before a create commits: the collection's files go to object storage, and
        this disk only caches them once a writer opens it."""

    def _adopt(self, name: str, entry: CollectionEntry) -> None:
        """After a create committed: write it here if this node writes at all (otherwise the
        tick of a node that does takes it)."""
        if self.node.can_write:
            self.try_open(name)

    def rename(self, old: str, new: str, extra: Any = None) -> None:
        with self._lock:
            super().rename(old, new, extra)
            if old in self._shards:
                self._shards[new] = self._shards.pop(old)

    def drop(self, name: str, extra: Any = None) -> None:
        """Catalog first (the moment it stops existing), then the lease, the etcd keys and
        the objects (a crash in between leaves only unreachable garbage). ``extra``: the
        aliases rule, checked in that commit (``engine/namespace.py``)."""
        e = self.catalog.get(name)
        if e is None:
            return
        self.catalog.commit({name: None}, extra=extra)
        self.let_go(name, "dropped")
        prefix = shard_prefix(self.node.cluster, str(e.id), 0)
        try:
            for kv in self.node.etcd.get_prefix(prefix):
                self.node.etcd.delete(kv.key)
            objs = self.node.objects
            objs.delete_many(objs.list(f"collections/{e.id}/"))
        except KeelError as err:
            log.warning("cleanup after dropping %s left garbage: %s", name, err)
        shutil.rmtree(self._dir(e.id), ignore_errors=True)

    def close(self) -> None:
        for name in list(self._collections):
            self.let_go(name, "node stopping")
        with self._replica_cond:
            for coll in self._replicas.values():
                coll.close()
            self._replicas.clear()
        super().close()


class Node:
    """A cluster member: etcd + object store + the engine, with a gRPC address."""

    def __init__(
        self,
        *,
        etcd: str,
        storage: str,
        data_dir: Path,
        address: str,
        node_id: str,
        roles: tuple[str, ...] = ROLES,
        lease_ttl: int = 5,
        s3_endpoint: str | None = None,
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        cluster: str | None = None,
        auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES,
    ) -> None:
        self.etcd = Etcd(etcd, timeout=3)
        self.objects = ObjectStore.from_url(
            storage, endpoint=s3_endpoint, access_key=s3_access_key, secret_key=s3_secret_key
        )
        self.objects.ensure_bucket()
        # One etcd can hold several clusters; by default the storage URL names the cluster.
        self.cluster = cluster or storage.removeprefix("s3://").replace("/", "_").strip("_")
        self.data_dir = data_dir
        self.address = address
        self.node_id = node_id
        self.roles = roles
        self.lease_ttl = lease_ttl
        self.acknowledged_writes = 0
        self.db = ClusterDatabase(self, auto_flush_bytes=auto_flush_bytes)
        self.client = Client.over(self.db)
        self._stop = threading.Event()
        self._lease = 0
        self._register()
        self._thread = threading.Thread(target=self._run, name="keeldb-node", daemon=True)
        self._thread.start()

    @property
    def can_write(self) -> bool:
        return "write" in self.roles

    @property
    def can_read(self) -> bool:
        return "read" in self.roles

    def _node_key(self, node_id: str) -> str:
        return f"/keeldb/{self.cluster}/nodes/{node_id}"

    def _register(self) -> None:
        self._lease = self.etcd.lease_grant(self.lease_ttl)
        self.etcd.put(self._node_key(self.node_id), json.dumps({"address": self.address, "roles": list(self.roles)}), self._lease)

    # -- routing ----------------------------------------------------------------------------

    def route(self, name: str) -> str | None:
        """None: serve the call here. Otherwise the address of the node that writes
        ``name``. A collection nobody writes is opened here (if this node writes)."""
        if self.db.owns(name):
            return None
        entry = self.db.catalog.get(name)
        if entry is None:
            return None  # the local handler answers "collection not found"
        for _ in range(3):
            kv = self.etcd.get(ShardWriter.writer_key_of(self.cluster, str(entry.id)))
            holder = kv.value.decode() if kv else None
            if holder is None or holder == self.node_id:
                if self.can_write and self.db.try_open(name):
                    return None
                if holder == self.node_id:
                    time.sleep(0.2)  # our own expired lease, still on its way out
                continue
            info = self.etcd.get(self._node_key(holder))
            if info is not None:
                return str(json.loads(info.value)["address"])
            time.sleep(0.2)  # the holder is not registered (dying or restarting)
        raise NotOwner(f"no live node writes collection '{name}' right now; retry")

    def members(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(node id, address, roles) of every live node, this one included, by node id."""
        out = []
        for kv in self.etcd.get_prefix(self._node_key("")):
            info = json.loads(kv.value)
            out.append((kv.key.decode().rsplit("/", 1)[1], str(info["address"]), tuple(info.get("roles", ()))))
        return sorted(out)

    def peers(self) -> list[str]:
        """The addresses of the other live nodes."""
        return [
            str(json.loads(kv.value)["address"])
            for kv in self.etcd.get_prefix(self._node_key(""))
            if kv.key.decode().rsplit("/", 1)[1] != self.node_id
        ]

    # -- the background duties --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._tick()
            except Exception as e:  # noqa: BLE001 - etcd or the store down: retry next tick
                log.warning("node %s: %s", self.node_id, e)

    def _tick(self) -> None:
        try:
            if self.etcd.lease_keepalive(self._lease) <= 0:
                self._register()
        except EtcdError:
            pass
        for name in self.db.owned():
            if not self.db.owns(name):
                self.db.let_go(name, "lease not certainly valid, or log fenced")
        owned = self.db.owned()  # before the catalog read: a create lands in the catalog first
        catalog = self.db.catalog.snapshot()
        for name, cid in owned.items():
            entry = catalog.get(name)
            if entry is None or entry.id != cid:
                self.db.let_go(name, "dropped, renamed or created anew through another node")
        if not self.can_write:
            return
        if not catalog:
            return
        holders: dict[str, int] = {}
        unowned = []
        for name, entry in catalog.items():
            kv = self.etcd.get(ShardWriter.writer_key_of(self.cluster, str(entry.id)))
            if kv is None:
                unowned.append(name)
            else:
                holders[kv.value.decode()] = holders.get(kv.value.decode(), 0) + 1
        if not unowned:
            return
        writers = [
            kv.key.decode().rsplit("/", 1)[1]
            for kv in self.etcd.get_prefix(self._node_key(""))
            if "write" in json.loads(kv.value).get("roles", ())
        ]
        mine = holders.get(self.node_id, 0)
        # The least-loaded live node takes an orphaned shard first; ties go to the smallest id.
        if min((holders.get(n, 0), n) for n in writers or [self.node_id]) < (mine, self.node_id):
            return
        for name in unowned[:1]:
            self.db.try_open(name)

    def metrics(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "address": self.address,
            "roles": list(self.roles),
            "object_store_requests": self.objects.snapshot_requests(),
            "acknowledged_writes": self.acknowledged_writes,
            "shards": sorted(self.db.owned()),
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.db.close()
        try:
            self.etcd.lease_revoke(self._lease)
        except EtcdError:
            pass

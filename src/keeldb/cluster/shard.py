"""One writer per shard, chosen through an etcd lease; manifest commits fenced by it.

The embedded engine's manifest commit is an atomic rename in a directory only one process
can open. In a cluster the manifest pointer lives in etcd and any node could try to move
it, so a commit becomes an etcd transaction with three compares, evaluated atomically by
etcd:

1. the shard's writer key still holds *this* node's id, and
2. it is still attached to *this* node's lease (a lease that expired took the key with
   it; a successor's key carries the successor's lease), and
3. the manifest key's ``mod_revision`` is the one this commit was based on.

(1) and (2) fence a writer whose lease expired — paused by SIGSTOP, cut off by a partition,
or just slow — even though it may still *believe* it is the writer: its keep-alive thread
was paused with it. (3) makes two racing commits exclusive: exactly one moves the pointer;
the other learns it lost and why. Nothing here relies on clocks agreeing: etcd alone
decides whether the lease is alive.
"""

from __future__ import annotations

import threading
import time

from keeldb.cluster.etcd import Compare, Etcd, EtcdError, KeyValue, put_op, range_op
from keeldb.errors import KeelError


class NotWriter(KeelError):
    """Another node holds this shard's writer lease."""


class Fenced(KeelError):
    """This node's writer lease for the shard expired or was taken over: it must not write."""


class CommitConflict(KeelError):
    """The manifest moved since the commit's base version: another commit won."""


def shard_prefix(cluster: str, collection: str, shard: int) -> str:
    return f"/keeldb/{cluster}/collections/{collection}/shards/{shard}/"


class ShardWriter:
    """The right to commit one shard's manifest, held through an etcd lease."""

    @staticmethod
    def writer_key_of(cluster: str, collection: str, shard: int = 0) -> str:
        return shard_prefix(cluster, collection, shard) + "writer"

    def __init__(self, etcd: Etcd, cluster: str, collection: str, shard: int, node: str, ttl: int = 5) -> None:
        self.etcd = etcd
        self.node = node
        self.ttl = ttl
        prefix = shard_prefix(cluster, collection, shard)
        self.writer_key = self.writer_key_of(cluster, collection, shard)
        self.manifest_key = prefix + "manifest"
        self.lease = 0
        self._valid_until = 0.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    # -- the lease ----------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Become the shard's writer if nobody is; never waits."""
        asked = time.monotonic()
        lease = self.etcd.lease_grant(self.ttl)
        r = self.etcd.txn(
            [Compare(self.writer_key, "CREATE", 0)],
            [put_op(self.writer_key, self.node, lease)],
        )
        if not r.succeeded:
            self.etcd.lease_revoke(lease)
            return False
        self.lease = lease
        self._valid_until = asked + self.ttl
        self._lost.clear()
        self._stop.clear()
        self._keeper = threading.Thread(target=self._keep_alive, name=f"keeldb-lease-{self.node}", daemon=True)
        self._keeper.start()
        return True

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the shard (a dead writer's lease expires within
        its TTL, which bounds how long a shard stays without a writer)."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                holder = self.etcd.get(self.writer_key)
                raise NotWriter(f"shard writer is {holder.value.decode() if holder else '?'}, not {self.node}")
            time.sleep(0.1)

    def _keep_alive(self) -> None:
        # Its own client with a short timeout, and a quick retry after a failure: one slow
        # request must not outlast the lease (reads stop at ttl - 0.5 s without a renewal).
        etcd = Etcd(self.etcd.endpoint, timeout=max(0.5, self.ttl / 4))
        wait = self.ttl / 3
        while not self._stop.wait(wait):
            asked = time.monotonic()
            try:
                ttl = etcd.lease_keepalive(self.lease)
            except EtcdError:
                wait = 0.25  # etcd briefly unreachable: the lease may still be alive; retry soon
                continue
            wait = self.ttl / 3
            if ttl <= 0:
                self._lost.set()
                return
            self._valid_until = asked + ttl

    def lease_valid(self, margin: float = 0.5) -> bool:
        """Whether the lease is certainly still alive by this node's own monotonic clock:
        etcd granted (or renewed) it for TTL seconds no earlier than we asked. Reads on the
        writer check this, so a writer resumed after a pause longer than its lease does not
        answer from state a successor has moved past (writes need no such check: the log's
        conditional puts fence them). Only the rate of the local clock matters here, not
        agreement between clocks."""
        return self.believes_writer and time.monotonic() < self._valid_until - margin

    @property
    def believes_writer(self) -> bool:
        """What this node thinks (it may be wrong after a pause; commits do not trust it)."""
        return self.lease != 0 and not self._lost.is_set()

    def release(self) -> None:
        self._stop.set()
        if self.lease:
            try:
                self.etcd.lease_revoke(self.lease)  # the key goes with the lease
            except EtcdError:
                pass  # then it expires within its TTL
        self.lease = 0

    # -- the manifest pointer ------------------------------------------------------------

    def read_manifest(self) -> tuple[bytes | None, int]:
        """(manifest bytes or None, its mod_revision: the base for the next commit)."""
        kv = self.etcd.get(self.manifest_key)
        return (kv.value, kv.mod_revision) if kv else (None, 0)

    def commit(self, manifest: bytes, based_on: int) -> int:
        """Replace the manifest if this node still holds the lease and nobody committed
        since ``based_on``; return the new revision (the next commit's base)."""
        r = self.etcd.txn(
            [
                Compare(self.writer_key, "VALUE", self.node),
                Compare(self.writer_key, "LEASE", self.lease),
                Compare(self.manifest_key, "MOD", based_on),
            ],
            [put_op(self.manifest_key, manifest)],
            [range_op(self.writer_key), range_op(self.manifest_key)],
        )
        if r.succeeded:
            return r.revision
        writer: list[KeyValue] = r.ranges[0] if r.ranges else []
        if not writer or writer[0].lease != self.lease or writer[0].value.decode() != self.node:
            self._lost.set()
            holder = writer[0].value.decode() if writer else "nobody"
            raise Fenced(
                f"node {self.node} lost its writer lease {self.lease:x} for {self.writer_key} "
                f"(now held by {holder}); the commit was refused and nothing was written"
            )
        current = r.ranges[1][0].mod_revision if len(r.ranges) > 1 and r.ranges[1] else 0
        raise CommitConflict(
            f"manifest {self.manifest_key} is at revision {current}, this commit was based on "
            f"{based_on}: another commit won"
        )

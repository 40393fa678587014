"""The cluster's timestamp oracle: reservations in one etcd key, handed out in windows.

Each node runs the ordinary ``TimestampOracle`` over an ``EtcdReservation``. A reservation
is a compare-and-swap on the key: read the bound, write ``max(now, bound) + window``, and
only if nobody wrote in between. So every window starts past every window reserved before
it, by any node: timestamps are unique across the cluster, increase within a node, and a
shard's new writer (which reserves after taking the lease) stamps later than everything its
predecessor could have stamped. One etcd round trip per window (3 s), not per timestamp.
"""

from __future__ import annotations

from keeldb.cluster.etcd import Compare, Etcd, put_op


class EtcdReservation:
    def __init__(self, etcd: Etcd, key: str) -> None:
        self.etcd = etcd
        self.key = key

    def load(self) -> int:
        kv = self.etcd.get(self.key)
        return int(kv.value) if kv else 0

    def reserve(self, physical: int, window: int) -> tuple[int, int]:
        while True:
            kv = self.etcd.get(self.key)
            bound = int(kv.value) if kv else 0
            start = max(physical, bound)
            end = start + window
            r = self.etcd.txn([Compare(self.key, "MOD", kv.mod_revision if kv else 0)], [put_op(self.key, str(end))])
            if r.succeeded:
                return start, end

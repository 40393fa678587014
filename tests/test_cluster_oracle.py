"""The cluster oracle on a real etcd: several nodes, one order."""

from __future__ import annotations

import threading

from keeldb.cluster.etcd import Etcd
from keeldb.cluster.oracle import EtcdReservation
from keeldb.storage.oracle import LOGICAL_BITS, TimestampOracle
from tests.cluster_util import etcd_server  # noqa: F401 - pytest fixture


def test_nodes_get_disjoint_increasing_timestamps(etcd_server: Etcd) -> None:  # noqa: F811
    key = "/keeldb/oracle-test/tso"
    oracles = [TimestampOracle(EtcdReservation(etcd_server, key)) for _ in range(3)]
    got: list[list[int]] = [[] for _ in oracles]

    def run(i: int) -> None:
        for _ in range(300):
            got[i].append(oracles[i].next())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(oracles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [ts for seq in got for ts in seq]
    assert len(set(everything)) == len(everything), "two nodes handed out the same timestamp"
    for seq in got:
        assert seq == sorted(seq) and len(set(seq)) == len(seq)
    # A node that starts later (a shard's next writer) stamps past every window reserved so
    # far, hence past every timestamp any earlier node could still hand out.
    bound = int(etcd_server.get(key).value)
    late = TimestampOracle(EtcdReservation(etcd_server, key))
    assert late.next() >> LOGICAL_BITS >= bound > max(everything) >> LOGICAL_BITS

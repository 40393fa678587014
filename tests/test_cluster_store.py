"""A collection over ClusterStore, against real etcd and SeaweedFS: what happens when two
writers believe they own one shard.

The dangerous case is a writer that was paused (SIGSTOP, a GC pause, a partition) past its
lease and then resumes: it still has a collection open and a log it wants to append to. These
tests stage exactly that in one process, with the lease made to expire by stopping the
paused writer's keep-alive, and check that (1) a successor's recovery contains every write
the paused writer acknowledged, (2) nothing the paused writer does afterwards is
acknowledged, and (3) when the paused writer's put and the successor's seal race for the
same log position, whichever wins, the acknowledged writes and the replayed writes agree.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keeldb.cluster import store as store_mod
from keeldb.cluster.etcd import Etcd
from keeldb.cluster.objectstore import ObjectStore
from keeldb.cluster.oracle import EtcdReservation
from keeldb.cluster.shard import ShardWriter
from keeldb.cluster.store import ClusterStore, LogFenced
from keeldb.engine.collection import Collection
from keeldb.engine.rows import rows_to_batch
from keeldb.errors import KeelError, StorageError
from keeldb.schema import CollectionSchema, DataType, FieldSchema
from keeldb.storage.oracle import TimestampOracle
from tests.cluster_util import etcd_server, object_store, s3_server  # noqa: F401 - pytest fixtures

DIM = 4


def schema() -> CollectionSchema:
    return CollectionSchema(
        [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("vector", DataType.FLOAT_VECTOR, dim=DIM)]
    )


class Writer:
    """One node's view of the shard: a lease, a store and the collection over it."""

    def __init__(self, etcd: Etcd, objects: ObjectStore, root: Path, cluster: str, node: str) -> None:
        self.shard = ShardWriter(etcd, cluster, "1", 0, node, ttl=1)
        deadline = time.monotonic() + 10
        while not self.shard.try_acquire():
            assert time.monotonic() < deadline, "the previous writer's lease never expired"
            time.sleep(0.05)
        oracle = TimestampOracle(EtcdReservation(etcd, f"/keeldb/{cluster}/tso"))
        store = ClusterStore(root / node, objects, 1, self.shard)
        self.coll = Collection(root / node, schema(), oracle, store=store, auto_compact=False)

    def upsert(self, keys: list[int], version: int) -> None:
        rows = [{"id": k, "vector": [float(version)] * DIM} for k in keys]
        self.coll.write(rows_to_batch(self.coll.schema, rows, require_pk=True), upsert=True)

    def state(self) -> dict[int, int]:
        snap = self.coll.snapshot()
        out: dict[int, int] = {}
        for view in snap.views:
            if not view.num_rows:
                continue
            rows = np.flatnonzero(view.visible(snap.ts))
            if rows.size:
                t = view.take(rows, ["id", "vector"])
                out.update({int(k): int(v[0]) for k, v in zip(t["id"], t["vector"], strict=True)})
        return out

    def pause(self) -> None:
        """What SIGSTOP does to the lease: no more keep-alives, so etcd expires it."""
        self.shard._stop.set()  # noqa: SLF001


@pytest.fixture
def env(etcd_server: Etcd, object_store: ObjectStore, tmp_path: Path) -> dict[str, Any]:  # noqa: F811
    return {"etcd": etcd_server, "objects": object_store, "root": tmp_path, "cluster": f"t{uuid.uuid4().hex[:8]}"}


def writer(env: dict[str, Any], node: str) -> Writer:
    return Writer(env["etcd"], env["objects"], env["root"], env["cluster"], node)


def test_successor_replays_every_acknowledged_write_and_the_paused_writer_is_fenced(env: dict[str, Any]) -> None:
    a = writer(env, "a")
    a.upsert([1, 2, 3], 1)
    a.coll.flush()
    a.upsert([3, 4], 2)  # acknowledged: in the log only
    a.pause()
    b = writer(env, "b")  # waits for a's lease to expire, then recovers and seals a's log
    assert b.state() == {1: 1, 2: 1, 3: 2, 4: 2}
    # a resumes and writes: its group commit finds its next log position sealed.
    with pytest.raises(LogFenced, match="taken by another writer"):
        a.upsert([5], 3)
    with pytest.raises(StorageError):
        a.upsert([6], 3)  # read-only from now on
    with pytest.raises(KeelError):
        a.coll.flush()  # nor can it commit a manifest (its lease is gone)
    b.upsert([5], 4)
    b.coll.flush()
    c = writer_after(b, env, "c")
    assert c.state() == {1: 1, 2: 1, 3: 2, 4: 2, 5: 4}


def writer_after(prev: Writer, env: dict[str, Any], node: str) -> Writer:
    prev.coll.close()
    prev.shard.release()
    return writer(env, node)


@pytest.mark.parametrize("winner", ["paused writer", "successor"])
def test_racing_put_and_seal_agree_on_what_was_acknowledged(env: dict[str, Any], winner: str) -> None:
    """The paused writer's group commit and the successor's seal want the same object. Stage
    both orders: the put first (its write is acknowledged, so the successor must replay
    it), and the seal first (the put fails, so the write must not be acknowledged)."""
    a = writer(env, "a")
    a.upsert([1], 1)
    a.pause()
    objects: ObjectStore = env["objects"]
    real_put = objects.put_if_absent
    acked: list[bool] = []

    def racing_put(key: str, data: bytes) -> None:
        objects.put_if_absent = real_put  # type: ignore[method-assign]
        if winner == "paused writer":
            try:  # a's commit lands just before b's seal reaches the store
                a.upsert([2], 2)
                acked.append(True)
            except StorageError:
                acked.append(False)
            real_put(key, data)
        else:
            real_put(key, data)  # b's seal lands first
            try:
                a.upsert([2], 2)
                acked.append(True)
            except StorageError:
                acked.append(False)

    objects.put_if_absent = racing_put  # type: ignore[method-assign]
    b = writer(env, "b")
    if winner == "paused writer":
        assert acked == [True]
        assert b.state() == {1: 1, 2: 2}
    else:
        assert acked == [False]
        assert b.state() == {1: 1}


def test_empty_disk_recovery_downloads_what_the_manifest_names(env: dict[str, Any]) -> None:
    a = writer(env, "a")
    a.upsert(list(range(100)), 1)
    a.coll.flush()
    a.upsert(list(range(50)), 2)
    expected = a.state()
    b = writer_after(a, env, "b")  # its own, empty, directory
    assert b.state() == expected
    assert any(p.name.startswith("seg-") for p in (env["root"] / "b").iterdir())


def test_garbage_collection_never_deletes_a_successors_files(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused writer that resumes and runs GC must not remove files its successor wrote
    (they carry the successor's tag, and no manifest the paused writer saw names them)."""
    monkeypatch.setattr(store_mod, "GC_GRACE_S", 0.0)
    a = writer(env, "a")
    a.upsert([1, 2], 1)
    a.coll.flush()
    a.pause()
    b = writer(env, "b")
    b.upsert([3], 2)
    b.coll.flush()
    a.coll._collect_garbage()  # noqa: SLF001 - what a resumed writer's next flush would do
    c = writer_after(b, env, "c")
    assert c.state() == {1: 1, 2: 1, 3: 2}


def test_garbage_waits_out_its_grace_then_goes(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Superseded files and logs stay for the grace period (a replica may still be loading
    the manifest that names them), and are deleted by the first collection after it."""
    monkeypatch.setattr(store_mod, "GC_GRACE_S", 1.0)
    objects: ObjectStore = env["objects"]
    a = writer(env, "a")
    for v in range(4):
        a.upsert(list(range(v * 10, v * 10 + 10)), v)
        a.coll.flush()
    assert a.coll.compact(force=True)
    inputs = a.coll._versions.retained[1].files() - a.coll._versions.current.files()  # noqa: SLF001

    def stored() -> set[str]:
        return {k.rsplit("/", 1)[1] for k in objects.list("collections/1/files/")}

    a.upsert([98], 8)
    a.coll.flush()  # the inputs leave the retained manifests: deletable from now on
    assert inputs and inputs <= stored()  # ... but inside their grace
    time.sleep(1.2)
    a.upsert([99], 9)
    a.coll.flush()  # the first collection after the grace deletes them
    assert not inputs & stored()
    assert stored() == set().union(*(m.files() for m in a.coll._versions.retained))  # noqa: SLF001
    logs = {int(k.split("/")[3]) for k in objects.list("collections/1/wal/")}
    assert min(logs) >= min(m.log_checkpoint for m in a.coll._versions.retained) - 1  # noqa: SLF001
    b = writer_after(a, env, "b")
    assert b.state() == {**{k: k // 10 for k in range(40)}, 98: 8, 99: 9}

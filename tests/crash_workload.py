"""A deterministic workload that passes through every crash point, and the model to check it.

Run as a child process: ``python tests/crash_workload.py DATA_DIR JOURNAL``. Before each
operation it journals ``begin``, after the call returns it journals ``ack``; a SIGKILL at a
crash point therefore leaves a journal that says exactly which operations were acknowledged
and which one (at most one: the workload is single-threaded) was in flight.

``expected_states`` turns a journal into the states recovery may legally produce: the model
of acknowledged operations, and — if an operation was in flight — that model with the
in-flight operation applied in full. Anything else (a lost ack, half a batch, a key twice)
is a bug.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

DIM = 8
COLLECTION = "crash"
# KEELDB_CRASH_VECTORS=1: the collection also holds a sparse, a binary and a float16 vector
# field, each with its own index kind (inverted index, BIN_IVF_FLAT, HNSW over fp16), so the
# crash points of flushes, index builds and compactions cover their files too.
VECTORS = os.environ.get("KEELDB_CRASH_VECTORS") == "1"


def vec(pk: int, version: int) -> list[float]:
    """Unique per (pk, version), so an exact search for it can only find that version."""
    return [pk / 10, version / 10] + [float((pk * 31 + version * 7 + i) % 97) / 10 for i in range(DIM - 2)]


def sparse_vec(pk: int, version: int) -> dict[int, float]:
    """Unique per (pk, version) too: dimension 1000 + pk is the key's own."""
    return {pk % 13: 1.0 + version % 4, 1000 + pk: 2.0 + version / 100, 2**32 - 2: 0.25}


def binary_vec(pk: int, version: int) -> bytes:
    return bytes([pk % 256, pk // 256, version % 256, 0x5A])


def half_vec(pk: int, version: int) -> list[float]:
    return np.asarray(vec(pk, version), dtype=np.float16).astype(float).tolist()


def row(pk: int, version: int) -> dict[str, Any]:
    r: dict[str, Any] = {"id": pk, "vector": vec(pk, version), "val": version, "tag": f"t{pk % 5}"}
    if VECTORS:
        r.update(sv=sparse_vec(pk, version), bv=binary_vec(pk, version), hv=half_vec(pk, version))
    if version > add_field_op():
        r["extra"] = version
    return r


# Each op: (kind, payload). Writes stamp val = the op's index, so every version is unique.
def operations() -> list[tuple[str, Any]]:
    ops: list[tuple[str, Any]] = [("create", None)]
    ops += [("insert", list(range(i, i + 50))) for i in (0, 50, 100)]
    ops += [("upsert", list(range(0, 20))), ("delete", list(range(100, 110))), ("flush", None)]
    ops += [("wait_index", None), ("upsert", list(range(10, 40))), ("delete", list(range(140, 150)))]
    ops += [("insert", list(range(150, 200))), ("delete_filter", "id >= 190"), ("flush", None)]
    ops += [("upsert", list(range(0, 50))), ("reopen", None), ("upsert", list(range(50, 60)))]
    ops += [("insert", [100, 101]), ("flush", None), ("upsert", list(range(5, 15))), ("reopen", None)]
    ops += [("delete", [0, 1, 2]), ("flush", None)]
    ops += [("create_partition", "p1"), ("insert_p1", list(range(300, 330))), ("upsert_p1", [3, 4])]
    ops += [("flush", None), ("drop_partition", "p1"), ("insert", [300, 301])]
    ops += [("flush", None), ("compact", None), ("upsert", list(range(40, 60))), ("delete", [41])]
    ops += [("flush", None), ("compact", None), ("wait_index", None), ("reopen", None)]
    # Issue 14: a schema change on the live collection, a partial update, then a TTL whose
    # rows all expire when the clock jumps, new rows, and the compaction that reclaims.
    ops += [("add_field", None), ("upsert", list(range(60, 80))), ("partial", list(range(60, 70)))]
    ops += [("flush", None), ("set_ttl", 3600), ("jump", 7200), ("insert", list(range(0, 10)))]
    ops += [("flush", None), ("compact", None), ("reopen", None), ("upsert", list(range(5, 15))), ("reopen", None)]
    return ops


def add_field_op() -> int:
    """The index of the add_field op: rows written before it read ``extra`` = -1."""
    return next(i for i, (kind, _) in enumerate(operations()) if kind == "add_field")


def apply(model: dict[int, int] | None, i: int, kind: str, payload: Any) -> dict[int, int] | None:
    """The model: pk -> val of its live version, or None before the collection exists."""
    if kind == "create":
        return {} if model is None else model
    assert model is not None
    m = dict(model)
    if kind in ("insert", "upsert", "insert_p1", "upsert_p1", "partial"):
        for pk in payload:
            m[pk] = i
    elif kind == "jump":  # every version written so far is past the TTL
        m = {}
    elif kind == "delete":
        for pk in payload:
            m.pop(pk, None)
    elif kind == "delete_filter":
        for pk in [k for k in m if k >= 190]:
            m.pop(pk)
    elif kind == "drop_partition":
        for pk in list(m):
            if _in_p1(pk, m[pk]):
                m.pop(pk)
    return m


def _in_p1(pk: int, version: int) -> bool:
    """Whether the live version (pk, version) was written into partition p1."""
    kind, payload = operations()[version]
    return kind in ("insert_p1", "upsert_p1") and pk in payload


def open_client(data: Path) -> Any:
    """The embedded client on ``data``; or, with ``KEELDB_TEST_CLUSTER`` set (JSON: etcd,
    storage, endpoint), a cluster node's client on a NEW, empty local directory under
    ``data``: everything it reads must come from etcd and the object store."""
    import keeldb

    spec = os.environ.get("KEELDB_TEST_CLUSTER")
    if not spec:
        return keeldb.Client(str(data))
    import time

    from keeldb.cluster.node import Node, NotOwner

    cfg = json.loads(spec)
    data.mkdir(parents=True, exist_ok=True)
    i = len(list(data.glob("node-*")))
    node = Node(
        etcd=cfg["etcd"], storage=cfg["storage"], s3_endpoint=cfg["endpoint"], data_dir=data / f"node-{i}",
        address=f"127.0.0.1:{1 + i}", node_id=f"node-{i}", lease_ttl=2,
    )  # fmt: skip
    client = node.client
    client._node = node  # closed by close_client
    # A node killed a moment ago still holds the writer lease for up to its TTL. The TTL is
    # 2 s, not 1: a writer stops once it cannot be sure its lease is valid, and on a loaded
    # 2-core machine a 1 s lease lapsed between renewals (the workload died "lease not
    # certainly valid"), which is the safety rule working, not the bug under test.
    deadline = time.monotonic() + 30
    while node.db.catalog.get(COLLECTION) is not None:
        try:
            node.db.collection(COLLECTION)
            break
        except NotOwner:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return client


def close_client(client: Any) -> None:
    node = getattr(client, "_node", None)
    client.close()
    if node is not None:
        node.close()


def run(data: Path, journal: Path) -> None:
    from keeldb import DataType

    j = open(journal, "a", buffering=1)  # noqa: SIM115 - lives until the process dies
    client = open_client(data)
    for i, (kind, payload) in enumerate(operations()):
        j.write(json.dumps({"op": i, "event": "begin"}) + "\n")
        j.flush()
        if kind == "create":
            schema = client.create_schema(enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
            schema.add_field("val", DataType.INT64)
            schema.add_field("tag", DataType.VARCHAR, max_length=16)
            idx = client.prepare_index_params()
            # An ANN index over segments of >= KEELDB_INDEX_MIN_ROWS rows (the crash matrix
            # sets it low), so index builds and their commits run through the crash points.
            idx.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": 2})
            if VECTORS:
                schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
                schema.add_field("bv", DataType.BINARY_VECTOR, dim=32)
                schema.add_field("hv", DataType.FLOAT16_VECTOR, dim=DIM)
                idx.add_index("sv", "SPARSE_INVERTED_INDEX", metric_type="IP")
                idx.add_index("bv", "BIN_IVF_FLAT", metric_type="HAMMING", params={"nlist": 2})
                idx.add_index("hv", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
            client.create_collection(COLLECTION, schema=schema, index_params=idx)
        elif kind == "insert":
            client.insert(COLLECTION, [row(pk, i) for pk in payload])
        elif kind == "upsert":
            client.upsert(COLLECTION, [row(pk, i) for pk in payload])
        elif kind == "delete":
            client.delete(COLLECTION, ids=payload)
        elif kind == "delete_filter":
            client.delete(COLLECTION, filter=payload)
        elif kind == "flush":
            client.flush(COLLECTION)
        elif kind == "create_partition":
            client.create_partition(COLLECTION, payload)
        elif kind == "insert_p1":
            client.insert(COLLECTION, [row(pk, i) for pk in payload], partition_name="p1")
        elif kind == "upsert_p1":
            client.upsert(COLLECTION, [row(pk, i) for pk in payload], partition_name="p1")
        elif kind == "drop_partition":
            client.drop_partition(COLLECTION, payload)
        elif kind == "compact":
            client.compact(COLLECTION)
        elif kind == "wait_index":
            client.wait_for_index(COLLECTION)
        elif kind == "reopen":
            close_client(client)
            client = open_client(data)
        elif kind == "add_field":
            client.add_collection_field(COLLECTION, "extra", DataType.INT64, nullable=True, default_value=-1)
        elif kind == "partial":  # val, vector and extra change; tag keeps its stored value
            client.upsert(
                COLLECTION, [{"id": pk, "val": i, "vector": vec(pk, i), "extra": i} for pk in payload], partial_update=True
            )
        elif kind == "set_ttl":
            client.alter_collection_properties(COLLECTION, {"collection.ttl.seconds": payload})
        elif kind == "jump":  # the clock every age is measured against moves on, durably
            from keeldb.storage.oracle import LOGICAL_BITS

            oracle = client.db.oracle
            oracle.observe(oracle.last() + ((payload * 1000) << LOGICAL_BITS))
            oracle.next()
        j.write(json.dumps({"op": i, "event": "ack"}) + "\n")
        j.flush()
    close_client(client)
    j.write(json.dumps({"event": "done"}) + "\n")


def expected_states(journal: Path) -> tuple[list[dict[int, int] | None], bool]:
    """(legal states, whether the workload finished)."""
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    ops = operations()
    acked = {e["op"] for e in events if e.get("event") == "ack"}
    begun = [e["op"] for e in events if e.get("event") == "begin"]
    done = any(e.get("event") == "done" for e in events)
    model: dict[int, int] | None = None
    for i in sorted(acked):
        model = apply(model, i, *ops[i])
    states = [model]
    in_flight = [i for i in begun if i not in acked]
    assert len(in_flight) <= 1, in_flight
    if in_flight:
        i = in_flight[0]
        states.append(apply(model, i, *ops[i]))
    return states, done


def observed_state(data: Path) -> dict[int, int] | None:
    """Reopen the directory and read the whole collection, checking internal consistency."""
    client = open_client(data)
    try:
        if not client.has_collection(COLLECTION):
            return None
        added = any(f["name"] == "extra" for f in client.describe_collection(COLLECTION)["fields"])
        extra = ["sv", "bv", "hv"] if VECTORS else []
        fields = ["id", "val", "vector", "tag", *extra] + (["extra"] if added else [])
        rows = client.query(COLLECTION, filter="", output_fields=fields)
        count = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), "a primary key is visible twice"
        assert count == len(ids), f"count(*) {count} != rows {len(ids)}"
        for r in rows:
            assert np.allclose(r["vector"], vec(r["id"], r["val"]), atol=1e-6), r
            if VECTORS:
                assert r["sv"] == {k: float(np.float32(v)) for k, v in sparse_vec(r["id"], r["val"]).items()}, r
                assert r["bv"] == [binary_vec(r["id"], r["val"])], r
                assert np.frombuffer(r["hv"][0], dtype=np.float16).tolist() == half_vec(r["id"], r["val"]), r
            assert r["tag"] == f"t{r['id'] % 5}", r  # a partial update keeps it
            if added:  # rows from before the field existed read its default
                assert r["extra"] == (-1 if r["val"] < add_field_op() else r["val"]), r
        # Search must only return live versions: look each live row up by its own vector.
        if rows:
            probe = rows[:: max(1, len(rows) // 10)]
            hits = client.search(
                COLLECTION, [vec(r["id"], r["val"]) for r in probe], limit=1, output_fields=["val"],
                anns_field="vector", search_params={"nprobe": 2},
            )
            for r, h in zip(probe, hits, strict=True):
                assert h and h[0]["id"] == r["id"] and h[0]["entity"]["val"] == r["val"], (r, h)
            if VECTORS:  # each index kind, exact here: only live versions, the right one first
                for field, q, params in (
                    ("sv", [{1000 + r["id"]: 1.0} for r in probe], {}),
                    ("bv", [binary_vec(r["id"], r["val"]) for r in probe], {"nprobe": 2}),
                    ("hv", [half_vec(r["id"], r["val"]) for r in probe], {"ef": 64}),
                ):
                    hits = client.search(COLLECTION, q, anns_field=field, limit=1, output_fields=["val"],
                                         search_params={"params": params})  # fmt: skip
                    for r, h in zip(probe, hits, strict=True):
                        assert h and h[0]["id"] == r["id"] and h[0]["entity"]["val"] == r["val"], (field, r, h)
        return {r["id"]: r["val"] for r in rows}
    finally:
        close_client(client)


def run_child(data: Path, journal: Path, crash_at: str | None, env_extra: dict[str, str] | None = None) -> int:
    """Run the workload in a child process, optionally armed to die at ``crash_at``
    (``point:nth``); return its exit code (0, or -9 when the crash point killed it)."""
    import subprocess

    here = Path(__file__).resolve().parent
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = str(here.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("KEELDB_CRASH_AT", None)
    env["KEELDB_COMPACTION_RETENTION_MS"] = "0"  # compaction drops dead versions at once
    env["KEELDB_INDEX_MIN_ROWS"] = "20"  # the workload's small segments get ANN indexes
    if crash_at:
        env["KEELDB_CRASH_AT"] = crash_at
    proc = subprocess.run(
        [sys.executable, str(here / "crash_workload.py"), str(data), str(journal)],
        env=env,
        capture_output=True,
        timeout=180,
    )
    if proc.returncode not in (0, -9):
        raise AssertionError(f"child failed ({proc.returncode}): {proc.stderr.decode()[-3000:]}")
    return proc.returncode


def check(data: Path, journal: Path) -> None:
    """The reopened data must be one of the legal outcomes of the journal."""
    states, _ = expected_states(journal)
    got = observed_state(data)
    want = states[0] or {}
    assert got in states, (
        f"recovered state is not a legal outcome.\n"
        f"extra keys: {sorted(set(got or {}) - set(want))[:20]}\n"
        f"missing keys: {sorted(set(want) - set(got or {}))[:20]}\n"
        f"wrong values: {[(k, v, want.get(k)) for k, v in (got or {}).items() if want.get(k) not in (None, v)][:20]}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    run(Path(sys.argv[1]), Path(sys.argv[2]))
    os._exit(0)

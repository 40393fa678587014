"""End to end: the real ``pymilvus.MilvusClient`` against ``keeldb serve`` in a child process.

One server serves the whole module (``server`` fixture); each test uses its own collection
names. Servers with other flags (``--auth``, ``--max-message-mb``) and the SIGKILL/restart
test start their own. What pymilvus sends and expects is described in
docs/research/pymilvus-wire.md; section numbers below refer to it.

Covered: connect/version/AllocTimestamp; quick-setup and schema collections (nullable,
default, JSON, VARCHAR, dynamic fields, index_params, several vector fields);
describe/has/list/drop/rename/stats; partitions; insert/upsert/delete/get/query/search
(L2/IP/COSINE checked against numpy, filters, offsets, output fields, range search);
query and search iterators; flush; index and load-state lifecycle; consistency levels;
status codes; embedded ``keeldb.Client`` and server giving identical answers; auth; bad
input over the wire leaving the collection unchanged; an oversized request; SIGKILL and
restart; ``AsyncMilvusClient``; concurrent clients.

Server bugs these tests found (fixed in server/service.py and convert.py): the search
iterator skipped rows tied at a page's last score; a stale pymilvus schema cache (collection
re-created elsewhere) silently stored a declared field's value in $meta and NULL in the
column; group_by / order_by were silently ignored; an empty collection reported
session_ts 0. The module-scoped server's stderr must end up free of tracebacks: an
unexpected exception in the service would be answered as code 65535.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from pymilvus import AsyncMilvusClient, DataType, MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

import keeldb
from tests.server_util import KeelServer, kill_and_restart

DIM = 4
N_DATA = 60
COLORS = ("red", "green", "blue")
FAST = 3.0  # seconds: an error must come back at once, not after a retry storm


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def stub(server: KeelServer) -> Iterator[milvus_pb2_grpc.MilvusServiceStub]:
    """A raw gRPC stub, for requests pymilvus would refuse to build."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield milvus_pb2_grpc.MilvusServiceStub(channel)
    channel.close()


def vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def data_rows(n: int = N_DATA, seed: int = 0) -> list[dict[str, Any]]:
    vecs = vectors(n, seed=seed)
    return [
        {"id": i, "vector": vecs[i].tolist(), "color": COLORS[i % 3], "n": i} for i in range(n)
    ]


@pytest.fixture(scope="module")
def data(mc: MilvusClient) -> list[dict[str, Any]]:
    """Collection ``data``: quick setup, L2, N_DATA rows with dynamic keys ``color`` and
    ``n``, half flushed into a segment and half growing. Read-only for the tests."""
    rows = data_rows()
    mc.create_collection("data", dimension=DIM, metric_type="L2")
    mc.insert("data", rows[: N_DATA // 2])
    mc.flush("data")
    mc.insert("data", rows[N_DATA // 2 :])
    return rows


def count(c: MilvusClient, name: str, flt: str = "", **kw: Any) -> int:
    return int(c.query(name, filter=flt, output_fields=["count(*)"], **kw)[0]["count(*)"])


def plain(row: Any) -> dict[str, Any]:
    """A result row as plain Python values (vectors as lists of float32 values)."""
    out = {}
    for k, v in dict(row).items():
        if k == "vector" or isinstance(v, np.ndarray):
            v = np.asarray(v, dtype=np.float32).tolist()
        out[k] = v
    return out


def listed(res: Any) -> list[dict[str, Any]]:
    """Query/get results materialized (pymilvus fills some columns lazily, on iteration)."""
    return [plain(r) for r in res]


def state(c: MilvusClient, name: str) -> tuple[int, list[dict[str, Any]], int]:
    """Everything a failed call must leave alone: count(*), every row with every field, stats."""
    rows = sorted((plain(r) for r in c.query(name, filter="", output_fields=["*"])), key=lambda r: r["id"])
    return count(c, name), rows, int(c.get_collection_stats(name)["row_count"])


def expect_error(fn: Callable[[], Any], code: int | None, *words: str) -> MilvusException:
    """``fn`` raises a MilvusException quickly, with ``code`` and readable ``words``."""
    t0 = time.monotonic()
    with pytest.raises(MilvusException) as info:
        fn()
    elapsed = time.monotonic() - t0
    e = info.value
    assert elapsed < FAST, f"the error took {elapsed:.1f}s (retried?): {e}"
    if code is not None:
        assert e.code == code, f"expected code {code}, got {e.code}: {e.message}"
    for w in words:
        assert w.lower() in e.message.lower(), f"{w!r} not in the message {e.message!r}"
    return e


def brute_force(base: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Scores as Milvus reports them: squared L2, raw inner product, cosine similarity."""
    if metric == "L2":
        return ((base[None, :, :] - q[:, None, :]) ** 2).sum(-1)
    if metric == "IP":
        return q @ base.T
    bn = base / np.linalg.norm(base, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return qn @ bn.T


def best_first(scores: np.ndarray, metric: str) -> np.ndarray:
    return np.argsort(scores, kind="stable") if metric == "L2" else np.argsort(-scores, kind="stable")


def hit_tuples(res: Any) -> list[list[tuple[Any, float, dict[str, Any]]]]:
    return [[(h["id"], float(h["distance"]), plain(h["entity"])) for h in hits] for hits in res]


# ---------------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------------


def test_connect_and_server_version(
    server: KeelServer, mc: MilvusClient, stub: milvus_pb2_grpc.MilvusServiceStub
) -> None:
    version = mc.get_server_version()
    assert isinstance(version, str) and version.startswith("v")
    detail = mc.get_server_version(detail=True)
    assert detail["version"] == version
    # A second client with its own channel: Connect answers a fresh identifier.
    other = MilvusClient(uri=server.uri, dedicated=True)
    assert other.list_collections() is not None
    other.close()
    # AllocTimestamp (used by create_index's wait loop, mandatory for AsyncMilvusClient).
    t1 = stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    t2 = stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    assert t1.status.code == 0 and t2.status.code == 0
    assert 0 < t1.timestamp < t2.timestamp
    assert t1.timestamp >> 18 > 1_600_000_000_000  # hybrid: physical milliseconds << 18
    reply = stub.Connect(milvus_pb2.ConnectRequest())
    assert reply.status.code == 0 and reply.identifier > 0


# ---------------------------------------------------------------------------------------------
# Collections
# ---------------------------------------------------------------------------------------------


def test_quick_setup_int_ids(mc: MilvusClient, stub: milvus_pb2_grpc.MilvusServiceStub) -> None:
    mc.create_collection("quick_int", dimension=DIM)
    # empty: one (empty) hit list per query, no rows, count 0
    assert [list(h) for h in mc.search("quick_int", [[1, 0, 0, 0], [0, 1, 0, 0]], limit=3)] == [[], []]
    assert listed(mc.query("quick_int", filter="", output_fields=["*"])) == []
    assert count(mc, "quick_int") == 0
    # ...and still a real snapshot timestamp (0 makes pymilvus's iterators fall back to the
    # client's clock, with a warning)
    empty = stub.Query(milvus_pb2.QueryRequest(collection_name="quick_int", expr="", output_fields=["id"]))
    assert empty.status.code == 0 and empty.session_ts > 0
    assert mc.has_collection("quick_int")
    assert "quick_int" in mc.list_collections()
    d = mc.describe_collection("quick_int")
    assert d["collection_name"] == "quick_int"
    assert d["auto_id"] is False and d["enable_dynamic_field"] is True
    assert [(f["name"], f["type"]) for f in d["fields"]] == [
        ("id", DataType.INT64),
        ("vector", DataType.FLOAT_VECTOR),
    ]
    assert d["fields"][0]["is_primary"] is True
    assert d["fields"][1]["params"]["dim"] == DIM
    assert all(f["name"] != "$meta" for f in d["fields"])
    assert str(mc.get_load_state("quick_int")["state"]) == "Loaded"
    assert mc.list_indexes("quick_int") == ["vector"]
    idx = mc.describe_index("quick_int", "vector")
    assert idx["metric_type"] == "COSINE" and idx["state"] == "Finished"
    res = mc.insert("quick_int", [{"id": 7, "vector": [1, 2, 3, 4], "extra": "x"}])
    assert res["insert_count"] == 1 and list(res["ids"]) == [7]
    assert listed(mc.get("quick_int", ids=[7], output_fields=["extra"])) == [{"id": 7, "extra": "x"}]


def test_quick_setup_string_ids(mc: MilvusClient) -> None:
    mc.create_collection("quick_str", dimension=DIM, id_type="string", max_length=16, metric_type="IP")
    d = mc.describe_collection("quick_str")
    pk = d["fields"][0]
    assert pk["type"] == DataType.VARCHAR and pk["params"]["max_length"] == 16 and pk["is_primary"]
    rows = [{"id": f"k{i:02d}", "vector": [float(i), 1, 0, 0]} for i in range(12)]
    assert list(mc.insert("quick_str", rows)["ids"]) == [r["id"] for r in rows]
    got = mc.get("quick_str", ids=["k03", "k10", "nope"], output_fields=["vector"])
    assert sorted(r["id"] for r in got) == ["k03", "k10"]
    assert mc.delete("quick_str", ids=["k00", "k01"])["delete_count"] == 2
    assert count(mc, "quick_str") == 10
    assert [r["id"] for r in mc.query("quick_str", filter='id >= "k09"', output_fields=["id"])] == [
        "k09", "k10", "k11"
    ]
    hits = mc.search("quick_str", [[1, 0, 0, 0]], limit=3)
    assert [h["id"] for h in hits[0]] == ["k11", "k10", "k09"]
    # pk order for a VARCHAR key, through the query iterator
    it = mc.query_iterator("quick_str", batch_size=3, output_fields=["id"])
    seen: list[str] = []
    while page := it.next():
        seen.extend(r["id"] for r in page)
    it.close()
    assert seen == [f"k{i:02d}" for i in range(2, 12)]


def test_quick_setup_auto_id(mc: MilvusClient) -> None:
    mc.create_collection("quick_auto", dimension=DIM, auto_id=True, metric_type="L2")
    d = mc.describe_collection("quick_auto")
    assert d["auto_id"] is True and d["fields"][0]["auto_id"] is True
    rows = [{"vector": [float(i), 0, 0, 0], "tag": i} for i in range(5)]
    ids = list(mc.insert("quick_auto", rows)["ids"])
    assert len(ids) == 5 and len(set(ids)) == 5 and all(isinstance(i, int) for i in ids)
    more = list(mc.insert("quick_auto", rows[:2])["ids"])
    assert not set(more) & set(ids)
    got = {r["id"]: r["tag"] for r in mc.get("quick_auto", ids=ids, output_fields=["tag"])}
    assert got == {ids[i]: i for i in range(5)}
    # upsert on an auto-id collection names its keys
    assert mc.upsert("quick_auto", [{"id": ids[0], "vector": [9, 9, 9, 9], "tag": 99}])["upsert_count"] == 1
    assert listed(mc.get("quick_auto", ids=[ids[0]], output_fields=["tag"])) == [{"id": ids[0], "tag": 99}]
    assert count(mc, "quick_auto") == 7


def schema_with_everything() -> Any:
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True, description="all kinds")
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("age", DataType.INT32, nullable=True)
    s.add_field("score", DataType.DOUBLE, default_value=1.5)
    s.add_field("meta", DataType.JSON, nullable=True)
    s.add_field("name", DataType.VARCHAR, max_length=16)
    s.add_field("flag", DataType.BOOL)
    return s


def test_schema_nullable_default_json_varchar_dynamic(mc: MilvusClient) -> None:
    ip = MilvusClient.prepare_index_params()
    ip.add_index("vector", index_type="HNSW", index_name="vidx", metric_type="L2",
                 params={"M": 8, "efConstruction": 64})
    mc.create_collection("full", schema=schema_with_everything(), index_params=ip)
    assert str(mc.get_load_state("full")["state"]) == "Loaded"
    d = mc.describe_collection("full")
    assert d["description"] == "all kinds" and d["enable_dynamic_field"] is True
    f = {x["name"]: x for x in d["fields"]}
    assert list(f) == ["id", "vector", "age", "score", "meta", "name", "flag"]
    assert f["age"].get("nullable") is True and f["meta"].get("nullable") is True
    assert f["score"]["default_value"].double_data == 1.5
    assert f["name"]["params"]["max_length"] == 16 and f["name"]["type"] == DataType.VARCHAR
    assert f["meta"]["type"] == DataType.JSON
    idx = mc.describe_index("full", "vidx")
    assert (idx["index_type"], idx["metric_type"], idx["M"], idx["efConstruction"]) == ("HNSW", "L2", "8", "64")

    rows = [
        {"id": 1, "vector": [1, 0, 0, 0], "age": None, "meta": {"a": 1, "tags": ["x"]}, "name": "one",
         "flag": True, "color": "red"},
        {"id": 2, "vector": [0, 1, 0, 0], "age": 30, "score": 2.0, "meta": None, "name": "two",
         "flag": False},
        {"id": 3, "vector": [0, 0, 1, 0], "name": "three", "meta": {"a": [1, 2]}, "flag": True, "n": 7},
    ]
    assert mc.insert("full", rows)["insert_count"] == 3
    got = sorted((plain(r) for r in mc.query("full", filter="", output_fields=["*"])), key=lambda r: r["id"])
    assert got == [
        {"id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "age": None, "score": 1.5, "meta": {"a": 1, "tags": ["x"]},
         "name": "one", "flag": True, "color": "red"},
        {"id": 2, "vector": [0.0, 1.0, 0.0, 0.0], "age": 30, "score": 2.0, "meta": None, "name": "two",
         "flag": False},
        {"id": 3, "vector": [0.0, 0.0, 1.0, 0.0], "age": None, "score": 1.5, "meta": {"a": [1, 2]},
         "name": "three", "flag": True, "n": 7},
    ]
    q = mc.query
    assert [r["id"] for r in q("full", filter='meta["a"] == 1', output_fields=["id"])] == [1]
    assert [r["id"] for r in q("full", filter="age is null", output_fields=["id"])] == [1, 3]
    assert listed(q("full", filter='color == "red"', output_fields=["color", "n"])) == [{"id": 1, "color": "red"}]
    assert listed(q("full", filter="n == 7", output_fields=["n", "score"])) == [{"id": 3, "n": 7, "score": 1.5}]
    assert [r["id"] for r in q("full", filter='name like "t%" and flag', output_fields=["id"])] == [3]
    # nullable and JSON columns in search results (dense columns with validity flags, §12)
    hits = mc.search("full", [[0, 0, 1, 0]], limit=3, output_fields=["age", "meta", "name", "color"])[0]
    assert [h["id"] for h in hits] == [3, 1, 2]
    assert [plain(h["entity"]) for h in hits] == [
        {"age": None, "meta": {"a": [1, 2]}, "name": "three"},
        {"age": None, "meta": {"a": 1, "tags": ["x"]}, "name": "one", "color": "red"},
        {"age": 30, "meta": None, "name": "two"},
    ]


def test_several_vector_fields_and_anns_field(mc: MilvusClient) -> None:
    s = MilvusClient.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v1", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("v2", DataType.FLOAT_VECTOR, dim=2)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("v1", index_type="FLAT", metric_type="L2")
    ip.add_index("v2", index_type="FLAT", metric_type="IP")
    mc.create_collection("two_vec", schema=s, index_params=ip)
    assert sorted(mc.list_indexes("two_vec")) == ["v1", "v2"]
    assert mc.list_indexes("two_vec", field_name="v2") == ["v2"]
    mc.insert("two_vec", [{"id": i, "v1": [float(i), 0, 0, 0], "v2": [1.0, float(i)]} for i in range(5)])
    by_v1 = mc.search("two_vec", [[4, 0, 0, 0]], limit=2, anns_field="v1")[0]
    assert [h["id"] for h in by_v1] == [4, 3]
    by_v2 = mc.search("two_vec", [[0, 1]], limit=2, anns_field="v2", output_fields=["v2"])[0]
    assert [(h["id"], h["distance"]) for h in by_v2] == [(4, 4.0), (3, 3.0)]
    assert plain(by_v2[0]["entity"]) == {"v2": [1.0, 4.0]}
    expect_error(lambda: mc.search("two_vec", [[1, 0, 0, 0]], limit=2), 1100, "anns_field")
    expect_error(lambda: mc.search("two_vec", [[1, 0, 0, 0]], anns_field="id"), 1100, "vector field")


def test_describe_list_rename_stats_drop(mc: MilvusClient) -> None:
    mc.create_collection("ren_a", dimension=DIM, metric_type="L2")
    mc.insert("ren_a", data_rows(10))
    assert mc.get_collection_stats("ren_a") == {"row_count": 10}
    mc.rename_collection("ren_a", "ren_b")
    assert not mc.has_collection("ren_a") and mc.has_collection("ren_b")
    names = mc.list_collections()
    assert "ren_b" in names and "ren_a" not in names
    assert mc.get_collection_stats("ren_b")["row_count"] == 10
    assert count(mc, "ren_b") == 10
    mc.insert("ren_b", [{"id": 100, "vector": [0, 0, 0, 1]}])
    assert mc.get_collection_stats("ren_b")["row_count"] == 11
    mc.create_collection("ren_c", dimension=DIM)
    expect_error(lambda: mc.rename_collection("ren_b", "ren_c"), 1100, "ren_c")
    expect_error(lambda: mc.rename_collection("ren_missing", "ren_d"), 100)
    mc.drop_collection("ren_b")
    assert not mc.has_collection("ren_b") and "ren_b" not in mc.list_collections()
    mc.drop_collection("ren_b")  # like Milvus: dropping a missing collection succeeds
    # The same name again, another dimension: the client's schema cache was dropped too.
    mc.create_collection("ren_b", dimension=2, metric_type="L2")
    mc.insert("ren_b", [{"id": 1, "vector": [1, 2]}])
    assert listed(mc.get("ren_b", ids=[1], output_fields=["vector"])) == [{"id": 1, "vector": [1.0, 2.0]}]
    # creating an identical collection again is a no-op, a different one an error
    mc.create_collection("ren_b", dimension=2, metric_type="L2")
    assert count(mc, "ren_b") == 1
    expect_error(lambda: mc.create_collection("ren_b", dimension=3), 1100, "exists")


# ---------------------------------------------------------------------------------------------
# Partitions
# ---------------------------------------------------------------------------------------------


def test_partitions(mc: MilvusClient) -> None:
    mc.create_collection("parts", dimension=DIM, metric_type="L2")
    mc.create_partition("parts", "p1")
    mc.create_partition("parts", "p2")
    assert mc.has_partition("parts", "p1") and not mc.has_partition("parts", "p3")
    assert mc.list_partitions("parts") == ["_default", "p1", "p2"]
    mc.insert("parts", [{"id": i, "vector": [float(i), 0, 0, 0]} for i in range(0, 5)])
    mc.insert("parts", [{"id": i, "vector": [float(i), 0, 0, 0]} for i in range(5, 10)], partition_name="p1")
    mc.insert("parts", [{"id": i, "vector": [float(i), 0, 0, 0]} for i in range(10, 15)], partition_name="p2")
    ids = lambda rows: sorted(r["id"] for r in rows)  # noqa: E731
    assert ids(mc.query("parts", filter="", partition_names=["p1"], output_fields=["id"])) == list(range(5, 10))
    assert ids(mc.query("parts", filter="id > 3", partition_names=["_default", "p2"], output_fields=["id"])) == [
        4, 10, 11, 12, 13, 14
    ]
    assert count(mc, "parts", partition_names=["p2"]) == 5
    assert count(mc, "parts") == 15
    hits = mc.search("parts", [[0, 0, 0, 0]], limit=3, partition_names=["p2"])[0]
    assert [h["id"] for h in hits] == [10, 11, 12]
    assert mc.get_partition_stats("parts", "p1") == {"row_count": 5}
    # a delete scoped to one partition leaves the others alone
    assert mc.delete("parts", filter="id >= 0", partition_name="p1")["delete_count"] == 5
    assert count(mc, "parts") == 10
    # upsert moves a key to the partition named in the call
    mc.upsert("parts", [{"id": 0, "vector": [0, 0, 0, 0]}], partition_name="p1")
    assert ids(mc.query("parts", filter="", partition_names=["p1"], output_fields=["id"])) == [0]
    mc.drop_partition("parts", "p2")
    assert not mc.has_partition("parts", "p2") and mc.list_partitions("parts") == ["_default", "p1"]
    assert count(mc, "parts") == 5
    expect_error(lambda: mc.insert("parts", [{"id": 99, "vector": [0, 0, 0, 0]}], partition_name="p2"), 200, "p2")
    expect_error(lambda: mc.query("parts", filter="", partition_names=["p2"]), 65535, "partition name p2 not found")
    expect_error(lambda: mc.create_partition("parts", "p1"), 1100, "p1")
    expect_error(lambda: mc.drop_partition("parts", "_default"), 1100, "default")
    assert count(mc, "parts") == 5


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


def test_insert_upsert_delete_get(mc: MilvusClient) -> None:
    mc.create_collection("writes", dimension=DIM, metric_type="L2")
    r = mc.insert("writes", [{"id": i, "vector": [float(i), 0, 0, 0], "v": i} for i in range(10)])
    assert r["insert_count"] == 10 and list(r["ids"]) == list(range(10))
    assert mc.insert("writes", []) ["insert_count"] == 0
    u = mc.upsert("writes", [{"id": i, "vector": [0, float(i), 0, 0], "v": -i} for i in range(5, 13)])
    assert u["upsert_count"] == 8 and list(u["ids"]) == list(range(5, 13))
    assert count(mc, "writes") == 13
    got = mc.get("writes", ids=[4, 5, 12], output_fields=["v", "vector"])
    assert sorted((plain(x) for x in got), key=lambda x: x["id"]) == [
        {"id": 4, "v": 4, "vector": [4.0, 0.0, 0.0, 0.0]},
        {"id": 5, "v": -5, "vector": [0.0, 5.0, 0.0, 0.0]},
        {"id": 12, "v": -12, "vector": [0.0, 12.0, 0.0, 0.0]},
    ]
    assert mc.delete("writes", ids=[0, 1])["delete_count"] == 2
    assert mc.delete("writes", filter="id >= 11")["delete_count"] == 2
    assert mc.delete("writes", filter='v < -8 and v > -10')["delete_count"] == 1  # dynamic key
    assert listed(mc.get("writes", ids=[0, 1, 11, 12, 9])) == []
    assert count(mc, "writes") == 8
    mc.flush("writes")
    assert count(mc, "writes") == 8
    # deleted keys can be inserted again; upsert after flush replaces the sealed version
    mc.insert("writes", [{"id": 0, "vector": [1, 1, 1, 1], "v": 100}])
    mc.upsert("writes", [{"id": 2, "vector": [2, 2, 2, 2], "v": 200}])
    assert {r["id"]: r["v"] for r in mc.query("writes", filter="v >= 100", output_fields=["v"])} == {0: 100, 2: 200}
    assert count(mc, "writes") == 9
    assert listed(mc.query("writes", ids=[2, 3], output_fields=["v"])) == [{"id": 2, "v": 200}, {"id": 3, "v": 3}]


# ---------------------------------------------------------------------------------------------
# Reads: query
# ---------------------------------------------------------------------------------------------


def test_query_count_filters_output_fields(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    assert count(mc, "data") == N_DATA
    assert count(mc, "data", 'color == "red"') == N_DATA // 3
    assert count(mc, "data", "n >= 10 and n < 20") == 10
    assert count(mc, "data", "id in [1, 2, 999]") == 2
    star = {r["id"]: plain(r) for r in mc.query("data", filter="id < 5", output_fields=["*"])}
    assert star == {r["id"]: plain(r) for r in data[:5]}
    assert listed(mc.query("data", filter="id == 4", output_fields=["color"])) == [{"id": 4, "color": "green"}]
    assert listed(mc.query("data", filter="id == 4", output_fields=["n", "color"])) == [{"id": 4, "n": 4, "color": "green"}]
    vec = mc.query("data", filter="id == 7", output_fields=["vector"])
    assert plain(vec[0]) == {"id": 7, "vector": data[7]["vector"]}
    default = mc.query("data", filter="id == 3")  # no output_fields: pymilvus asks for "*"
    assert plain(default[0]) == plain(data[3])
    assert listed(mc.query("data", filter="id < 0", output_fields=["color"])) == []
    assert [r["id"] for r in mc.query("data", ids=[5, 50], output_fields=["id"])] == [5, 50]


def test_query_limit_offset_pages_cover_everything_once(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    seen: list[int] = []
    for off in range(0, N_DATA + 7, 7):
        page = mc.query("data", filter="", output_fields=["id"], limit=7, offset=off)
        assert len(page) == min(7, max(0, N_DATA - off))
        seen.extend(r["id"] for r in page)
    assert sorted(seen) == list(range(N_DATA))
    assert len(mc.query("data", filter='color == "blue"', output_fields=["id"], limit=5)) == 5
    assert len(mc.query("data", filter='color == "blue"', output_fields=["id"], limit=50, offset=15)) == 5


# ---------------------------------------------------------------------------------------------
# Reads: search
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_search_matches_numpy(mc: MilvusClient, metric: str) -> None:
    name = f"metric_{metric.lower()}"
    n, dim = 40, 8
    base = vectors(n, dim, seed=1)
    mc.create_collection(name, dimension=dim, metric_type=metric)
    mc.insert(name, [{"id": i, "vector": base[i].tolist(), "n": i} for i in range(n)])
    q = vectors(3, dim, seed=2)
    scores = brute_force(base, q, metric)
    sp = {"metric_type": metric, "params": {"ef": 32}}
    res = mc.search(name, q.tolist(), limit=5, output_fields=["n"], search_params=sp, anns_field="vector")
    assert len(res) == 3
    for qi, hits in enumerate(res):
        order = best_first(scores[qi], metric)[:5]
        assert [h["id"] for h in hits] == order.tolist()
        np.testing.assert_allclose([h["distance"] for h in hits], scores[qi][order], rtol=1e-4, atol=1e-5)
        assert [h["entity"]["n"] for h in hits] == order.tolist()
    # filter + offset + vector output
    even = np.arange(n) % 2 == 0
    res = mc.search(name, q.tolist(), limit=4, offset=2, filter="id % 2 == 0", output_fields=["vector"])
    for qi, hits in enumerate(res):
        order = [i for i in best_first(scores[qi], metric) if even[i]][2:6]
        assert [h["id"] for h in hits] == order
        for h in hits:
            np.testing.assert_allclose(h["entity"]["vector"], base[h["id"]], rtol=1e-6)
    # no hits at all for a query still yields one (empty) result list per query
    assert [list(h) for h in mc.search(name, q[:2].tolist(), filter="id < 0")] == [[], []]
    # the search metric must match the index's
    other = "IP" if metric != "IP" else "L2"
    expect_error(lambda: mc.search(name, q[:1].tolist(), search_params={"metric_type": other}), 1100, "metric")


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_range_search(mc: MilvusClient, metric: str) -> None:
    name = f"metric_{metric.lower()}"  # created by test_search_matches_numpy, or here
    n, dim = 40, 8
    if not mc.has_collection(name):
        mc.create_collection(name, dimension=dim, metric_type=metric)
        base0 = vectors(n, dim, seed=1)
        mc.insert(name, [{"id": i, "vector": base0[i].tolist(), "n": i} for i in range(n)])
    base = vectors(n, dim, seed=1)
    q = vectors(1, dim, seed=3)
    s = brute_force(base, q, metric)[0]
    srt = np.sort(s)
    # a window holding 15 of the 40 rows, its edges halfway between two rows' scores
    lo, hi = float(srt[5] + srt[6]) / 2, float(srt[20] + srt[21]) / 2
    if metric == "L2":  # keep range_filter <= d < radius
        params = {"radius": hi, "range_filter": lo}
        want = {i for i in range(n) if lo <= s[i] < hi}
    else:  # keep radius < d <= range_filter
        params = {"radius": lo, "range_filter": hi}
        want = {i for i in range(n) if lo < s[i] <= hi}
    hits = mc.search(name, q.tolist(), limit=100, search_params={"metric_type": metric, "params": params})[0]
    assert {h["id"] for h in hits} == want
    d = [h["distance"] for h in hits]
    assert d == (sorted(d) if metric == "L2" else sorted(d, reverse=True))
    # radius given at the top level of search_params ends up in "params" too (§12)
    top = mc.search(name, q.tolist(), limit=100, search_params={"metric_type": metric, **params})[0]
    assert {h["id"] for h in top} == want


# ---------------------------------------------------------------------------------------------
# Iterators
# ---------------------------------------------------------------------------------------------


def test_query_iterator_every_row_once_in_pk_order(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    it = mc.query_iterator("data", batch_size=7, output_fields=["color"])
    pages: list[list[dict[str, Any]]] = []
    while page := it.next():
        pages.append(page)
    it.close()
    ids = [r["id"] for p in pages for r in p]
    assert ids == list(range(N_DATA))
    assert all(len(p) <= 7 for p in pages)
    assert all(r["color"] == COLORS[r["id"] % 3] for p in pages for r in p)
    # with a filter and a limit
    it = mc.query_iterator("data", batch_size=4, limit=9, filter='color == "green"', output_fields=["n"])
    ids = []
    while page := it.next():
        ids.extend(r["id"] for r in page)
    it.close()
    assert ids == [i for i in range(N_DATA) if i % 3 == 1][:9]
    # offset= seeks first (a plain query of `offset` rows), then pages on from the last pk
    it = mc.query_iterator("data", batch_size=6, offset=25, limit=20, output_fields=["id"])
    ids = []
    while page := it.next():
        ids.extend(r["id"] for r in page)
    it.close()
    assert ids == list(range(25, 45))


def test_query_iterator_reads_one_snapshot(mc: MilvusClient) -> None:
    """Writes between pages (deletes, upserts, inserts, a flush) do not leak into the pages:
    every page is read at the snapshot the first call reported (session_ts, §13)."""
    name = "qiter_mvcc"
    mc.create_collection(name, dimension=DIM, metric_type="L2")
    mc.insert(name, [{"id": i, "vector": [float(i), 0, 0, 0], "v": 0} for i in range(30)])
    it = mc.query_iterator(name, batch_size=7, output_fields=["v"])
    rows = list(it.next())
    assert [r["id"] for r in rows] == list(range(7))
    mc.delete(name, ids=list(range(20, 25)))
    mc.upsert(name, [{"id": i, "vector": [0, 0, 0, 0], "v": 1} for i in range(25, 30)])
    mc.insert(name, [{"id": i, "vector": [0, 0, 0, 0], "v": 2} for i in range(30, 35)])
    mc.flush(name)
    while page := it.next():
        rows.extend(page)
    it.close()
    assert [(r["id"], r["v"]) for r in rows] == [(i, 0) for i in range(30)]
    # a new read sees the writes
    assert count(mc, name) == 30 and count(mc, name, "v == 1") == 5


def test_search_iterator_pages_by_distance(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    base = np.asarray([r["vector"] for r in data], dtype=np.float32)
    q = vectors(1, seed=9)
    it = mc.search_iterator("data", data=q.tolist(), batch_size=7, output_fields=["color"],
                            search_params={"metric_type": "L2"})
    hits: list[tuple[int, float]] = []
    pages = 0
    while True:
        page = it.next()
        if not page:
            break
        pages += 1
        assert len(page) <= 7
        hits.extend((h["id"], h["distance"]) for h in page)
        assert all(h["entity"]["color"] == COLORS[h["id"] % 3] for h in page)
    it.close()
    ids = [i for i, _ in hits]
    dist = [d for _, d in hits]
    assert pages >= N_DATA // 7
    assert len(ids) == len(set(ids)), "a hit came back twice"
    assert sorted(ids) == list(range(N_DATA)), "a row was skipped"
    assert all(a <= b for a, b in zip(dist, dist[1:], strict=False)), "distances went down"
    np.testing.assert_allclose(dist, brute_force(base, q, "L2")[0][ids], rtol=1e-4, atol=1e-5)
    # filter + limit
    it = mc.search_iterator("data", data=q.tolist(), batch_size=5, limit=12, filter="n < 30",
                            search_params={"metric_type": "L2"})
    ids = []
    while True:
        page = it.next()
        if not page:
            break
        ids.extend(h["id"] for h in page)
    it.close()
    full = brute_force(base, q, "L2")[0]
    assert ids == [int(i) for i in np.argsort(full, kind="stable") if i < 30][:12]


def drain_search_iterator(it: Any) -> list[tuple[Any, float]]:
    hits: list[tuple[Any, float]] = []
    while page := it.next():
        hits.extend((h["id"], h["distance"]) for h in page)
    it.close()
    return hits


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_search_iterator_returns_tied_rows_once(mc: MilvusClient, metric: str) -> None:
    """15 rows share one vector, so they tie at one score. pymilvus's V2 iterator only sends
    back the last score it saw; a strict "worse than that" cursor skipped the tied rows that
    did not fit in the page (fixed in service.py with per-token cursors)."""
    name = f"ties_{metric.lower()}"
    mc.create_collection(name, dimension=DIM, metric_type=metric)
    rows = [{"id": i, "vector": [1.0, 0.0, 0.0, 0.0]} for i in range(15)]
    rows += [{"id": i, "vector": [1.0, float(i - 14), 0.0, 0.0]} for i in range(15, 25)]
    rows += [{"id": 25, "vector": [1.0, 0.0, 0.0, 0.0]}, {"id": 26, "vector": [1.0, 0.0, 0.0, 0.0]}]
    mc.insert(name, rows)
    it = mc.search_iterator(name, data=[[1.0, 0.0, 0.0, 0.0]], batch_size=4, search_params={"metric_type": metric})
    first = it.next()
    assert len(first) == 4
    # Writes and a flush between pages: the iterator reads its pinned snapshot.
    mc.insert(name, [{"id": 100 + i, "vector": [1.0, 0.0, 0.0, 0.0]} for i in range(3)])
    mc.flush(name)
    hits = [(h["id"], h["distance"]) for h in first] + drain_search_iterator(it)
    ids = [i for i, _ in hits]
    assert len(ids) == len(set(ids)), "a hit came back twice"
    assert sorted(ids) == list(range(27)), f"rows skipped or added: {sorted(set(range(27)) ^ set(ids))}"
    d = [x for _, x in hits]
    assert d == (sorted(d) if metric == "L2" else sorted(d, reverse=True))


# ---------------------------------------------------------------------------------------------
# Flush, indexes, load state
# ---------------------------------------------------------------------------------------------


def test_partition_load_state_ids_and_reads(mc: MilvusClient, stub: milvus_pb2_grpc.MilvusServiceStub) -> None:
    """Loading and releasing partitions is real: reads see exactly the loaded ones, a read
    naming an unloaded one is refused (201), releasing all of them releases the collection,
    and ShowPartitions reports the ids partitions really have (not positions)."""
    mc.create_collection("pload", dimension=DIM, metric_type="L2")
    for p in ("p1", "p2", "p3"):
        mc.create_partition("pload", p)
    for i, p in enumerate(("_default", "p1", "p2", "p3")):
        mc.insert("pload", [{"id": i * 10 + k, "vector": [float(k), 0, 0, 0]} for k in range(i + 1)], partition_name=p)
    mc.drop_partition("pload", "p1")
    reply = stub.ShowPartitions(milvus_pb2.ShowPartitionsRequest(collection_name="pload"))
    assert list(reply.partition_names) == ["_default", "p2", "p3"]
    assert list(reply.partitionIDs) == [0, 2, 3]  # p1 was 1, and is gone
    mc.release_collection("pload")
    mc.load_partitions("pload", ["p2"])
    assert str(mc.get_load_state("pload")["state"]) == "Loaded"
    assert str(mc.get_load_state("pload", partition_name="p3")["state"]) == "NotLoad"
    assert count(mc, "pload") == 3
    assert sorted(h["id"] for h in mc.search("pload", [[0, 0, 0, 0]], limit=10)[0]) == [20, 21, 22]
    expect_error(lambda: mc.query("pload", filter="", partition_names=["p3"]), 201, "p3")
    mc.load_partitions("pload", ["p3"])
    assert count(mc, "pload") == 7 and count(mc, "pload", partition_names=["p3"]) == 4
    mc.release_partitions("pload", ["p2"])
    assert count(mc, "pload") == 4
    mc.release_partitions("pload", ["p3"])
    assert str(mc.get_load_state("pload")["state"]) == "NotLoad"
    expect_error(lambda: mc.query("pload", filter="", output_fields=["count(*)"]), 101)
    mc.load_collection("pload")
    mc.create_partition("pload", "p4")  # a loaded collection's new partition is loaded too
    mc.insert("pload", [{"id": 99, "vector": [0, 0, 0, 0]}], partition_name="p4")
    assert count(mc, "pload") == 9  # 1 + 3 + 4 + 1 (p1 was dropped)
    mc.release_partitions("pload", ["_default"])
    assert count(mc, "pload") == 8


def test_flush_and_compaction_states_are_true(mc: MilvusClient, stub: milvus_pb2_grpc.MilvusServiceStub) -> None:
    """GetFlushState answers from the data (not always "flushed"); GetCompactionState knows
    the jobs it ran and refuses ids it never handed out."""
    mc.create_collection("fstate", dimension=DIM)
    mc.insert("fstate", data_rows(10))
    flushed = stub.Flush(milvus_pb2.FlushRequest(collection_names=["fstate"]))
    ts = flushed.coll_flush_ts["fstate"]
    assert ts > 0
    state = lambda t: stub.GetFlushState(  # noqa: E731
        milvus_pb2.GetFlushStateRequest(collection_name="fstate", flush_ts=t)
    ).flushed
    assert state(ts)
    mc.insert("fstate", [{"id": 100, "vector": [1.0, 0, 0, 0]}])
    after = stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest()).timestamp
    assert state(ts) and not state(after)  # the new row is only in the log
    mc.flush("fstate")
    assert state(after)
    job = mc.compact("fstate")
    assert job > 0 and mc.get_compaction_state(job) == "Completed"
    reply = stub.GetCompactionState(milvus_pb2.GetCompactionStateRequest(compactionID=job + 12345))
    assert reply.status.code == 1100 and "unknown" in reply.status.reason


def test_flush_returns(mc: MilvusClient) -> None:
    mc.create_collection("flushy", dimension=DIM)
    mc.insert("flushy", data_rows(20))
    t0 = time.monotonic()
    mc.flush("flushy", timeout=10)
    assert time.monotonic() - t0 < 5
    mc.flush("flushy", timeout=10)  # nothing new: still returns
    assert count(mc, "flushy") == 20
    expect_error(lambda: mc.flush("flushy_missing", timeout=10), 100)


def test_index_and_load_lifecycle(mc: MilvusClient) -> None:
    s = MilvusClient.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    mc.create_collection("lifecycle", schema=s)
    assert str(mc.get_load_state("lifecycle")["state"]) == "NotLoad"
    assert mc.list_indexes("lifecycle") == []
    assert mc.describe_index("lifecycle", "vector") is None
    mc.insert("lifecycle", [{"id": i, "vector": [float(i), 0, 0, 0]} for i in range(6)])
    expect_error(lambda: mc.load_collection("lifecycle", timeout=5), 700, "index not found")
    e = expect_error(lambda: mc.query("lifecycle", filter=""), 101, "not loaded")
    assert "lifecycle" in e.message
    expect_error(lambda: mc.search("lifecycle", [[1, 0, 0, 0]]), 101, "not loaded")

    ip = MilvusClient.prepare_index_params()
    ip.add_index("vector", index_type="HNSW", index_name="vidx", metric_type="L2",
                 params={"M": 16, "efConstruction": 100})
    mc.create_index("lifecycle", ip)
    assert mc.list_indexes("lifecycle") == ["vidx"]
    assert mc.list_indexes("lifecycle", field_name="vector") == ["vidx"]
    assert mc.list_indexes("lifecycle", field_name="id") == []
    d = mc.describe_index("lifecycle", "vidx")
    assert d is not None
    assert {k: d[k] for k in ("index_type", "metric_type", "M", "efConstruction", "field_name", "index_name",
                             "state")} == {"index_type": "HNSW", "metric_type": "L2", "M": "16",
                                           "efConstruction": "100", "field_name": "vector",
                                           "index_name": "vidx", "state": "Finished"}
    assert d["total_rows"] == 6
    mc.load_collection("lifecycle", timeout=10)
    assert str(mc.get_load_state("lifecycle")["state"]) == "Loaded"
    assert [h["id"] for h in mc.search("lifecycle", [[5, 0, 0, 0]], limit=2)[0]] == [5, 4]
    expect_error(lambda: mc.drop_index("lifecycle", "vidx"), 1100, "release")
    mc.release_collection("lifecycle")
    assert str(mc.get_load_state("lifecycle")["state"]) == "NotLoad"
    expect_error(lambda: mc.query("lifecycle", filter="", output_fields=["count(*)"]), 101)
    expect_error(lambda: mc.search("lifecycle", [[1, 0, 0, 0]]), 101)
    mc.insert("lifecycle", [{"id": 6, "vector": [6, 0, 0, 0]}])  # writes work while released
    mc.drop_index("lifecycle", "vidx")
    assert mc.list_indexes("lifecycle") == []
    assert mc.describe_index("lifecycle", "vidx") is None
    mc.drop_index("lifecycle", "vidx")  # a second drop: nothing to drop, a success (Milvus)
    assert str(mc.get_load_state("lifecycle_missing")["state"]) == "NotExist"
    # index again under the default name (the field's), load, read what was written meanwhile
    mc.create_index("lifecycle", MilvusClient.prepare_index_params("vector", metric_type="L2", index_type="FLAT"))
    assert mc.list_indexes("lifecycle") == ["vector"]
    mc.load_collection("lifecycle")
    assert count(mc, "lifecycle") == 7


# ---------------------------------------------------------------------------------------------
# Consistency levels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["Strong", "Bounded", "Session", "Eventually"])
def test_consistency_levels_read_acknowledged_writes(
    server: KeelServer, mc: MilvusClient, data: list[dict[str, Any]], level: str
) -> None:
    name = f"cons_{level.lower()}"
    mc.create_collection(name, dimension=DIM, metric_type="L2")
    writer = MilvusClient(uri=server.uri, dedicated=True)  # another connection writes too
    try:
        for step in range(3):
            k = 10 * step
            mc.insert(name, [{"id": k, "vector": [float(k), 0, 0, 0], "who": "self"}])
            # Session (and every level here: keeldb is single-node) reads its own write at once
            assert listed(mc.query(name, filter=f"id == {k}", output_fields=["who"], consistency_level=level)) == [
                {"id": k, "who": "self"}
            ]
            writer.insert(name, [{"id": k + 1, "vector": [float(k + 1), 0, 0, 0], "who": "other"}])
            assert count(mc, name, consistency_level=level) == 2 * (step + 1)
            hits = mc.search(name, [[float(k + 1), 0, 0, 0]], limit=2, consistency_level=level)[0]
            assert [h["id"] for h in hits] == [k + 1, k]
        mc.delete(name, ids=[0])
        assert count(mc, name, consistency_level=level) == 5
        # the shared read-only collection gives the same answer at every level
        assert count(mc, "data", 'color == "red"', consistency_level=level) == N_DATA // 3
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------------
# Status codes
# ---------------------------------------------------------------------------------------------


def test_status_codes(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    missing = "no_such_collection"
    assert not mc.has_collection(missing)
    expect_error(lambda: mc.describe_collection(missing), 100, missing)
    expect_error(lambda: mc.query(missing, filter=""), 100, missing)
    expect_error(lambda: mc.search(missing, [[1, 0, 0, 0]]), 100, missing)
    expect_error(lambda: mc.insert(missing, [{"id": 1, "vector": [1, 0, 0, 0]}]), 100, missing)
    expect_error(lambda: mc.delete(missing, filter="id > 0"), 100, missing)
    expect_error(lambda: mc.get_collection_stats(missing), 100, missing)
    expect_error(lambda: mc.list_indexes(missing), 100, missing)
    expect_error(lambda: mc.create_partition(missing, "p"), 100, missing)
    expect_error(lambda: mc.load_collection(missing, timeout=5), 100, missing)
    assert mc.describe_index("data", "no_such_index") is None
    e = expect_error(lambda: mc.query("data", filter="id >>> 3"), 1100, "column")
    assert "id >>> 3" in e.message  # the message shows the expression and where it broke
    expect_error(lambda: mc.query("data", filter="no_field_here > 1 and"), 1100)
    expect_error(lambda: mc.create_collection("bad_index", dimension=DIM, metric_type="MANHATTAN"), 1100,
                 "metric")
    # Quick setup is CreateCollection then CreateIndex (§5): as with Milvus, the collection
    # stays, without an index.
    assert mc.list_indexes("bad_index") == []
    mc.drop_collection("bad_index")


def test_unsupported_features_are_refused_not_ignored(mc: MilvusClient, data: list[dict[str, Any]]) -> None:
    """Grouping and ordering used to be silently ignored (plausible, wrong answers).
    Grouping search now runs (tests/test_server_hybrid.py), but not by a dynamic key or by
    several fields; ordering runs (tests/test_ordering.py)."""
    expect_error(lambda: mc.search("data", [[1, 0, 0, 0]], limit=3, group_by_field="color"), 1100, "groupBy field")
    expect_error(lambda: mc.search("data", [[1, 0, 0, 0]], limit=3, group_by_fields=["color"]), 1100, "group_by")
    # Ordering runs (tests/test_ordering.py); Milvus requires a limit with it.
    expect_error(lambda: mc.query("data", filter="id < 5", output_fields=["id"],
                                  order_by_fields=[{"field": "id", "order": "desc"}]), 1100, "ORDER BY requires")
    assert [r["id"] for r in mc.query("data", filter="id in {ids}", filter_params={"ids": [1, 2]})] == [1, 2]
    # Search by primary key runs (tests/test_server_hybrid.py); a key with no live row is refused.
    expect_error(lambda: mc.search("data", ids=[10**9], limit=2), 1100, "no live entity")


def _raw_schema(name: str, extra: list[schema_pb2.FieldSchema]) -> bytes:
    ps = schema_pb2.CollectionSchema(name=name, enable_dynamic_field=True)
    ps.fields.add(name="id", data_type=DataType.INT64, is_primary_key=True)
    vec = ps.fields.add(name="vector", data_type=DataType.FLOAT_VECTOR)
    vec.type_params.add(key="dim", value=str(DIM))
    ps.fields.extend(extra)
    return ps.SerializeToString()


def test_stale_schema_cache_is_refreshed(mc: MilvusClient, stub: milvus_pb2_grpc.MilvusServiceStub) -> None:
    """Another process drops the collection and re-creates it with ``n`` declared. pymilvus
    still has the old schema cached and packs ``n`` into $meta; before the fix the row was
    stored with ``n`` NULL (the value hidden in $meta). The server now answers
    SchemaMismatch (109 / legacy 62) and pymilvus refreshes its cache and retries."""
    name = "stale"
    mc.create_collection(name, dimension=DIM, metric_type="L2")
    mc.insert(name, [{"id": 1, "vector": [1, 0, 0, 0], "n": 5}])  # caches the schema
    assert stub.DropCollection(milvus_pb2.DropCollectionRequest(collection_name=name)).code == 0
    n_field = schema_pb2.FieldSchema(name="n", data_type=DataType.INT64, nullable=True)
    created = stub.CreateCollection(milvus_pb2.CreateCollectionRequest(
        collection_name=name, schema=_raw_schema(name, [n_field])))
    assert created.code == 0, created
    index = milvus_pb2.CreateIndexRequest(collection_name=name, field_name="vector")
    index.extra_params.add(key="metric_type", value="L2")
    index.extra_params.add(key="index_type", value="FLAT")
    assert stub.CreateIndex(index).code == 0
    assert stub.LoadCollection(milvus_pb2.LoadCollectionRequest(collection_name=name)).code == 0
    mc.insert(name, [{"id": 2, "vector": [0, 1, 0, 0], "n": 7, "dyn": "d"}])
    assert listed(mc.query(name, filter="", output_fields=["n", "dyn"])) == [{"id": 2, "n": 7, "dyn": "d"}]
    assert count(mc, name, "n == 7") == 1
    # the raw answer to a stale schema timestamp
    req = _raw_insert(name, [_f_id([3]), _f_vec(1)], 1)
    req.schema_timestamp = 12345
    reply = stub.Insert(req)
    assert (reply.status.code, reply.status.error_code) == (109, common_pb2.ErrorCode.SchemaMismatch)
    assert count(mc, name) == 1


def test_nullable_and_default_scalars_over_the_wire(mc: MilvusClient) -> None:
    def schema(i8_default: Any) -> Any:
        s = MilvusClient.create_schema(enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
        s.add_field("b", DataType.BOOL, nullable=True)
        s.add_field("v", DataType.VARCHAR, max_length=10, nullable=True)
        s.add_field("f", DataType.FLOAT, nullable=True)
        s.add_field("i8", DataType.INT8, default_value=i8_default)
        s.add_field("vd", DataType.VARCHAR, max_length=10, default_value="dflt")
        return s

    # pymilvus sends a plain int default as long_data, which Milvus refuses for INT8;
    # np.int8 goes as int_data.
    expect_error(lambda: mc.create_collection("nulls", schema=schema(3)), 1100,
                 "type (Int8) of field (i8) is not equal to the type(DataType_Int64) of default_value")
    s = schema(np.int8(3))
    mc.create_collection("nulls", schema=s, index_params=MilvusClient.prepare_index_params(
        "vector", metric_type="L2", index_type="FLAT"))
    mc.insert("nulls", [
        {"id": 1, "vector": [0, 0], "b": None, "v": None, "f": None},
        {"id": 2, "vector": [1, 0], "b": True, "v": "x", "f": 1.5, "i8": -5, "vd": "given"},
        {"id": 3, "vector": [2, 0]},
    ])
    null_row = {"b": None, "v": None, "f": None, "i8": 3, "vd": "dflt"}
    want = {1: null_row, 2: {"b": True, "v": "x", "f": 1.5, "i8": -5, "vd": "given"}, 3: null_row}
    got = {r["id"]: {k: v for k, v in r.items() if k not in ("id", "vector")}
           for r in listed(mc.query("nulls", filter="", output_fields=["*"]))}
    assert got == want
    hits = mc.search("nulls", [[0, 0]], limit=3, output_fields=["b", "v", "f", "i8", "vd"])[0]
    assert [(h["id"], plain(h["entity"])) for h in hits] == [(k, want[k]) for k in (1, 2, 3)]
    assert [r["id"] for r in mc.query("nulls", filter="v is not null and b", output_fields=["id"])] == [2]
    assert [r["id"] for r in mc.query("nulls", filter='vd == "dflt"', output_fields=["id"])] == [1, 3]
    expect_error(lambda: mc.insert("nulls", [{"id": 4, "vector": [0, 0], "i8": 300}]), 1100, "i8")


def test_concurrent_clients(server: KeelServer, mc: MilvusClient) -> None:
    mc.create_collection("concurrent", dimension=DIM, metric_type="L2")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            c = MilvusClient(uri=server.uri, dedicated=True)
            for j in range(15):
                k = 1000 * t + j
                c.insert("concurrent", [{"id": k, "vector": [float(t), float(j), 0, 0]}])
                assert c.get("concurrent", ids=[k], output_fields=["id"])[0]["id"] == k
                assert len(c.search("concurrent", [[float(t), float(j), 0, 0]], limit=1)[0]) == 1
                count(c, "concurrent")
            c.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors, errors
    assert count(mc, "concurrent") == 60


# ---------------------------------------------------------------------------------------------
# Embedded and server: identical answers
# ---------------------------------------------------------------------------------------------


def assert_same_answers(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Embedded vs server answers: equal rows; same hit ids and entities, distances within 1e-5."""
    assert a.keys() == b.keys()
    for key in a:
        if key.startswith(("search", "range")):
            assert len(a[key]) == len(b[key])
            for qa, qb in zip(a[key], b[key], strict=True):
                assert [h[0] for h in qa] == [h[0] for h in qb], key
                np.testing.assert_allclose([h[1] for h in qa], [h[1] for h in qb], rtol=0, atol=1e-5)
                assert [h[2] for h in qa] == [h[2] for h in qb], key
        else:
            assert a[key] == b[key], key


def test_embedded_and_server_agree(mc: MilvusClient, tmp_path: Path) -> None:
    emb = keeldb.Client(str(tmp_path / "embedded"))
    try:
        _compare_script(emb, mc)
    finally:
        emb.close()


def _compare_script(emb: keeldb.Client, mc: MilvusClient) -> None:
    name, dim = "same", 6
    for c in (emb, mc):
        c.create_collection(name, dimension=dim, metric_type="L2")
        c.create_partition(name, "px")
    rng = np.random.default_rng(42)

    def rows(ids: range | list[int], gen: int) -> list[dict[str, Any]]:
        v = rng.standard_normal((len(ids), dim)).astype(np.float32)
        return [{"id": k, "vector": v[j].tolist(), "tag": (k + gen) % 3, "gen": gen,
                 "label": f"r{k}"} for j, k in enumerate(ids)]

    queries = rng.standard_normal((3, dim)).astype(np.float32).tolist()

    def snapshot(c: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["count"] = c.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        out["count_f"] = c.query(name, filter="tag == 1", output_fields=["count(*)"])[0]["count(*)"]
        out["all"] = sorted((plain(r) for r in c.query(name, filter="", output_fields=["*"])),
                            key=lambda r: r["id"])
        out["some"] = [plain(r) for r in c.query(name, filter="id > 10 and gen >= 1",
                                                  output_fields=["tag", "vector"], limit=6, offset=2)]
        out["part"] = sorted(r["id"] for r in c.query(name, filter="", output_fields=["id"],
                                                       partition_names=["px"]))
        out["get"] = sorted((plain(r) for r in c.get(name, ids=[0, 5, 33, 47], output_fields=["label", "gen"])),
                            key=lambda r: r["id"])
        out["search"] = hit_tuples(c.search(name, queries, limit=7, output_fields=["tag", "label"]))
        out["search_f"] = hit_tuples(c.search(name, queries, limit=5, offset=1, filter="id % 2 == 0",
                                              output_fields=["vector"]))
        out["range"] = hit_tuples(c.search(name, queries[:1], limit=50,
                                           search_params={"params": {"radius": 6.0, "range_filter": 1.0}}))
        return out

    def compare() -> None:
        assert_same_answers(snapshot(emb), snapshot(mc))

    script: list[tuple[str, Any]] = [
        ("insert", rows(range(0, 40), 0)),
        ("insert_px", rows(range(40, 50), 0)),
        ("upsert", rows(range(30, 45), 1)),
        ("delete_ids", [1, 2, 3, 41]),
        ("delete_filter", "id >= 48"),
        ("compare", None),
        ("flush", None),
        ("compare", None),
        ("insert", rows(range(50, 60), 2)),
        ("upsert", rows(range(0, 6), 2)),
        ("delete_filter", "tag == 2 and id < 20"),
        ("compare", None),
        ("flush", None),
        ("upsert", rows([7, 8, 52], 3)),
        ("compare", None),
    ]
    for op, arg in script:
        for c in (emb, mc):
            if op == "insert":
                c.insert(name, arg)
            elif op == "insert_px":
                c.insert(name, arg, partition_name="px")
            elif op == "upsert":
                c.upsert(name, arg)
            elif op == "delete_ids":
                c.delete(name, ids=arg)
            elif op == "delete_filter":
                c.delete(name, filter=arg)
            elif op == "flush":
                c.flush(name)
        if op == "compare":
            compare()


def test_embedded_and_server_agree_on_a_schema(mc: MilvusClient, tmp_path: Path) -> None:
    """The same with nullable, default, JSON, VARCHAR and dynamic fields (absent keys and
    None travel as validity flags over the wire, §9)."""
    name = "same_schema"
    emb = keeldb.Client(str(tmp_path / "embedded"))
    try:
        s = emb.create_schema(enable_dynamic_field=True)
        s.add_field("id", keeldb.DataType.INT64, is_primary=True)
        s.add_field("vector", keeldb.DataType.FLOAT_VECTOR, dim=DIM)
        s.add_field("age", keeldb.DataType.INT32, nullable=True)
        s.add_field("score", keeldb.DataType.DOUBLE, default_value=1.5)
        s.add_field("meta", keeldb.DataType.JSON, nullable=True)
        s.add_field("name", keeldb.DataType.VARCHAR, max_length=16)
        emb.create_collection(name, schema=s, index_params=emb.prepare_index_params(
            "vector", index_type="FLAT", metric_type="IP"))
        ps = MilvusClient.create_schema(enable_dynamic_field=True)
        ps.add_field("id", DataType.INT64, is_primary=True)
        ps.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        ps.add_field("age", DataType.INT32, nullable=True)
        ps.add_field("score", DataType.DOUBLE, default_value=1.5)
        ps.add_field("meta", DataType.JSON, nullable=True)
        ps.add_field("name", DataType.VARCHAR, max_length=16)
        mc.create_collection(name, schema=ps, index_params=MilvusClient.prepare_index_params(
            "vector", index_type="FLAT", metric_type="IP"))
        vecs = vectors(40, seed=11)

        def row(k: int, gen: int) -> dict[str, Any]:
            r: dict[str, Any] = {"id": k, "vector": (vecs[k] * (1 + gen)).tolist(), "name": f"n{k}-{gen}"}
            if k % 3:
                r["age"] = None if k % 5 == 0 else k + gen
            if k % 4 == 0:
                r["score"] = k / 4
            r["meta"] = None if k % 7 == 0 else {"k": k, "tags": ["a", "b"][: k % 3], "g": gen}
            if k % 2:
                r["extra"] = {"odd": True, "k": k}
            return r

        queries = vectors(2, seed=12).tolist()

        def answers(c: Any) -> dict[str, Any]:
            def rows_of(res: Any) -> list[dict[str, Any]]:
                return sorted((plain(r) for r in res), key=lambda r: r["id"])

            fields = ["age", "score", "meta", "name", "extra"]
            return {
                "all": rows_of(c.query(name, filter="", output_fields=["*"])),
                "nulls": rows_of(c.query(name, filter="age is null", output_fields=["age", "score"])),
                "json": rows_of(c.query(name, filter='meta["k"] > 20 and meta["g"] == 1', output_fields=["meta"])),
                "dyn": rows_of(c.query(name, filter="extra is not null", output_fields=["extra"])),
                "count": c.query(name, filter="score > 1.5", output_fields=["count(*)"])[0]["count(*)"],
                "search": hit_tuples(c.search(name, queries, limit=6, output_fields=fields)),
                "search_f": hit_tuples(c.search(name, queries, limit=4, filter='name like "n1%"',
                                                output_fields=["name"])),
            }

        for c in (emb, mc):
            c.insert(name, [row(k, 0) for k in range(30)])
            c.upsert(name, [row(k, 1) for k in range(20, 40)])
            c.delete(name, filter="age == 12")
        first = answers(mc)
        assert all(first[k] for k in ("nulls", "json", "dyn", "count", "search_f")), first
        assert_same_answers(answers(emb), first)
        for c in (emb, mc):
            c.flush(name)
            c.upsert(name, [row(k, 2) for k in (1, 2, 3)])
            c.delete(name, ids=[4, 5])
        assert_same_answers(answers(emb), answers(mc))
    finally:
        emb.close()


# ---------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------


def test_authentication() -> None:
    with KeelServer(auth="root:secret") as srv:
        good = MilvusClient(uri=srv.uri, token="root:secret")
        good.create_collection("authed", dimension=DIM)
        assert "authed" in good.list_collections()
        by_user = MilvusClient(uri=srv.uri, user="root", password="secret", dedicated=True)
        assert by_user.has_collection("authed")
        host, port = srv.uri.removeprefix("http://").split(":")
        in_uri = MilvusClient(uri=f"http://root:secret@{host}:{port}", dedicated=True)
        assert in_uri.has_collection("authed")
        for kwargs in (
            {"token": "root:wrong"},
            {"user": "root", "password": "nope"},
            {"user": "admin", "password": "secret"},
            {},
        ):
            t0 = time.monotonic()
            with pytest.raises(MilvusException):
                MilvusClient(uri=srv.uri, dedicated=True, **kwargs)
            assert time.monotonic() - t0 < FAST, f"rejecting {kwargs} took too long"
        # the raw answer is gRPC UNAUTHENTICATED (not retried), not a common.Status
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            with pytest.raises(grpc.RpcError) as info:
                milvus_pb2_grpc.MilvusServiceStub(ch).GetVersion(milvus_pb2.GetVersionRequest(), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # the good clients are unaffected by the rejected ones
        assert good.list_collections() == ["authed"]
        assert by_user.get_server_version().startswith("v")
        for c in (good, by_user, in_uri):
            c.close()


# ---------------------------------------------------------------------------------------------
# Bad input over the wire: a clear error and no change
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(mc: MilvusClient) -> str:
    """Collection ``strict``: no dynamic field; a flushed segment, growing rows, a delete."""
    s = MilvusClient.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("name", DataType.VARCHAR, max_length=8)
    s.add_field("n", DataType.INT32)
    ip = MilvusClient.prepare_index_params("vector", metric_type="L2", index_type="FLAT")
    mc.create_collection("strict", schema=s, index_params=ip)
    vecs = vectors(25, seed=5)
    rows = [{"id": i, "vector": vecs[i].tolist(), "name": f"n{i}", "n": i} for i in range(25)]
    mc.insert("strict", rows[:15])
    mc.flush("strict")
    mc.insert("strict", rows[15:])
    mc.delete("strict", ids=[3, 17])
    return "strict"


def good_row(k: int, **patch: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": k, "vector": [0.5, 0.5, 0.5, 0.5], "name": "ok", "n": 1}
    row.update(patch)
    return row


BAD_CALLS: list[tuple[str, Callable[[MilvusClient], Any], int | None, tuple[str, ...]]] = [
    ("wrong dimension", lambda c: c.insert("strict", [good_row(100, vector=[1.0, 2.0, 3.0])]), 1100,
     ("dimension",)),
    ("wrong dimension upsert", lambda c: c.upsert("strict", [good_row(1, vector=[1.0] * 5)]), 1100,
     ("dimension",)),
    ("NaN vector", lambda c: c.insert("strict", [good_row(100), good_row(101, vector=[math.nan, 0, 0, 0])]),
     1100, ("nan",)),
    ("inf vector upsert", lambda c: c.upsert("strict", [good_row(1, vector=[math.inf, 0, 0, 0])]), 1100,
     ("infinity",)),
    ("wrong type", lambda c: c.insert("strict", [good_row(100, n="seven")]), None, ("n",)),
    ("int out of range", lambda c: c.insert("strict", [good_row(100, n=2**40)]), None, ()),
    ("unknown field", lambda c: c.insert("strict", [good_row(100, zzz=1)]), None, ("zzz",)),
    ("over-long varchar", lambda c: c.insert("strict", [good_row(100, name="x" * 9)]), 1100,
     ("max_length",)),
    ("malformed filter: query", lambda c: c.query("strict", filter="id >>> 3"), 1100, ("column",)),
    ("malformed filter: search", lambda c: c.search("strict", [[1, 0, 0, 0]], filter="(id > 1"), 1100, ()),
    ("malformed filter: delete", lambda c: c.delete("strict", filter="id in [1,"), 1100, ()),
    ("unknown field in filter", lambda c: c.delete("strict", filter="nosuch > 1"), 1100, ("nosuch",)),
    ("unknown collection", lambda c: c.insert("strict_nope", [good_row(100)]), 100, ("strict_nope",)),
    ("insert of a live key", lambda c: c.insert("strict", [good_row(200), good_row(4)]), 1100,
     ("already exists",)),
    ("insert of a key twice", lambda c: c.insert("strict", [good_row(200), good_row(200)]), 1100, ()),
    ("top-k 20000", lambda c: c.search("strict", [[1, 0, 0, 0]], limit=20000), 1100, ("16384",)),
    ("search wrong dimension", lambda c: c.search("strict", [[1, 0, 0]]), 1100, ("dimension",)),
    ("search NaN", lambda c: c.search("strict", [[math.nan, 0, 0, 0]]), 1100, ()),
    ("search unknown output field", lambda c: c.search("strict", [[1, 0, 0, 0]], output_fields=["zz"]), 1100,
     ("zz",)),
    ("query unknown output field", lambda c: c.query("strict", filter="", output_fields=["zz"]), 1100,
     ("zz",)),
    ("name ../x", lambda c: c.create_collection("../x", dimension=DIM), 1100, ("name",)),
    ("partition ../x", lambda c: c.create_partition("strict", "../x"), 65535, ("Invalid partition name",)),
    ("rename to ../x", lambda c: c.rename_collection("strict", "../x"), 1100, ("name",)),
    ("index name ../x", lambda c: c.create_index(
        "strict", MilvusClient.prepare_index_params("n", index_name="../x", index_type="STL_SORT")), 1100,
     ("name",)),
    ("name too long", lambda c: c.create_collection("a" * 300, dimension=DIM), 1100, ("name",)),
    ("partition_name ../x on insert", lambda c: c.insert("strict", [good_row(100)], partition_name="../x"),
     65535, ("Invalid partition name",)),
]


@pytest.mark.parametrize("label,call,code,words", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_changes_nothing(
    mc: MilvusClient, strict: str, server: KeelServer,
    label: str, call: Callable[[MilvusClient], Any], code: int | None, words: tuple[str, ...],
) -> None:
    before = state(mc, strict)
    dirs = {p for p in server.data_dir.parent.rglob("*") if p.is_dir()}
    expect_error(lambda: call(mc), code, *words)
    assert state(mc, strict) == before
    assert {p for p in server.data_dir.parent.rglob("*") if p.is_dir()} == dirs
    assert mc.has_collection(strict) and not mc.has_collection("x")


def test_bad_schema_dimension_40000(mc: MilvusClient) -> None:
    s = MilvusClient.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=40000)
    expect_error(lambda: mc.create_collection("huge_dim", schema=s), 1100, "dim", "32768")
    assert not mc.has_collection("huge_dim")
    s2 = MilvusClient.create_schema(enable_dynamic_field=False)
    s2.add_field("id", DataType.INT64, is_primary=True)
    s2.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s2.add_field("s", DataType.VARCHAR, max_length=70000)
    expect_error(lambda: mc.create_collection("huge_varchar", schema=s2), 1100, "maximum length", "65535")
    s3 = MilvusClient.create_schema(enable_dynamic_field=False)
    s3.add_field("id", DataType.INT64, is_primary=True)
    s3.add_field("n", DataType.INT32)
    expect_error(lambda: mc.create_collection("no_vector", schema=s3), 1100, "vector")
    assert not {"huge_dim", "huge_varchar", "no_vector"} & set(mc.list_collections())


def _raw_insert(name: str, fields: list[schema_pb2.FieldData], n: int) -> milvus_pb2.InsertRequest:
    return milvus_pb2.InsertRequest(collection_name=name, fields_data=fields, num_rows=n)


def _f_id(ids: list[int]) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=DataType.INT64, field_name="id")
    fd.scalars.long_data.data.extend(ids)
    return fd


def _f_vec(n: int, dim: int = DIM) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=DataType.FLOAT_VECTOR, field_name="vector")
    fd.vectors.dim = dim
    fd.vectors.float_vector.data.extend([0.25] * (n * dim))
    return fd


def _f_str(name: str, values: list[str]) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=DataType.VARCHAR, field_name=name)
    fd.scalars.string_data.data.extend(values)
    return fd


def _f_int(name: str, values: list[int]) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=DataType.INT32, field_name=name)
    fd.scalars.int_data.data.extend(values)
    return fd


def test_bad_raw_requests_change_nothing(
    mc: MilvusClient, strict: str, stub: milvus_pb2_grpc.MilvusServiceStub
) -> None:
    """Requests pymilvus would refuse to build (its client-side checks catch wrong types and
    unknown fields first): the server must check them itself."""
    before = state(mc, strict)
    cases: dict[str, milvus_pb2.InsertRequest] = {
        "wrong type": _raw_insert(strict, [_f_id([300]), _f_vec(1), _f_str("name", ["a"]), _f_str("n", ["7"])], 1),
        "unknown field": _raw_insert(
            strict, [_f_id([300]), _f_vec(1), _f_str("name", ["a"]), _f_int("n", [1]), _f_int("zzz", [1])], 1),
        "missing field": _raw_insert(strict, [_f_id([300]), _f_vec(1), _f_str("name", ["a"])], 1),
        "short column": _raw_insert(strict, [_f_id([300, 301]), _f_vec(2), _f_str("name", ["a"]),
                                             _f_int("n", [1, 2])], 2),
        "vector floats": _raw_insert(strict, [_f_id([300]), _f_vec(2), _f_str("name", ["a"]), _f_int("n", [1])], 1),
        "over-long varchar": _raw_insert(strict, [_f_id([300]), _f_vec(1), _f_str("name", ["x" * 9]),
                                                  _f_int("n", [1])], 1),
        "live key": _raw_insert(strict, [_f_id([4]), _f_vec(1), _f_str("name", ["a"]), _f_int("n", [1])], 1),
        "unknown collection ../../etc": _raw_insert("../../etc", [_f_id([300])], 1),
    }
    for label, req in cases.items():
        t0 = time.monotonic()
        reply = stub.Insert(req, timeout=10)
        assert time.monotonic() - t0 < FAST
        assert reply.status.code in (1100, 100), (label, reply.status)
        assert reply.status.reason, label
        assert reply.status.error_code != 0, label
        assert reply.insert_cnt == 0, label
    # a search request that is not a float vector query
    bad = milvus_pb2.SearchRequest(collection_name=strict, placeholder_group=b"\x01garbage", nq=1,
                                   dsl_type=common_pb2.DslType.BoolExprV1)
    bad.search_params.add(key="topk", value="3")
    reply = stub.Search(bad, timeout=10)
    assert reply.status.code == 1100 and reply.status.reason
    assert state(mc, strict) == before


# ---------------------------------------------------------------------------------------------
# Oversized requests
# ---------------------------------------------------------------------------------------------


def test_oversized_request_is_refused_and_server_keeps_serving() -> None:
    with KeelServer(max_message_mb=1) as srv:
        c = MilvusClient(uri=srv.uri)
        c.create_collection("big", dimension=128, metric_type="L2")
        c.insert("big", [{"id": 0, "vector": [0.0] * 128}])
        rows = [{"id": i, "vector": [float(i % 97)] * 128} for i in range(1, 4201)]  # ~2.2 MB
        t0 = time.monotonic()
        # gRPC refuses it before the service sees it: pymilvus raises the RpcError as is
        # (RESOURCE_EXHAUSTED is not retried).
        with pytest.raises(grpc.RpcError) as info:
            c.insert("big", rows)
        assert time.monotonic() - t0 < 10
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (info.value.details() or "")
        assert count(c, "big") == 1
        assert c.insert("big", rows[:100])["insert_count"] == 100  # the server still serves
        assert count(c, "big") == 101
        c.close()
        assert srv.process is not None and srv.process.poll() is None


# ---------------------------------------------------------------------------------------------
# SIGKILL and restart; SIGTERM
# ---------------------------------------------------------------------------------------------


def test_sigkill_restart_keeps_acknowledged_writes(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "data") as srv:
        port = srv.port
        c = MilvusClient(uri=srv.uri, dedicated=True)
        c.create_collection("crash", dimension=DIM, metric_type="L2")
        c.insert("crash", data_rows(20))
        c.flush("crash")
        c.upsert("crash", [{"id": 5, "vector": [5, 5, 5, 5], "color": "new"}])
        c.delete("crash", ids=[6])
        c.close()
        kill_and_restart(srv)
        assert srv.port == port and srv.process is not None
        c = MilvusClient(uri=srv.uri, dedicated=True)
        assert count(c, "crash") == 19
        assert listed(c.get("crash", ids=[5, 6], output_fields=["color"])) == [{"id": 5, "color": "new"}]
        assert [h["id"] for h in c.search("crash", [[5, 5, 5, 5]], limit=1)[0]] == [5]
        c.close()
        assert srv.stop() == 0
        assert "stopped cleanly" in srv.stdout_path.read_text()


# ---------------------------------------------------------------------------------------------
# AsyncMilvusClient
# ---------------------------------------------------------------------------------------------


def test_async_client(server: KeelServer) -> None:
    async def main() -> None:
        c = AsyncMilvusClient(uri=server.uri)
        try:
            await c.create_collection("async_coll", dimension=DIM, metric_type="L2")
            res = await c.insert("async_coll", [{"id": i, "vector": [float(i), 0, 0, 0], "k": i} for i in range(8)])
            assert res["insert_count"] == 8
            await c.upsert("async_coll", [{"id": 0, "vector": [0, 0, 0, 0], "k": 100}])
            await c.delete("async_coll", ids=[7])
            await c.flush("async_coll")
            rows = await c.query("async_coll", filter="k >= 5", output_fields=["k"])
            assert sorted((r["id"], r["k"]) for r in rows) == [(0, 100), (5, 5), (6, 6)]
            cnt = await c.query("async_coll", filter="", output_fields=["count(*)"])
            assert cnt[0]["count(*)"] == 7
            hits = await c.search("async_coll", [[6.2, 0, 0, 0]], limit=2, output_fields=["k"])
            assert [h["id"] for h in hits[0]] == [6, 5]
            assert await c.list_indexes("async_coll") == ["vector"]
            await c.drop_collection("async_coll")
            assert "async_coll" not in await c.list_collections()
        finally:
            await c.close()

    asyncio.run(main())

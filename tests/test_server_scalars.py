"""Issue 14's scalar types, schema changes and write modes through ``keeldb serve`` with the
real pymilvus client: ARRAY / TIMESTAMPTZ / GEOMETRY in and out, describe_collection's
shapes (element types, partition key, properties, consistency level, functions),
AddCollectionField, AlterCollection, AlterCollectionField, partial updates, filter
templates (``expr_template_values``), TIMESTAMPTZ's ``timezone`` on reads, refusals of
schema functions and struct-array fields at create_collection, and a Milvus status (code
10, naming the feature) from every MilvusService RPC keeldb does not implement. The same
calls through the embedded client give the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass
from pymilvus import DataType, Function, FunctionType, MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

import keeldb
from keeldb.server import unimplemented
from keeldb.server.service import Service
from tests.scalar_util import base_schema, create_flat
from tests.server_util import KeelServer


@pytest.fixture
def client(server: KeelServer) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=server.uri)
    yield c
    c.close()


def _schema(c: Any, *, key: bool = False) -> Any:
    s = base_schema(c, dynamic=True)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8, nullable=True)
    s.add_field("nums", DataType.ARRAY, element_type=DataType.INT16, max_capacity=4)
    s.add_field("fl", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=3, nullable=True)
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("score", DataType.DOUBLE, default_value=1.5)
    if key:
        s.add_field("tenant", DataType.VARCHAR, max_length=8, is_partition_key=True)
    return s


def _create(c: Any, name: str, **kw: Any) -> None:
    create_flat(c, name, _schema(c, key=kw.pop("key", False)), **kw)


ROWS = [
    {"id": i, "v": [float(i), 0.0], "tags": None if i == 2 else ["a", f"w{i}"], "nums": list(range(i % 4)),
     "fl": None if i % 2 else [0.5 * i], "t": None if i == 3 else f"2025-01-0{i + 1}T00:00:00+08:00",
     "g": None if i == 4 else f"POINT({i} {i})", "x": i}
    for i in range(6)
]  # fmt: skip
QUERIES = [
    'array_contains(tags, "w1")',
    "array_contains_any(nums, [2, 3])",
    "nums[0] == 0 and array_length(nums) >= 2",
    'tags[1] like "w%"',
    't >= ISO "2025-01-03T00:00:00+08:00"',
    't + INTERVAL "P1D" < ISO "2025-01-03T00:00:00+08:00"',
    'ST_WITHIN(g, "POLYGON((-1 -1, 2.5 -1, 2.5 2.5, -1 2.5, -1 -1))")',
    'ST_DWITHIN(g, "POINT(5 5)", 1000)',
    "fl is null",
    "exists x",
    "x in {xs}",
]


def test_types_end_to_end_and_same_as_embedded(client: MilvusClient, tmp_path: Path) -> None:
    _create(client, "types")
    assert client.insert("types", ROWS)["insert_count"] == 6
    emb = keeldb.Client(str(tmp_path))
    _create(emb, "types")
    emb.insert("types", ROWS)
    for flt in QUERIES:
        kw = {"filter_params": {"xs": [1, 4]}}
        wire = client.query("types", flt, output_fields=["*"], **kw)
        local = emb.query("types", flt, output_fields=["*"], **kw)
        assert sorted(map(repr, wire)) == sorted(map(repr, local)), flt
    row = client.get("types", [1], output_fields=["*"])[0]
    assert row["tags"] == ["a", "w1"] and row["nums"] == [0] and row["t"] == "2025-01-01T16:00:00Z"
    assert row["g"] == "POINT (1 1)" and row["score"] == 1.5 and row["fl"] is None
    row = client.get("types", [2], output_fields=["tags", "fl", "t"], timezone="Asia/Shanghai")[0]
    assert row == {"id": 2, "tags": None, "fl": [1.0], "t": "2025-01-03T00:00:00+08:00"}
    hits = client.search("types", [[0, 0]], limit=3, filter="array_contains(tags, {w})", filter_params={"w": "a"},
                         output_fields=["tags", "t"], timezone="Asia/Shanghai")[0]  # fmt: skip
    assert [h["id"] for h in hits] == [0, 1, 3] and hits[0]["entity"]["t"] == "2025-01-01T00:00:00+08:00"
    assert client.delete("types", filter="x in {xs}", filter_params={"xs": [0, 5]})["delete_count"] == 2
    assert client.query("types", "", output_fields=["count(*)"])[0]["count(*)"] == 4
    emb.close()


def test_describe_shapes(client: MilvusClient) -> None:
    _create(client, "desc", key=True, num_partitions=3, consistency_level="Session",
            properties={"collection.ttl.seconds": 3600})  # fmt: skip
    d = client.describe_collection("desc")
    assert d["consistency_level"] == 1 and d["num_partitions"] == 3 and d["functions"] == []
    assert d["properties"] == {"collection.ttl.seconds": "3600", "timezone": "UTC"}
    f = {x["name"]: x for x in d["fields"]}
    assert f["tags"]["element_type"] == DataType.VARCHAR and f["tags"]["params"] == {"max_length": 8, "max_capacity": 4}
    assert f["nums"]["element_type"] == DataType.INT16 and f["tenant"]["is_partition_key"] is True
    assert f["score"]["default_value"].double_data == 1.5
    assert client.list_partitions("desc") == ["_default_0", "_default_1", "_default_2"]
    with pytest.raises(MilvusException, match="disable create partition if partition key mode is used"):
        client.create_partition("desc", "p")
    with pytest.raises(MilvusException, match="not support manually specifying the partition names"):
        client.insert("desc", [{**ROWS[0], "tenant": "a"}], partition_name="_default_0")


def test_schema_changes_and_partial_update(client: MilvusClient) -> None:
    _create(client, "change")
    client.insert("change", ROWS)
    client.flush("change")
    client.add_collection_field("change", "added", DataType.VARCHAR, max_length=8, nullable=True, default_value="dflt")
    client.add_collection_field("change", "when", DataType.TIMESTAMPTZ, nullable=True, default_value="2025-01-01T00:00:00Z")
    assert {r["added"] for r in client.query("change", "", output_fields=["added"])} == {"dflt"}
    client.insert("change", [{**ROWS[0], "id": 9, "added": "new", "when": "2026-01-01T00:00:00Z"}])
    assert client.query("change", 'added == "new"', output_fields=["when"])[0]["when"] == "2026-01-01T00:00:00Z"
    with pytest.raises(MilvusException, match="added field must be nullable"):
        client.add_collection_field("change", "bad", DataType.INT64)
    client.alter_collection_field("change", "tags", {"max_capacity": 8})
    assert client.describe_collection("change")["fields"][2]["params"]["max_capacity"] == 8
    client.alter_collection_properties("change", {"timezone": "Asia/Tokyo", "my.key": "v"})
    assert client.describe_collection("change")["properties"] == {"timezone": "Asia/Tokyo", "my.key": "v"}
    client.drop_collection_properties("change", ["my.key"])
    with pytest.raises(MilvusException, match="can not alter mmap properties if collection loaded"):
        client.alter_collection_properties("change", {"mmap.enabled": True})
    with pytest.raises(MilvusException, match="unknown or invalid IANA Time Zone ID"):
        client.alter_collection_properties("change", {"timezone": "Bad/Zone"})
    # partial update over the wire: only the sent columns change
    before = client.get("change", [1], output_fields=["*"])[0]
    client.upsert("change", [{"id": 1, "nums": [3, 3], "y": 1}], partial_update=True)
    after = client.get("change", [1], output_fields=["*"])[0]
    assert after == {**before, "nums": [3, 3], "y": 1, "when": "2025-01-01T09:00:00+09:00"} | {"t": "2025-01-02T01:00:00+09:00"}
    with pytest.raises(MilvusException, match="has no corresponding fieldData"):
        client.upsert("change", [{"id": 77, "nums": [1]}], partial_update=True)
    assert client.query("change", "", output_fields=["count(*)"])[0]["count(*)"] == 7


def test_bad_input_over_the_wire(client: MilvusClient) -> None:
    _create(client, "bad")
    client.insert("bad", ROWS[:2])
    for row, words in (
        ({**ROWS[0], "id": 10, "nums": [1] * 5}, "exceeds max_capacity"),
        ({**ROWS[0], "id": 10, "g": "POINT(a b)"}, "not valid WKT"),
        ({**ROWS[0], "id": 10, "t": "2025-01-01T00:00:00+20:00"}, "out of the valid range"),
        ({**ROWS[0], "id": 10, "nums": [70000]}, "out of range for INT16"),
    ):
        with pytest.raises(MilvusException, match=words):
            client.insert("bad", [row])
    assert client.query("bad", "", output_fields=["count(*)"])[0]["count(*)"] == 2
    with pytest.raises(MilvusException, match="template variable name {nope} is not found"):
        client.query("bad", "id in {nope}", filter_params={"xs": [1]})
    with pytest.raises(MilvusException, match="not valid WKT"):
        client.query("bad", 'ST_CONTAINS(g, "POINT(")')


def test_functions_and_struct_fields_refused(client: MilvusClient) -> None:
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="te", function_type=FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                            output_field_names=["dense"], params={"provider": "openai", "model_name": "x"}))  # fmt: skip
    with pytest.raises(MilvusException, match="schema function 'te' of type TextEmbedding is not supported"):
        client.create_collection("fn", schema=s)
    s2 = client.create_schema()
    s2.add_field("id", DataType.INT64, is_primary=True)
    s2.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s2.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s2.add_function(Function(name="bm", function_type=FunctionType.BM25, input_field_names=["text"],
                             output_field_names=["sparse"]))  # fmt: skip
    client.create_collection("bm", schema=s2)  # BM25 is taken (tests/test_server_bm25.py)
    assert not client.has_collection("fn") and client.has_collection("bm")
    s3 = client.create_schema()
    s3.add_field("id", DataType.INT64, is_primary=True)
    s3.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    struct = client.create_struct_field_schema()
    struct.add_field("a", DataType.INT64)
    s3.add_field("st", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=struct, max_capacity=4)
    with pytest.raises(MilvusException, match="struct array field 'st' is not supported"):
        client.create_collection("st", schema=s3)
    assert not client.has_collection("st")


def test_every_unimplemented_rpc_answers_a_milvus_status(server: KeelServer) -> None:
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    own = {
        n
        for klass in Service.__mro__
        if klass.__module__.startswith("keeldb.")  # Service and its RPC mixins (access, namespaces, ...)
        for n, v in vars(klass).items()
        if not getattr(v, "__module__", "").startswith("keeldb.server.unimplemented")
    }
    missing = [m for m in service.methods if m.name not in own]
    assert len(missing) > 30  # snapshots, imports, row policies, external collections, ...
    assert "HybridSearch" not in {m.name for m in missing}
    channel = grpc.insecure_channel(server.uri.removeprefix("http://"))
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    for m in missing:
        request = GetMessageClass(m.input_type)()
        call = getattr(stub, m.name)
        arg = iter([request]) if m.client_streaming else request  # a stream call takes an iterator
        try:
            reply = next(iter(call(arg, timeout=5))) if m.server_streaming else call(arg, timeout=5)
        except grpc.RpcError as e:  # only messages without a status field may do this
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED and "keeldb" in (e.details() or ""), m.name
            assert "status" not in GetMessageClass(m.output_type).DESCRIPTOR.fields_by_name, m.name
            continue
        status = reply if m.output_type.name == "Status" else reply.status
        assert status.code == unimplemented.UNIMPLEMENTED_CODE, m.name
        assert m.name in status.reason and "keeldb" in status.reason, status.reason
    channel.close()
    c = MilvusClient(uri=server.uri)
    with pytest.raises(MilvusException, match="one resource group"):
        c.create_resource_group("x")
    with pytest.raises(MilvusException, match="collection not found"):  # answered, not "unimplemented"
        c.hybrid_search("x", [], None)
    c.close()

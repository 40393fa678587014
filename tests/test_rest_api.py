"""The REST API v2 through a real HTTP client (httpx) against ``keeldb serve --http-port``,
each answer compared with pymilvus's (gRPC) answer on the same data, and bad input refused
with Milvus's codes and nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymilvus import MilvusClient

from tests.rest_util import client, data, post, rest_server
from tests.server_util import KeelServer

N = 40
DIM = 4


def _vec(i: int) -> list[float]:
    return [float(i % 7), float(i % 3), 1.0, float(i) / N]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KeelServer, httpx.Client, MilvusClient]]:
    with rest_server() as server:
        http = client(server)
        grpc_client = MilvusClient(uri=server.uri)
        try:
            yield server, http, grpc_client
        finally:
            grpc_client.close()
            http.close()


def _create_docs(http: httpx.Client, name: str) -> None:
    body = {
        "collectionName": name,
        "schema": {
            "autoID": False, "enableDynamicField": True,
            "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                {"fieldName": "vector", "dataType": "FloatVector", "elementTypeParams": {"dim": DIM}},
                {"fieldName": "tag", "dataType": "VarChar", "elementTypeParams": {"max_length": 16}},
                {"fieldName": "meta", "dataType": "JSON", "nullable": True},
                {"fieldName": "nums", "dataType": "Array", "elementDataType": "Int32", "elementTypeParams": {"max_capacity": 4}},
            ],
        },
        "indexParams": [{"fieldName": "vector", "indexName": "vidx", "metricType": "L2", "indexType": "FLAT"}],
    }  # fmt: skip
    assert data(post(http, "collections/create", body)) == {}


def _rows(lo: int, hi: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "vector": _vec(i), "tag": "ab"[i % 2], "meta": {"k": i} if i % 5 else None, "nums": [i, i + 1], "extra": i * 10}
        for i in range(lo, hi)
    ]  # fmt: skip


def test_collections_entities_and_search_match_grpc(served: Any) -> None:
    _, http, mc = served
    _create_docs(http, "docs")
    assert "docs" in data(post(http, "collections/list"))
    assert "docs" in mc.list_collections()
    assert data(post(http, "collections/has", {"collectionName": "docs"})) == {"has": True}
    assert data(post(http, "collections/has", {"collectionName": "nope"})) == {"has": False}
    ins = data(post(http, "entities/insert", {"collectionName": "docs", "data": _rows(0, N)}))
    assert ins == {"insertCount": N, "insertIds": list(range(N))}

    d = data(post(http, "collections/describe", {"collectionName": "docs"}))
    g = mc.describe_collection("docs")
    assert [f["name"] for f in d["fields"]] == [f["name"] for f in g["fields"]]
    assert d["enableDynamicField"] is True and d["load"] == "LoadStateLoaded"
    assert d["indexes"] == [{"indexName": "vidx", "fieldName": "vector", "metricType": "L2"}]
    assert {f["name"]: f["type"] for f in d["fields"]} == {
        "id": "Int64", "vector": "FloatVector", "tag": "VarChar", "meta": "JSON", "nums": "Array"
    }  # fmt: skip

    stats = data(post(http, "collections/get_stats", {"collectionName": "docs"}))
    assert stats == {"rowCount": mc.get_collection_stats("docs")["row_count"]} == {"rowCount": N}

    # query: the same rows as pymilvus's, dynamic keys merged in, nulls as null
    rq = data(post(http, "entities/query", {"collectionName": "docs", "filter": "id < 12", "outputFields": ["*"], "limit": 50}))
    gq = mc.query("docs", filter="id < 12", output_fields=["*"], limit=50)
    assert sorted(rq, key=lambda r: r["id"]) == sorted(
        ({k: (list(map(float, v)) if k == "vector" else v) for k, v in r.items()} for r in gq), key=lambda r: r["id"]
    )
    count = data(post(http, "entities/query", {"collectionName": "docs", "filter": "tag == 'a'", "outputFields": ["count(*)"]}))
    assert count == [{"count(*)": mc.query("docs", filter="tag == 'a'", output_fields=["count(*)"])[0]["count(*)"]}]
    templ = data(post(http, "entities/query", {"collectionName": "docs", "filter": "id in {ids}", "exprParams": {"ids": [3, 4]},
                                             "outputFields": ["id"]}))  # fmt: skip
    assert sorted(r["id"] for r in templ) == [3, 4]

    # get: by id, one or several
    got = data(post(http, "entities/get", {"collectionName": "docs", "id": [5, 6], "outputFields": ["tag", "extra"]}))
    assert sorted(got, key=lambda r: r["id"]) == sorted(mc.get("docs", ids=[5, 6], output_fields=["tag", "extra"]), key=lambda r: r["id"])
    assert data(post(http, "entities/get", {"collectionName": "docs", "id": 7, "outputFields": ["tag"]})) == [{"id": 7, "tag": "b"}]

    # search: same ids, distances and fields as pymilvus, two queries flattened
    q = [_vec(3), _vec(11)]
    rs = post(http, "entities/search", {"collectionName": "docs", "data": q, "limit": 5, "outputFields": ["tag"], "filter": "id > 1"})
    gs = mc.search("docs", q, limit=5, output_fields=["tag"], filter="id > 1")
    flat = [h for hits in gs for h in hits]
    assert [(h["id"], h["tag"]) for h in data(rs)] == [(h["id"], h["entity"]["tag"]) for h in flat]
    assert [h["distance"] for h in data(rs)] == pytest.approx([h["distance"] for h in flat])
    assert rs["topks"] == [5, 5]
    grouped = data(post(http, "entities/search", {"collectionName": "docs", "data": [_vec(3)], "limit": 2, "groupingField": "tag"}))
    assert len(grouped) == 2 and len({h["id"] % 2 for h in grouped}) == 2
    # search params reach the servicer as over gRPC: hints acted on or refused, never dropped
    hinted = post(http, "entities/search", {"collectionName": "docs", "data": [_vec(3)], "limit": 5,
                                            "searchParams": {"hints": "iterative_filter"}})  # fmt: skip
    assert [h["id"] for h in data(hinted)] == [h["id"] for h in mc.search("docs", [_vec(3)], limit=5)[0]]
    bad = post(http, "entities/search", {"collectionName": "docs", "data": [_vec(3)], "limit": 5, "searchParams": {"hints": "bogus"}})
    assert bad["code"] != 0 and "hints: bogus not supported" in bad["message"]

    # hybrid search: the same fused ranking as pymilvus's
    from pymilvus import AnnSearchRequest, RRFRanker

    hs = data(post(http, "entities/hybrid_search", {
        "collectionName": "docs", "limit": 4, "outputFields": ["tag"], "rerank": {"strategy": "rrf", "params": {"k": 60}},
        "search": [{"data": [_vec(3)], "annsField": "vector", "limit": 6}, {"data": [_vec(9)], "annsField": "vector", "limit": 6}],
    }))  # fmt: skip
    gh = mc.hybrid_search("docs", [AnnSearchRequest([_vec(3)], "vector", {}, 6), AnnSearchRequest([_vec(9)], "vector", {}, 6)],
                          RRFRanker(60), limit=4, output_fields=["tag"])[0]  # fmt: skip
    assert [h["id"] for h in hs] == [h["id"] for h in gh]

    # upsert and delete, seen through gRPC
    up = data(post(http, "entities/upsert", {"collectionName": "docs", "data": [{**_rows(2, 3)[0], "tag": "z"}]}))
    assert up == {"upsertCount": 1, "upsertIds": [2]}
    assert mc.get("docs", ids=[2], output_fields=["tag"])[0]["tag"] == "z"
    assert data(post(http, "entities/delete", {"collectionName": "docs", "filter": "id in [0, 1]"})) == {"deleteCount": 2}
    assert data(post(http, "entities/delete", {"collectionName": "docs", "id": [39]})) == {"deleteCount": 1}
    assert mc.query("docs", filter="", output_fields=["count(*)"])[0]["count(*)"] == N - 3
    # int64 as strings when the client cannot take 64-bit numbers
    s = post(http, "entities/get", {"collectionName": "docs", "id": [5], "outputFields": ["id"]},
             headers={"Accept-Type-Allow-Int64": "false"})  # fmt: skip
    assert data(s) == [{"id": "5"}]


def test_partitions_indexes_aliases_databases_match_grpc(served: Any) -> None:
    _, http, mc = served
    assert data(post(http, "collections/create", {"collectionName": "quick", "dimension": DIM, "metricType": "IP"})) == {}
    assert mc.describe_index("quick", "vector")["metric_type"] == "IP"
    # partitions
    assert data(post(http, "partitions/create", {"collectionName": "quick", "partitionName": "p1"})) == {}
    assert data(post(http, "partitions/list", {"collectionName": "quick"})) == mc.list_partitions("quick")
    assert data(post(http, "partitions/has", {"collectionName": "quick", "partitionName": "p1"})) == {"has": True}
    data(post(http, "entities/insert", {"collectionName": "quick", "partitionName": "p1", "data": [{"id": 1, "vector": _vec(1)}]}))
    assert data(post(http, "partitions/get_stats", {"collectionName": "quick", "partitionName": "p1"})) == {
        "rowCount": mc.get_partition_stats("quick", "p1")["row_count"]
    }
    assert data(post(http, "partitions/release", {"collectionName": "quick", "partitionNames": ["p1"]})) == {}
    assert data(post(http, "partitions/load", {"collectionName": "quick", "partitionNames": ["p1"]})) == {}
    # indexes
    assert data(post(http, "indexes/list", {"collectionName": "quick"})) == mc.list_indexes("quick")
    desc = data(post(http, "indexes/describe", {"collectionName": "quick", "indexName": "vector"}))
    assert desc[0]["metricType"] == "IP" and desc[0]["fieldName"] == "vector" and desc[0]["indexState"] == "Finished"
    # load state / release / load
    assert data(post(http, "collections/release", {"collectionName": "quick"})) == {}
    assert data(post(http, "collections/get_load_state", {"collectionName": "quick"})) == {"loadState": "LoadStateNotLoad"}
    assert str(mc.get_load_state("quick")["state"]) == "NotLoad"
    assert data(post(http, "indexes/drop", {"collectionName": "quick", "indexName": "vector"})) == {}
    assert data(post(http, "indexes/list", {"collectionName": "quick"})) == [] == mc.list_indexes("quick")
    assert data(post(http, "indexes/create", {"collectionName": "quick", "indexParams": [
        {"fieldName": "vector", "indexName": "v2", "metricType": "IP", "indexType": "IVF_FLAT", "params": {"nlist": 8}}]})) == {}  # fmt: skip
    assert mc.describe_index("quick", "v2")["index_type"] == "IVF_FLAT"
    assert data(post(http, "collections/load", {"collectionName": "quick"})) == {}
    # aliases
    assert data(post(http, "aliases/create", {"collectionName": "quick", "aliasName": "qa"})) == {}
    assert data(post(http, "aliases/list", {"collectionName": "quick"})) == mc.list_aliases("quick")["aliases"] == ["qa"]
    assert data(post(http, "aliases/describe", {"aliasName": "qa"})) == {"dbName": "default", "collectionName": "quick", "aliasName": "qa"}
    assert data(post(http, "aliases/drop", {"aliasName": "qa"})) == {}
    # rename, drop
    assert data(post(http, "collections/rename", {"collectionName": "quick", "newCollectionName": "quick2"})) == {}
    assert mc.has_collection("quick2") and not mc.has_collection("quick")
    # databases: a collection created through REST in another database is seen there by gRPC
    assert data(post(http, "databases/create", {"dbName": "other", "properties": {"database.max.collections": 5}})) == {}
    assert set(data(post(http, "databases/list"))) == set(mc.list_databases())
    assert {"key": "database.max.collections", "value": "5"} in data(post(http, "databases/describe", {"dbName": "other"}))["properties"]
    assert data(post(http, "collections/create", {"dbName": "other", "collectionName": "inner", "dimension": DIM})) == {}
    other = MilvusClient(uri=served[0].uri, db_name="other")
    assert other.list_collections() == ["inner"] == data(post(http, "collections/list", {}, headers={"DB-Name": "other"}))
    other.close()
    assert data(post(http, "collections/drop", {"dbName": "other", "collectionName": "inner"})) == {}
    assert data(post(http, "databases/drop", {"dbName": "other"})) == {}
    assert data(post(http, "collections/drop", {"collectionName": "quick2"})) == {}
    assert not mc.has_collection("quick2")


def test_bad_input_is_refused_with_milvus_codes_and_changes_nothing(served: Any) -> None:
    _, http, mc = served
    _create_docs(http, "strict")
    data(post(http, "entities/insert", {"collectionName": "strict", "data": _rows(0, 5)}))

    def raw(path: str, body: bytes) -> dict[str, Any]:
        return http.post(f"/v2/vectordb/{path}", content=body, headers={"Content-Type": "application/json"}).json()

    assert raw("entities/insert", b'{"collectionName": "strict", "data": [')["code"] == 1801
    assert raw("entities/query", b"")["code"] == 1801
    assert raw("entities/query", b"[1, 2]")["code"] == 1801
    wrong = post(http, "entities/query", {"collectionName": 5})
    assert wrong["code"] == 1801 and "collectionName" in wrong["message"]
    assert post(http, "entities/query", {"collectionName": "strict", "limit": "ten"})["code"] == 1801
    missing = post(http, "entities/insert", {"collectionName": "strict"})
    assert missing["code"] == 1802 and "'data'" in missing["message"]
    assert post(http, "collections/describe", {"collectionName": "nope"})["code"] == 100
    assert post(http, "entities/query", {"collectionName": "nope", "filter": "id > 0"})["code"] == 100
    assert post(http, "entities/search", {"collectionName": "strict", "data": [["x"]]})["code"] == 1801
    # a batch with one bad row is refused whole (Milvus's 1804), nothing inserted
    bad = [*_rows(10, 13), {"id": 13, "vector": "not a vector", "tag": "a", "nums": []}]
    assert post(http, "entities/insert", {"collectionName": "strict", "data": bad})["code"] == 1804
    short = [*_rows(20, 22), {"id": 22, "vector": [1.0, 2.0], "tag": "a", "nums": []}]
    assert post(http, "entities/insert", {"collectionName": "strict", "data": short})["code"] != 0
    dup_type = post(http, "entities/insert", {"collectionName": "strict", "data": [{**_rows(30, 31)[0], "tag": 7}]})
    assert dup_type["code"] != 0
    assert post(http, "entities/query", {"collectionName": "strict", "filter": "id >>> 1"})["code"] == 1100
    assert mc.query("strict", filter="", output_fields=["count(*)"])[0]["count(*)"] == 5
    # unknown endpoints and methods: 404, as gin answers
    r = http.post("/v2/vectordb/collections/frobnicate", json={})
    assert r.status_code == 404 and r.json()["code"] == 404
    assert http.get("/v2/vectordb/collections/list").status_code == 404
    assert post(http, "jobs/import/create", {"collectionName": "strict", "files": [["a.parquet"]]})["code"] == 10
    bad_create = post(http, "collections/create", {"collectionName": "t", "schema": {"fields": [{"fieldName": "id", "dataType": "Int65"}]}})
    assert bad_create["code"] == 1100 and not mc.has_collection("t")
    assert post(http, "collections/create", {"collectionName": "t"})["code"] == 1100
    assert not mc.has_collection("t")

"""The same pymilvus script against ``keeldb serve`` and Milvus Lite 3.2.2 (the pure-Python
peer, which has ARRAY, TIMESTAMPTZ, GEOMETRY, partition keys and partial update): where
both have a feature the answers must agree; where they differ, the difference is asserted
here -- each one is Milvus Lite departing from Milvus 2.6 -- so it is written down and a
change on either side shows up:

- GEOMETRY text: Milvus Lite returns the WKT as inserted (``POINT(1 1)``); keeldb returns
  GEOS's normal form (``POINT (1 1)``), as Milvus does (GDAL's writer).
- ``ST_DWITHIN`` distance: Milvus measures metres on the sphere (its docs: "the distance
  unit is metre"), as keeldb does; Milvus Lite measures in coordinate units (degrees).
- Analyzers: Milvus Lite has no RunAnalyzer (bare gRPC UNIMPLEMENTED), accepts analyzer
  params naming a tokenizer that does not exist, and describes ``analyzer_params`` re-encoded
  (``{"type": "english"}``) where Milvus returns the text pymilvus sent (``{"type":"english"}``,
  as keeldb does); both store and describe ``enable_analyzer`` / ``enable_match`` as ``'true'``.
- A search with a function reranker: Milvus reranks the search's first offset + limit hits, as
  keeldb does; Milvus Lite reranks at least 10 x limit candidates, so a decay ranker can lift
  a hit from beyond them. WeightedRanker over its gRPC server normalises each request's
  distances min-max, not with Milvus's arctan.
- BM25 (``test_bm25_side_by_side``): Milvus Lite computes IDF and average length per
  segment, so a row's score changes when other rows land in another segment (a row of the
  first segment keeps its old score after a second segment arrives, where the collection's
  statistics have moved); keeldb's statistics are the collection's at the snapshot, equal
  to an independent BM25 over every row. Milvus Lite also reports BM25 scores negated
  (Milvus reports the positive score), hashes terms with FNV-1a (Milvus: CRC-32), has no
  ``english`` analyzer, and returns the output field's raw vectors to a query that names
  it (Milvus: "not allowed to retrieve raw data of field ...").
- ``text_match`` (``test_text_match_side_by_side``): the same rows with the standard
  analyzer; but Milvus Lite matches a field without ``enable_match`` (Milvus: 'field "x"
  does not enable match'), counts null rows into ``not text_match(...)`` (Milvus's valid
  bitmap leaves them out), and has no ``phrase_match`` and no ``minimum_should_match``.
- Index properties (``test_index_properties_side_by_side``): Milvus Lite has no AlterIndex
  (bare gRPC UNIMPLEMENTED), describes neither an index's build params nor its
  ``mmap.enabled`` (Milvus shows both, as keeldb does), and accepts a DISKANN index, which
  keeldb refuses with the reason (it does not build DISKANN).
- Milvus Lite has no filter templates, no ``add_collection_field`` (bare gRPC
  UNIMPLEMENTED), keeps ``collection.ttl.seconds`` but never expires rows, and reports no
  ``timezone`` property on a new collection (Milvus reports one).

Skipped when milvus-lite (the ``bench`` extra) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from keeldb.testing.server import MilvusLiteServer
from tests.scalar_util import base_schema, create_flat
from tests.server_util import KeelServer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("milvus_lite") is None, reason="milvus-lite not installed")


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MilvusClient, MilvusClient]]:
    tmp = tmp_path_factory.mktemp("lite")
    lite = MilvusLiteServer(tmp / "lite", log_path=tmp / "lite.log")
    lite.start()
    try:
        with KeelServer() as keel:
            yield MilvusClient(uri=keel.uri), MilvusClient(uri=lite.uri)
    finally:
        lite.stop()


def _schema(c: MilvusClient, key: bool = False) -> Any:
    s = base_schema(c, dynamic=True)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8, nullable=True)
    s.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("tenant", DataType.INT64, is_partition_key=key)
    return s


ROWS = [
    {"id": i, "v": [float(i), 0.0], "tags": None if i % 5 == 2 else ["a", f"w{i % 4}"], "nums": list(range(i % 4)),
     "t": None if i % 6 == 3 else f"2025-01-{i % 28 + 1:02d}T0{i % 10}:00:00+08:00",
     "g": None if i % 7 == 4 else f"POINT({i % 9} {i % 5})", "tenant": i % 3, "x": i}
    for i in range(40)
]  # fmt: skip
SAME = [
    'array_contains(tags, "w1")',
    "array_contains_all(nums, [0, 1])",
    "array_contains_any(nums, [2, 3])",
    "nums[0] == 0 and array_length(nums) >= 2",
    'tags[1] like "w%"',
    "tags is null",
    't >= ISO "2025-01-10T00:00:00+08:00"',
    't + INTERVAL "P1DT3H" < ISO "2025-01-05T00:00:00Z"',
    "t is null",
    'ST_WITHIN(g, "POLYGON((-1 -1, 4.5 -1, 4.5 2.5, -1 2.5, -1 -1))")',
    'ST_CONTAINS(g, "POINT(3 3)") or ST_INTERSECTS(g, "POLYGON((6 0, 9 0, 9 4, 6 4, 6 0))")',
    "exists x and x > 30",
    "tenant == 1 and x < 20",
]


def _ids(c: MilvusClient, name: str, flt: str) -> list[Any]:
    return sorted(r["id"] for r in c.query(name, flt, output_fields=["id"]))


@pytest.mark.parametrize("key", [False, True], ids=["plain", "partition_key"])
def test_same_answers(clients: tuple[MilvusClient, MilvusClient], key: bool) -> None:
    name = f"cmp_{int(key)}"
    for c in clients:
        create_flat(c, name, _schema(c, key), **({"num_partitions": 4} if key else {}))
        assert c.insert(name, ROWS)["insert_count"] == len(ROWS)
    keel, lite = clients
    for flt in SAME:
        assert _ids(keel, name, flt) == _ids(lite, name, flt), flt
    a = keel.query(name, "id < 10", output_fields=["tags", "nums", "t", "tenant", "x"])
    b = lite.query(name, "id < 10", output_fields=["tags", "nums", "t", "tenant", "x"])
    by_id = lambda rows: sorted(rows, key=lambda r: r["id"])  # noqa: E731 - the order of a query is Milvus's to choose
    assert by_id(a) == by_id(b)  # TIMESTAMPTZ out as UTC RFC 3339 in both
    for c in clients:
        c.upsert(name, [{"id": 1, "nums": [3, 3], "y": 5}], partial_update=True)
    assert list(keel.get(name, [1], output_fields=["*"])) == [
        {**r, "g": r["g"].replace("POINT(", "POINT (")} for r in lite.get(name, [1], output_fields=["*"])
    ]
    if key:
        assert keel.list_partitions(name) == [f"_default_{i}" for i in range(4)]


def test_where_milvus_lite_departs_from_milvus(clients: tuple[MilvusClient, MilvusClient]) -> None:
    keel, lite = clients
    for c in clients:
        create_flat(c, "diff", _schema(c))
        c.insert("diff", ROWS[:10])
    assert keel.get("diff", [1], output_fields=["g"])[0]["g"] == "POINT (1 1)"
    assert lite.get("diff", [1], output_fields=["g"])[0]["g"] == "POINT(1 1)"
    near = 'ST_DWITHIN(g, "POINT(5 1)", 120000)'  # 120 km: POINT(5 1) and POINT(6 1) only
    assert _ids(keel, "diff", near) == [5, 6]
    assert len(_ids(lite, "diff", near)) == 9  # every non-null point: 120000 "degrees"
    assert sorted(r["id"] for r in keel.query("diff", "x in {xs}", filter_params={"xs": [2, 3]})) == [2, 3]
    with pytest.raises(MilvusException):
        lite.query("diff", "x in {xs}", filter_params={"xs": [2, 3]})
    assert keel.describe_collection("diff")["properties"] == {"timezone": "UTC"}
    assert lite.describe_collection("diff")["properties"] == {}
    keel.add_collection_field("diff", "added", DataType.INT64, nullable=True, default_value=7)
    assert {r["added"] for r in keel.query("diff", "", output_fields=["added"])} == {7}
    with pytest.raises(Exception, match="UNIMPLEMENTED|not implemented"):
        lite.add_collection_field("diff", "added", DataType.INT64, nullable=True, default_value=7)
    for c in clients:
        c.alter_collection_properties("diff", {"collection.ttl.seconds": 1})
    time.sleep(1.6)
    assert keel.query("diff", "", output_fields=["count(*)"])[0]["count(*)"] == 0
    assert lite.query("diff", "", output_fields=["count(*)"])[0]["count(*)"] == 10


def test_bad_input_both_refuse(clients: tuple[MilvusClient, MilvusClient], tmp_path: Path) -> None:
    for c in clients:
        create_flat(c, "bad", _schema(c))
        c.insert("bad", ROWS[:2])
        for row in (
            {**ROWS[0], "id": 9, "nums": [1] * 5},  # over capacity
            {**ROWS[0], "id": 9, "g": "POINT((1 2)"},  # bad WKT
            {**ROWS[0], "id": 9, "t": "not a time"},
        ):
            with pytest.raises(MilvusException):
                c.insert("bad", [row])
        assert c.query("bad", "", output_fields=["count(*)"])[0]["count(*)"] == 2


def test_analyzer_settings_side_by_side(clients: tuple[MilvusClient, MilvusClient]) -> None:
    keel, lite = clients
    described = []
    for c in (keel, lite):
        s = c.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                    analyzer_params={"type": "english"})  # fmt: skip
        c.create_collection("analyzed", schema=s)
        (f,) = [f for f in c.describe_collection("analyzed")["fields"] if f["name"] == "text"]
        described.append(f["params"])
    k, m = described
    assert k["enable_analyzer"] == m["enable_analyzer"] == "true" and k["enable_match"] == m["enable_match"] == "true"
    assert json.loads(k["analyzer_params"]) == json.loads(m["analyzer_params"]) == {"type": "english"}
    assert k["analyzer_params"] == '{"type":"english"}'  # the text pymilvus sent, as Milvus keeps it
    # RunAnalyzer: keeldb answers with the English analyzer's tokens; Milvus Lite has no such RPC.
    assert keel.run_analyzer("Running dogs", {"type": "english"}).tokens == ["run", "dog"]
    with pytest.raises(grpc.RpcError) as e:  # pymilvus passes a bare UNIMPLEMENTED through
        lite.run_analyzer("Running dogs", {"type": "english"}, timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_hybrid_search_and_grouping_agree(clients: tuple[MilvusClient, MilvusClient]) -> None:
    """RRF hybrid search (two vector fields, a filter on one), grouping search and a decay
    reranker: the same hits in the same order, the same scores. (Not compared: WeightedRanker,
    which Milvus Lite's server normalises min-max per request instead of Milvus's arctan.)"""
    from pymilvus import AnnSearchRequest, Function, FunctionType, RRFRanker

    rng = __import__("numpy").random.default_rng(11)
    rows = [{"id": i, "a": rng.normal(size=4).tolist(), "b": rng.normal(size=4).tolist(),
             "doc": int(rng.integers(0, 6)), "price": float(i % 30)} for i in range(80)]  # fmt: skip
    q = rng.normal(size=(1, 4)).tolist()
    answers = []
    for c in clients:
        s = c.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("a", DataType.FLOAT_VECTOR, dim=4)
        s.add_field("b", DataType.FLOAT_VECTOR, dim=4)
        s.add_field("doc", DataType.INT64)
        s.add_field("price", DataType.DOUBLE)
        ip = c.prepare_index_params()
        ip.add_index("a", "FLAT", metric_type="L2")
        ip.add_index("b", "FLAT", metric_type="IP")
        c.create_collection("hyb", schema=s, index_params=ip)
        c.insert("hyb", rows)
        reqs = [AnnSearchRequest(q, "a", {}, 10), AnnSearchRequest(q, "b", {}, 10, expr="doc < 4")]
        fused = c.hybrid_search("hyb", reqs, RRFRanker(60), limit=6, consistency_level="Strong")[0]
        grouped = c.search("hyb", q, anns_field="a", limit=3, group_by_field="doc", group_size=2,
                           output_fields=["doc"])[0]  # fmt: skip
        decay = Function("d", FunctionType.RERANK, ["price"],
                         params={"reranker": "decay", "function": "gauss", "origin": 10, "scale": 8})  # fmt: skip
        # With limit = every row both rerank the same candidates (see the module doc).
        decayed = c.search("hyb", q, anns_field="b", limit=80, ranker=decay)[0]
        answers.append([[(h["id"], round(h["distance"], 4)) for h in r] for r in (fused, grouped, decayed)])
        c.drop_collection("hyb")
    keel, lite = answers
    assert keel[0] == lite[0]  # RRF
    assert [i for i, _ in keel[1]] == [i for i, _ in lite[1]]  # grouping
    assert keel[2] == lite[2]  # decay


def test_bm25_side_by_side(clients: tuple[MilvusClient, MilvusClient]) -> None:
    """The same full-text script on both: one segment, then a second one."""
    from pymilvus import Function, FunctionType

    from keeldb.text import build_analyzer
    from tests.test_bm25 import corpus, reference

    standard = build_analyzer(None)
    docs = dict(enumerate(corpus(40, seed=11)))
    seen: list[list[dict[int, float]]] = []
    for c in clients:
        s = c.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function(name="bm", function_type=FunctionType.BM25, input_field_names=["text"],
                                output_field_names=["sparse"]))  # fmt: skip
        ip = c.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"inverted_index_algo": "TAAT_NAIVE", "bm25_k1": 1.2, "bm25_b": 0.75})  # fmt: skip
        c.create_collection("bm25", schema=s, index_params=ip)
        steps = []
        c.insert("bm25", [{"id": k, "text": t} for k, t in docs.items() if k < 20])
        c.flush("bm25")
        hits = c.search("bm25", ["apple banana"], anns_field="sparse", limit=40, search_params={"metric_type": "BM25"})[0]
        steps.append({h["id"]: h["distance"] for h in hits})
        c.insert("bm25", [{"id": k, "text": t} for k, t in docs.items() if k >= 20])
        c.flush("bm25")
        hits = c.search("bm25", ["apple banana"], anns_field="sparse", limit=40, search_params={"metric_type": "BM25"})[0]
        steps.append({h["id"]: h["distance"] for h in hits})
        seen.append(steps)
    (keel1, keel2), (lite1, lite2) = seen
    want1 = reference({k: t for k, t in docs.items() if k < 20}, "apple banana", analyzer=standard)
    want2 = reference(docs, "apple banana", analyzer=standard)
    for got, want in ((keel1, want1), (keel2, want2)):
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(want[k], rel=2e-6) for k in want)
    first = [k for k in want1 if k in lite1 and k in lite2]
    assert first and keel1.keys() == lite1.keys()  # the same rows match
    # Milvus Lite: negated scores, and a first-segment row's score frozen at its segment's statistics
    assert all(v < 0 for v in lite1.values())
    assert all(lite2[k] == lite1[k] for k in first)
    assert all(keel2[k] != pytest.approx(keel1[k], rel=1e-4) for k in first)  # the collection's moved
    keel, lite = clients
    assert lite.query("bm25", "id == 1", output_fields=["sparse"])[0]["sparse"]
    with pytest.raises(MilvusException, match="not allowed to retrieve raw data of field sparse"):
        keel.query("bm25", "id == 1", output_fields=["sparse"])


def test_text_match_side_by_side(clients: tuple[MilvusClient, MilvusClient]) -> None:
    """``text_match`` with the standard analyzer: the same rows on both, on a growing and a
    sealed segment. What Milvus Lite 3.2.2 lacks or does otherwise is asserted too."""
    from tests.test_bm25 import corpus

    docs: dict[int, str | None] = dict(enumerate(corpus(60, seed=3)))
    docs[60] = None
    queries = ["apple", "Banana cherry", "kiwi, lemon! mango", "fig-grape", "zzz", ""]
    answers = []
    for c in clients:
        s = c.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True, enable_match=True, nullable=True)
        s.add_field("plain", DataType.VARCHAR, max_length=2000)
        ip = c.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_collection("tm", schema=s, index_params=ip)
        rows = [{"id": k, "v": [float(k), 0.0], "text": t, "plain": t or ""} for k, t in docs.items()]
        c.insert("tm", rows[:30])
        got = [_ids(c, "tm", f"text_match(text, '{q}')") for q in queries]
        c.flush("tm")
        c.insert("tm", rows[30:])
        got += [_ids(c, "tm", f"TEXT_MATCH(text, '{q}') and id >= 10") for q in queries]
        answers.append(got)
    keel_answer, lite_answer = answers
    assert keel_answer == lite_answer and any(keel_answer)
    keel, lite = clients
    # Milvus (and keeldb) exclude null rows from the negation too; Milvus Lite counts them in.
    assert 60 not in _ids(keel, "tm", "not text_match(text, 'apple')")
    assert 60 in _ids(lite, "tm", "not text_match(text, 'apple')")
    # Milvus refuses a field without enable_match; Milvus Lite matches it anyway.
    with pytest.raises(MilvusException, match='field "plain" does not enable match'):
        keel.query("tm", "text_match(plain, 'apple')")
    assert _ids(lite, "tm", "text_match(plain, 'apple')") == _ids(keel, "tm", "text_match(text, 'apple')")
    # Milvus Lite has neither phrase_match nor text_match's minimum_should_match.
    assert _ids(keel, "tm", "phrase_match(text, 'apple banana', 3)")
    with pytest.raises(MilvusException, match="unknown function 'phrase_match'"):
        lite.query("tm", "phrase_match(text, 'apple banana', 3)")
    assert _ids(keel, "tm", "text_match(text, 'apple banana', minimum_should_match=2)")
    with pytest.raises(MilvusException):
        lite.query("tm", "text_match(text, 'apple banana', minimum_should_match=2)")


def test_index_properties_side_by_side(clients: tuple[MilvusClient, MilvusClient]) -> None:
    keel, lite = clients
    for c in clients:
        s = c.create_schema(enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        ip = c.prepare_index_params()
        ip.add_index("v", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32, "mmap.enabled": True})
        c.create_collection("ip", schema=s, index_params=ip)
        c.insert("ip", [{"id": i, "v": [float(i), 1.0]} for i in range(20)])
        c.release_collection("ip")
    common = ("index_type", "metric_type", "field_name", "index_name", "state")
    described = [c.describe_index("ip", "v") for c in clients]
    assert [{k: d[k] for k in common} for d in described] == [
        {"index_type": "HNSW", "metric_type": "L2", "field_name": "v", "index_name": "v", "state": "Finished"}
    ] * 2
    assert described[0]["mmap.enabled"] == "True" and described[0]["M"] == "8"
    assert "mmap.enabled" not in described[1] and "M" not in described[1]
    keel.drop_index_properties("ip", "v", ["mmap.enabled"])
    keel.alter_index_properties("ip", "v", {"mmap.enabled": False})
    assert keel.describe_index("ip", "v")["mmap.enabled"] == "False"
    with pytest.raises(grpc.RpcError) as e:  # pymilvus passes a bare UNIMPLEMENTED through
        lite.alter_index_properties("ip", "v", {"mmap.enabled": False})
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    for c in clients:
        c.drop_index("ip", "v")
    ip = keel.prepare_index_params()
    ip.add_index("v", "DISKANN", metric_type="L2")
    lite.create_index("ip", ip)
    assert lite.describe_index("ip", "v")["index_type"] == "DISKANN"
    with pytest.raises(MilvusException, match="unknown vector index type 'DISKANN' for FLOAT_VECTOR: Milvus builds it, keeldb does not"):
        keel.create_index("ip", ip)

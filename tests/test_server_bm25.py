"""The BM25 function over the wire, with unmodified pymilvus (``MilvusClient``): a schema
with a BM25 ``Function``, describe_collection's ``functions`` and ``is_function_output``,
inserts that leave the output field to the server, text searches (VarChar placeholders)
scored like the embedded client's, and the refusals Milvus answers with."""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import DataType, Function, FunctionType, MilvusClient
from pymilvus.exceptions import MilvusException

from tests.test_bm25 import QUERIES, assert_close, corpus, reference


def _schema(mc: MilvusClient) -> Any:
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True, analyzer_params={"type": "english"})
    s.add_field("tag", DataType.INT64)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))  # fmt: skip
    return s


def _create(mc: MilvusClient, name: str) -> None:
    ip = mc.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": 1.2, "bm25_b": 0.75})  # fmt: skip
    mc.create_collection(name, schema=_schema(mc), index_params=ip)


def _scores(mc: MilvusClient, name: str, q: str, **kw: Any) -> dict[int, float]:
    hits = mc.search(name, [q], anns_field="sparse", limit=100, search_params={"metric_type": "BM25"}, **kw)[0]
    return {h["id"]: h["distance"] for h in hits}


def test_bm25_over_the_wire(mc: MilvusClient) -> None:
    _create(mc, "bm")
    d = mc.describe_collection("bm")
    (fn,) = d["functions"]
    assert fn["name"] == "bm25" and fn["type"] == FunctionType.BM25
    assert fn["input_field_names"] == ["text"] and fn["output_field_names"] == ["sparse"]
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["sparse"].get("is_function_output") is True
    assert fn["output_field_ids"] == [fields["sparse"]["field_id"]]
    docs = dict(enumerate(corpus(40, seed=11)))
    items = [{"id": k, "text": t, "tag": k % 2} for k, t in docs.items()]
    assert mc.insert("bm", items[:20])["insert_count"] == 20  # pymilvus sends no sparse column
    mc.flush("bm")
    mc.insert("bm", items[20:])
    before = {q: _scores(mc, "bm", q) for q in QUERIES}
    for q in QUERIES:
        assert_close(before[q], reference(docs, q))
    mc.flush("bm")
    mc.compact("bm")
    assert {q: _scores(mc, "bm", q) for q in QUERIES} == before  # exact across flush + compaction
    # filters, output fields, pages
    hits = mc.search("bm", ["apple banana"], anns_field="sparse", limit=3, filter="tag == 0",
                     output_fields=["text", "tag"], search_params={"metric_type": "BM25", "params": {"drop_ratio_search": 0.0}})[0]  # fmt: skip
    ranked = sorted((k for k in reference(docs, "apple banana") if k % 2 == 0), key=lambda k: -reference(docs, "apple banana")[k])
    assert [h["id"] for h in hits] == ranked[:3]
    assert all(h["entity"] == {"text": docs[h["id"]], "tag": 0} for h in hits)
    assert mc.query("bm", "id == 3", output_fields=["*"]) == [{"id": 3, "text": docs[3], "tag": 1}]
    # deletes and upserts move the statistics, exactly
    mc.delete("bm", ids=[0, 1, 2])
    mc.upsert("bm", [{"id": 5, "text": "kiwi kiwi mango", "tag": 1}])
    for k in (0, 1, 2):
        del docs[k]
    docs[5] = "kiwi kiwi mango"
    for q in QUERIES:
        assert_close(_scores(mc, "bm", q), reference(docs, q))


def test_bm25_refusals_over_the_wire(mc: MilvusClient) -> None:
    _create(mc, "bm_r")
    mc.insert("bm_r", [{"id": 1, "text": "apple pie", "tag": 0}])
    with pytest.raises(MilvusException, match="not allowed to retrieve raw data of field sparse"):
        mc.query("bm_r", "id == 1", output_fields=["sparse"])
    with pytest.raises(MilvusException, match="function output field"):
        mc.insert("bm_r", [{"id": 2, "text": "x", "tag": 0, "sparse": {1: 1.0}}])  # pymilvus refuses it itself
    with pytest.raises(MilvusException, match="must use BM25 metric type"):
        mc.search("bm_r", ["apple"], anns_field="sparse", search_params={"metric_type": "IP"})
    with pytest.raises(MilvusException, match="searched with text"):
        mc.search("bm_r", [{1: 1.0}], anns_field="sparse", search_params={"metric_type": "BM25"})
    assert mc.query("bm_r", "", output_fields=["count(*)"])[0]["count(*)"] == 1
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100)  # no enable_analyzer
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))  # fmt: skip
    with pytest.raises(MilvusException, match="BM25 function input field must set enable_analyzer to true"):
        mc.create_collection("bad", schema=s)
    assert not mc.has_collection("bad")


def test_bm25_range_search_and_iterator(mc: MilvusClient) -> None:
    _create(mc, "bm_it")
    docs = dict(enumerate(corpus(60, seed=4)))
    mc.insert("bm_it", [{"id": k, "text": t, "tag": 0} for k, t in docs.items()])
    want = reference(docs, "apple cherry")
    ranked = sorted(want, key=lambda k: (-want[k], k))
    cut = want[ranked[len(ranked) // 2]]
    hits = mc.search("bm_it", ["apple cherry"], anns_field="sparse", limit=100,
                     search_params={"metric_type": "BM25", "params": {"radius": cut}})[0]  # fmt: skip
    got = {h["id"] for h in hits}
    assert {k for k, v in want.items() if v > cut * (1 + 1e-6)} <= got  # radius: scores above it
    assert all(want[k] > cut * (1 - 1e-6) for k in got) and ranked[-1] not in got
    it = mc.search_iterator("bm_it", ["apple cherry"], anns_field="sparse", batch_size=7, limit=-1,
                            search_params={"metric_type": "BM25"})  # fmt: skip
    seen: list[int] = []
    while page := it.next():
        seen.extend(h["id"] for h in page)
    it.close()
    assert sorted(seen) == sorted(want) and len(seen) == len(set(seen))


def test_hybrid_search_over_a_bm25_field_and_a_sparse_one(mc: MilvusClient) -> None:
    """A hybrid request over the BM25 output takes text, like a plain search; RRF fuses it
    with another request exactly as fusing the two single searches by hand."""
    from pymilvus import AnnSearchRequest, RRFRanker

    s = _schema(mc)
    s.add_field("tags", DataType.SPARSE_FLOAT_VECTOR)
    ip = mc.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    ip.add_index("tags", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    mc.create_collection("hy", schema=s, index_params=ip)
    docs = dict(enumerate(corpus(30, seed=5)))
    mc.insert("hy", [{"id": k, "text": t, "tag": k % 3, "tags": {k % 7: 1.0 + k / 10}} for k, t in docs.items()])
    q_text, q_tags = "apple banana", {3: 1.0}
    text_hits = mc.search("hy", [q_text], anns_field="sparse", limit=10, search_params={"metric_type": "BM25"})[0]
    tag_hits = mc.search("hy", [q_tags], anns_field="tags", limit=10, search_params={"metric_type": "IP"})[0]
    fused: dict[int, float] = {}
    for hits in (text_hits, tag_hits):
        for rank, h in enumerate(hits, start=1):
            fused[h["id"]] = fused.get(h["id"], 0.0) + 1 / (60 + rank)
    reqs = [AnnSearchRequest([q_text], "sparse", {"metric_type": "BM25"}, 10),
            AnnSearchRequest([q_tags], "tags", {"metric_type": "IP"}, 10)]  # fmt: skip
    got = mc.hybrid_search("hy", reqs, RRFRanker(60), limit=5)[0]
    want = sorted(fused, key=lambda k: (-fused[k], k))[:5]
    assert [h["id"] for h in got] == want
    assert_close({h["id"]: h["distance"] for h in got}, {k: fused[k] for k in want})

"""Hybrid search, rankers, grouping and search by primary key over the wire: real pymilvus
``MilvusClient`` against ``keeldb serve``, each answer compared against the single searches over the wire fused, reranked or grouped by hand (the embedded
client's answers are checked the same way in tests/test_hybrid_search.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pymilvus import (
    AnnSearchRequest,
    DataType,
    Function,
    FunctionType,
    LexicalHighlighter,
    MilvusClient,
    RRFRanker,
    WeightedRanker,
)
from pymilvus.exceptions import MilvusException

DIM = 4
N = 120
Q = np.random.default_rng(5).normal(size=(2, DIM)).tolist()


@pytest.fixture(scope="module")
def coll(mc: MilvusClient) -> Iterator[str]:
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("doc", DataType.INT64)
    s.add_field("price", DataType.DOUBLE)
    ip = mc.prepare_index_params()
    ip.add_index("a", "FLAT", metric_type="L2")
    ip.add_index("b", "FLAT", metric_type="IP")
    ip.add_index("sp", "SPARSE_INVERTED_INDEX", metric_type="IP")
    mc.create_collection("hy", schema=s, index_params=ip)
    rng = np.random.default_rng(3)
    rows = [
        {"id": i, "a": rng.normal(size=DIM).tolist(), "b": rng.normal(size=DIM).tolist(),
         "sp": {int(d): float(rng.random()) + 0.01 for d in rng.choice(12, 3, replace=False)},
         "doc": int(rng.integers(0, 9)), "price": float(i % 40)}
        for i in range(N)
    ]  # fmt: skip
    mc.insert("hy", rows[:60])
    mc.flush("hy")
    mc.insert("hy", rows[60:])
    yield "hy"
    mc.drop_collection("hy")


def _ids(res: Any) -> list[list[int]]:
    return [[h["id"] for h in q] for q in res]


def test_rrf_and_weighted_over_the_wire_match_hand_fusion(mc: MilvusClient, coll: str) -> None:
    a = mc.search(coll, Q, anns_field="a", limit=10, consistency_level="Strong")
    b = mc.search(coll, Q, anns_field="b", limit=10, filter="doc < 6")
    reqs = [AnnSearchRequest(Q, "a", {"metric_type": "L2"}, 10), AnnSearchRequest(Q, "b", {}, 10, expr="doc < 6")]
    got = mc.hybrid_search(coll, reqs, RRFRanker(20), limit=6, output_fields=["doc"], consistency_level="Strong")
    for qi in range(2):
        scores: dict[int, float] = {}
        for route in (a[qi], b[qi]):
            for rank, h in enumerate(route, start=1):
                scores[h["id"]] = scores.get(h["id"], 0.0) + 1 / (20 + rank)
        want = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        assert [h["id"] for h in got[qi]] == [k for k, _ in want]
        assert [h["distance"] for h in got[qi]] == pytest.approx([s for _, s in want], rel=1e-6)
        assert all(h["entity"]["doc"] is not None for h in got[qi])
    got = mc.hybrid_search(coll, reqs, WeightedRanker(0.4, 0.6), limit=5, offset=1)
    for qi in range(2):
        scores = {}
        for h in a[qi]:
            scores[h["id"]] = scores.get(h["id"], 0.0) + 0.4 * (1 - 2 * math.atan(h["distance"]) / math.pi)
        for h in b[qi]:
            scores[h["id"]] = scores.get(h["id"], 0.0) + 0.6 * (0.5 + math.atan(h["distance"]) / math.pi)
        want = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[1:6]
        assert [h["id"] for h in got[qi]] == [k for k, _ in want]
        assert [h["distance"] for h in got[qi]] == pytest.approx([s for _, s in want], rel=1e-5)


def test_sparse_and_function_rankers_over_the_wire(mc: MilvusClient, coll: str) -> None:
    reqs = [AnnSearchRequest([{1: 0.5, 3: 1.0}], "sp", {}, 8), AnnSearchRequest(Q[:1], "a", {}, 8)]
    rrf_fn = Function("r", FunctionType.RERANK, [], params={"reranker": "rrf", "k": 30})
    assert _ids(mc.hybrid_search(coll, reqs, rrf_fn, limit=5)) == _ids(mc.hybrid_search(coll, reqs, RRFRanker(30), limit=5))
    decay = Function("d", FunctionType.RERANK, ["price"],
                     params={"reranker": "decay", "function": "exp", "origin": 10, "scale": 5, "decay": 0.5})  # fmt: skip
    got = mc.search(coll, Q, anns_field="b", limit=4, ranker=decay, output_fields=["price"])
    plain = mc.search(coll, Q, anns_field="b", limit=4, output_fields=["price"])
    for qi in range(2):
        scores = {h["id"]: h["distance"] * math.exp(math.log(0.5) * abs(h["entity"]["price"] - 10) / 5) for h in plain[qi]}
        want = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        assert [h["id"] for h in got[qi]] == [k for k, _ in want]
        assert [h["distance"] for h in got[qi]] == pytest.approx([s for _, s in want], rel=1e-5)


def test_grouping_and_search_by_pk_over_the_wire(mc: MilvusClient, coll: str) -> None:
    got = mc.search(coll, Q[:1], anns_field="a", limit=3, group_by_field="doc", group_size=2,
                    strict_group_size=True, output_fields=["doc"])[0]  # fmt: skip
    every = mc.search(coll, Q[:1], anns_field="a", limit=N, output_fields=["doc"])[0]
    groups: dict[int, list[int]] = {}
    for h in every:
        members = groups.setdefault(h["entity"]["doc"], [])
        if len(members) < 2:
            members.append(h["id"])
    assert [h["id"] for h in got] == [k for ks in list(groups.values())[:3] for k in ks]
    # hybrid search with grouping
    reqs = [AnnSearchRequest(Q[:1], "a", {}, 20), AnnSearchRequest(Q[:1], "b", {}, 20)]
    fused = mc.hybrid_search(coll, reqs, RRFRanker(), limit=2, group_by_field="doc", group_size=2,
                             output_fields=["doc"])[0]  # fmt: skip
    assert len({h["entity"]["doc"] for h in fused}) == 2 and len(fused) <= 4
    # search by primary key: the stored vectors of those keys
    stored = mc.get(coll, ids=[5, 70], output_fields=["a"])
    assert _ids(mc.search(coll, ids=[5, 70], anns_field="a", limit=3)) == _ids(
        mc.search(coll, [r["a"] for r in stored], anns_field="a", limit=3)
    )


def _expect(fn: Any, code: int, words: str) -> None:
    with pytest.raises(MilvusException) as info:
        fn()
    assert info.value.code == code, info.value
    assert words.lower() in info.value.message.lower(), info.value.message


def test_refusals_over_the_wire_change_nothing(mc: MilvusClient, coll: str) -> None:
    before = mc.query(coll, "", output_fields=["count(*)"])
    two = [AnnSearchRequest(Q, "a", {}, 5), AnnSearchRequest(Q, "b", {}, 5)]
    _expect(lambda: mc.hybrid_search(coll, two, WeightedRanker(0.5), limit=3), 1100, "weights")
    _expect(lambda: mc.hybrid_search(coll, [AnnSearchRequest(Q, "doc", {}, 5)], RRFRanker(), limit=3),
            1100, "not a vector field")  # fmt: skip
    nope = Function("x", FunctionType.RERANK, [], params={"reranker": "nope"})
    _expect(lambda: mc.hybrid_search(coll, two, nope, limit=3), 65535, "Unsupported rerank function")
    model = Function("m", FunctionType.RERANK, ["doc"], params={"reranker": "model", "provider": "tei"})
    _expect(lambda: mc.search(coll, Q, anns_field="a", limit=3, ranker=model), 65535, "model rerankers")
    _expect(lambda: mc.search(coll, Q, anns_field="a", limit=3, group_by_field="price"), 1100, "group by")
    _expect(lambda: mc.search(coll, Q, anns_field="a", limit=3, group_by_field="b"), 1100, "group by")
    # A highlighter would be answered without highlights if accepted: refused instead.
    hl = LexicalHighlighter(pre_tags=["<b>"], post_tags=["</b>"])
    _expect(lambda: mc.search(coll, Q, anns_field="a", limit=3, highlighter=hl), 1100, "highlighters")
    assert mc.query(coll, "", output_fields=["count(*)"]) == before

"""Hybrid search, rankers, grouping and search by primary key through ``keeldb.Client``.

Every fused answer is checked against the single searches fused by hand (the formulas
written out here, independently of ``engine/rankers.py``), every grouped answer against a
brute-force group-by over all rows, and every refusal against "nothing changed".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import (
    AnnSearchRequest,
    Function,
    FunctionScore,
    FunctionType,
    RRFRanker,
    WeightedRanker,
)

import keeldb
from keeldb.datatype import DataType
from keeldb.errors import KeelError

N = 300
DIM = 6


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[keeldb.Client]:
    c = keeldb.Client(str(tmp_path_factory.mktemp("hybrid") / "db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)  # L2
    s.add_field("b", DataType.FLOAT_VECTOR, dim=DIM)  # IP
    s.add_field("c", DataType.FLOAT_VECTOR, dim=DIM)  # COSINE
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)  # IP
    s.add_field("doc", DataType.INT64)
    s.add_field("tag", DataType.VARCHAR, max_length=8)
    s.add_field("price", DataType.DOUBLE)
    s.add_field("meta", DataType.JSON)
    ip = c.prepare_index_params()
    ip.add_index("a", "FLAT", metric_type="L2")
    ip.add_index("b", "FLAT", metric_type="IP")
    ip.add_index("c", "FLAT", metric_type="COSINE")
    ip.add_index("sp", "SPARSE_INVERTED_INDEX", metric_type="IP")
    c.create_collection("h", schema=s, index_params=ip)
    rng = np.random.default_rng(7)
    rows = []
    for i in range(N):
        dims = rng.choice(20, size=3, replace=False)
        rows.append({
            "id": i, "a": rng.normal(size=DIM).tolist(), "b": rng.normal(size=DIM).tolist(),
            "c": rng.normal(size=DIM).tolist(), "sp": {int(d): float(rng.random()) + 0.01 for d in dims},
            "doc": int(rng.integers(0, 12)), "tag": f"t{i % 5}", "price": float(i % 50), "meta": {"k": i % 3},
        })  # fmt: skip
    c.insert("h", rows[:150])
    c.flush("h")  # two segments: a sealed one and the growing one
    c.insert("h", rows[150:])
    c.delete("h", ids=[0, 1, 2])  # deleted rows must never be fused
    yield c
    c.close()


Q = np.random.default_rng(99).normal(size=(2, DIM)).tolist()
QS = [{3: 0.5, 7: 1.0, 11: 0.25}, {1: 1.0, 2: 0.3}]


def _single(c: keeldb.Client, field: str, data: Any, limit: int, flt: str = "") -> list[list[tuple[int, float]]]:
    res = c.search("h", data, anns_field=field, limit=limit, filter=flt)
    return [[(h["id"], h["distance"]) for h in q] for q in res]


def _top(scores: dict[int, float], limit: int, descending: bool = True) -> list[tuple[int, float]]:
    sign = -1 if descending else 1
    return sorted(scores.items(), key=lambda kv: (sign * kv[1], kv[0]))[:limit]


def _same(got: list[dict[str, Any]], want: list[tuple[int, float]]) -> None:
    assert [h["id"] for h in got] == [k for k, _ in want]
    for h, (_, s) in zip(got, want, strict=True):
        assert h["distance"] == pytest.approx(s, rel=1e-6, abs=1e-9)


def test_rrf_fuses_like_the_single_searches_by_hand(client: keeldb.Client) -> None:
    singles = [_single(client, "a", Q, 20), _single(client, "b", Q, 15, "doc < 8"), _single(client, "sp", QS, 10)]
    reqs = [
        AnnSearchRequest(Q, "a", {}, 20),
        AnnSearchRequest(Q, "b", {"metric_type": "IP"}, 15, expr="doc < 8"),
        AnnSearchRequest(QS, "sp", {}, 10),
    ]
    got = client.hybrid_search("h", reqs, RRFRanker(40), limit=12, output_fields=["doc"])
    assert len(got) == 2
    for qi in range(2):
        scores: dict[int, float] = {}
        for route in singles:
            for rank, (key, _) in enumerate(route[qi], start=1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (40 + rank)
        _same(got[qi], _top(scores, 12))
        assert all({0, 1, 2}.isdisjoint({h["id"]}) for h in got[qi])
        assert all("doc" in h["entity"] for h in got[qi])


def _norm(metric: str, s: float) -> float:
    """Milvus's getNormalizeFunc, written out."""
    if metric == "COSINE":
        return (1 + s) / 2
    if metric == "IP":
        return 0.5 + math.atan(s) / math.pi
    return 1 - 2 * math.atan(s) / math.pi


def test_weighted_fuses_normalised_scores_by_hand(client: keeldb.Client) -> None:
    routes = [("a", "L2", 10), ("b", "IP", 10), ("c", "COSINE", 10)]
    singles = [_single(client, f, Q, k) for f, _, k in routes]
    weights = [0.2, 0.5, 0.3]
    reqs = [AnnSearchRequest(Q, f, {}, k) for f, _, k in routes]
    got = client.hybrid_search("h", reqs, WeightedRanker(*weights, norm_score=True), limit=8, offset=2)
    for qi in range(2):
        scores: dict[int, float] = {}
        for w, (_, metric, _), route in zip(weights, routes, singles, strict=True):
            for key, s in route[qi]:
                scores[key] = scores.get(key, 0.0) + w * _norm(metric, s)
        _same(got[qi], _top(scores, 10)[2:])


def test_weighted_without_normalisation_follows_milvus(client: keeldb.Client) -> None:
    # Two distances, no norm_score: the raw weighted sum, smaller first.
    singles = [_single(client, "a", Q[:1], 10), _single(client, "a", Q[1:], 10)]
    reqs = [AnnSearchRequest(Q[:1], "a", {}, 10), AnnSearchRequest(Q[1:], "a", {}, 10)]
    got = client.hybrid_search("h", reqs, WeightedRanker(0.6, 0.4, norm_score=False), limit=5)
    scores: dict[int, float] = {}
    for w, route in zip((0.6, 0.4), singles, strict=True):
        for key, s in route[0]:
            scores[key] = scores.get(key, 0.0) + w * s
    _same(got[0], _top(scores, 5, descending=False))
    # Mixed (L2 + IP), no norm_score: the distance turned around, larger first.
    singles = [_single(client, "a", Q, 10), _single(client, "b", Q, 10)]
    reqs = [AnnSearchRequest(Q, "a", {}, 10), AnnSearchRequest(Q, "b", {}, 10)]
    got = client.hybrid_search("h", reqs, WeightedRanker(0.5, 0.5, norm_score=False), limit=6)
    scores = {}
    for key, s in singles[0][1]:
        scores[key] = scores.get(key, 0.0) + 0.5 * (1 - 2 * math.atan(s) / math.pi)
    for key, s in singles[1][1]:
        scores[key] = scores.get(key, 0.0) + 0.5 * s
    _same(got[1], _top(scores, 6))


def test_function_rerankers_in_search_and_hybrid_search(client: keeldb.Client) -> None:
    rrf = Function("r", FunctionType.RERANK, [], params={"reranker": "rrf", "k": 10})
    reqs = [AnnSearchRequest(Q, "a", {}, 10), AnnSearchRequest(Q, "b", {}, 10)]
    assert client.hybrid_search("h", reqs, rrf, limit=7) == client.hybrid_search("h", reqs, RRFRanker(10), limit=7)
    weighted = Function("w", FunctionType.RERANK, [], params={"reranker": "weighted", "weights": [0.3, 0.7],
                                                               "norm_score": True})  # fmt: skip
    assert client.hybrid_search("h", reqs, FunctionScore(weighted), limit=7) == client.hybrid_search(
        "h", reqs, WeightedRanker(0.3, 0.7, norm_score=True), limit=7
    )
    # rrf in a plain search: 1 / (k + rank) over the first offset + limit hits.
    one = client.search("h", Q, anns_field="b", limit=5, offset=1, ranker=rrf)
    plain = _single(client, "b", Q, 6)
    for qi in range(2):
        assert [h["id"] for h in one[qi]] == [k for k, _ in plain[qi][1:6]]
        assert [h["distance"] for h in one[qi]] == pytest.approx([1 / (10 + r) for r in range(2, 7)])


@pytest.mark.parametrize("fn", ["gauss", "exp", "linear"])
def test_decay_reranker_by_hand(client: keeldb.Client, fn: str) -> None:
    params = {"reranker": "decay", "function": fn, "origin": 20, "scale": 10, "offset": 2, "decay": 0.4}
    decay = Function("d", FunctionType.RERANK, ["price"], params=params)
    got = client.search("h", Q, anns_field="a", limit=6, ranker=decay, output_fields=["price"])
    hits = client.search("h", Q, anns_field="a", limit=6, output_fields=["price"])

    def factor(v: float) -> float:
        d = max(0.0, abs(v - 20) - 2)
        if fn == "gauss":
            return math.exp(math.log(0.4) * d * d / 100)
        if fn == "exp":
            return math.exp(math.log(0.4) * d / 10)
        return max(0.0, 1 - 0.6 * d / 10)

    for qi in range(2):
        scores = {h["id"]: (1 - 2 * math.atan(h["distance"]) / math.pi) * factor(h["entity"]["price"]) for h in hits[qi]}
        _same(got[qi], _top(scores, 6))
    # In a hybrid search: the best similarity over the searches, times the factor.
    reqs = [AnnSearchRequest(Q, "b", {}, 10), AnnSearchRequest(Q, "c", {}, 10)]
    fused = client.hybrid_search("h", reqs, decay, limit=5)
    b, cc = (client.search("h", Q, anns_field=f, limit=10, output_fields=["price"]) for f in ("b", "c"))
    best: dict[int, float] = {}
    price: dict[int, float] = {}
    for h in b[0] + cc[0]:
        best[h["id"]] = max(best.get(h["id"], -math.inf), h["distance"])
        price[h["id"]] = h["entity"]["price"]
    _same(fused[0], _top({k: s * factor(price[k]) for k, s in best.items()}, 5))


def _brute_groups(client: keeldb.Client, field: str, group_by: str, limit: int, size: int, q: Any,
                  flt: str = "") -> list[tuple[int, Any]]:  # fmt: skip
    """Every qualifying row ranked, then grouped: the best `limit` groups, each its best `size`."""
    hits = client.search("h", [q], anns_field=field, limit=N, filter=flt, output_fields=[group_by])[0]
    groups: dict[Any, list[int]] = {}
    for h in hits:
        members = groups.setdefault(h["entity"][group_by], [])
        if len(members) < size:
            members.append(h["id"])
    return [(k, g) for g, ks in list(groups.items())[:limit] for k in ks]


@pytest.mark.parametrize(("field", "group_by", "limit", "size"), [("a", "doc", 4, 3), ("b", "tag", 3, 2),
                                                                   ("sp", "doc", 5, 1), ("c", "doc", 20, 2)])  # fmt: skip
def test_grouping_against_brute_force(client: keeldb.Client, field: str, group_by: str, limit: int, size: int) -> None:
    q = QS[0] if field == "sp" else Q[0]
    for strict in (False, True):
        got = client.search("h", [q], anns_field=field, limit=limit, group_by_field=group_by, group_size=size,
                            strict_group_size=strict, output_fields=[group_by])[0]  # fmt: skip
        want = _brute_groups(client, field, group_by, limit, size, q)
        assert [(h["id"], h["entity"][group_by]) for h in got] == want
    # A filter and an offset (in groups).
    got = client.search("h", [q], anns_field=field, limit=2, offset=1, group_by_field=group_by, group_size=size,
                        filter="price > 10", output_fields=[group_by])[0]  # fmt: skip
    full = _brute_groups(client, field, group_by, 3, size, q, "price > 10")
    first = _brute_groups(client, field, group_by, 1, size, q, "price > 10")
    assert [(h["id"], h["entity"][group_by]) for h in got] == full[len(first) :]


def test_hybrid_search_with_grouping(client: keeldb.Client) -> None:
    reqs = [AnnSearchRequest(Q[:1], "a", {}, 30), AnnSearchRequest(Q[:1], "b", {}, 30)]
    got = client.hybrid_search("h", reqs, RRFRanker(), limit=3, group_by_field="doc", group_size=2,
                               output_fields=["doc"])[0]  # fmt: skip
    docs = [h["entity"]["doc"] for h in got]
    assert len(set(docs)) == 3 and all(docs.count(d) <= 2 for d in docs)
    # groups are contiguous and ranked by their best fused score
    firsts = [got[i]["distance"] for i in range(len(got)) if i == 0 or docs[i] != docs[i - 1]]
    assert firsts == sorted(firsts, reverse=True)


def test_search_by_primary_key(client: keeldb.Client) -> None:
    stored = client.get("h", ids=[10, 200], output_fields=["a", "sp"])
    by_vec = client.search("h", [r["a"] for r in stored], anns_field="a", limit=5)
    assert client.search("h", ids=[10, 200], anns_field="a", limit=5) == by_vec
    assert client.search("h", ids=[10, 200], anns_field="a", limit=5)[0][0]["id"] == 10  # itself, at distance 0
    by_sparse = client.search("h", [r["sp"] for r in stored], anns_field="sp", limit=4)
    assert client.search("h", ids=[10, 200], anns_field="sp", limit=4) == by_sparse
    with pytest.raises(keeldb.InvalidArgument, match="no live entity"):
        client.search("h", ids=[1], anns_field="a", limit=3)  # deleted: no made-up query


def test_round_decimal(client: keeldb.Client) -> None:
    got = client.search("h", Q, anns_field="a", limit=3, round_decimal=2)
    assert all(h["distance"] == round(h["distance"], 2) for q in got for h in q)
    reqs = [AnnSearchRequest(Q, "a", {}, 5), AnnSearchRequest(Q, "b", {}, 5)]
    fused = client.hybrid_search("h", reqs, RRFRanker(), limit=3, round_decimal=3)
    assert all(h["distance"] == round(h["distance"], 3) for q in fused for h in q)


def test_one_snapshot_for_every_request(tmp_path: Path) -> None:
    """A row deleted after the snapshot is still seen by every request; a row deleted
    before it by none: the requests never disagree about which rows exist."""
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("s", dimension=2, metric_type="L2")
    c.insert("s", [{"id": i, "vector": [float(i), 1.0]} for i in range(20)])
    snap = c.snapshot("s")
    c.delete("s", ids=[0, 1])
    reqs = [AnnSearchRequest([[0.0, 1.0]], "vector", {}, 3), AnnSearchRequest([[0.5, 1.0]], "vector", {}, 3)]
    old = c.hybrid_search("s", reqs, RRFRanker(), limit=3, snapshot=snap)
    new = c.hybrid_search("s", reqs, RRFRanker(), limit=3)
    assert [h["id"] for h in old[0]] == [0, 1, 2]
    assert [h["id"] for h in new[0]] == [2, 3, 4]
    c.close()


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "a", {}, 5)] * 2, WeightedRanker(0.5), limit=3),
         1100, "weights"),
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "doc", {}, 5)], RRFRanker(), limit=3),
         1100, "not a vector field"),
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "a", {}, 5)],
                                   Function("x", FunctionType.RERANK, [], params={"reranker": "nope"}), limit=3),
         65535, "Unsupported rerank function"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, ranker=Function(
            "m", FunctionType.RERANK, ["tag"], params={"reranker": "model", "provider": "tei"})),
         65535, "model rerankers"),
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "a", {}, 5)], RRFRanker(0), limit=3), 65535, "k"),
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "a", {}, 5)], WeightedRanker(1.5), limit=3),
         65535, "range [0, 1]"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, ranker=Function(
            "d", FunctionType.RERANK, ["tag"], params={"reranker": "decay", "function": "gauss", "origin": 1,
                                                       "scale": 1})), 65535, "only support numberic field"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, ranker=Function(
            "d", FunctionType.RERANK, ["price"], params={"reranker": "decay", "function": "gauss", "origin": 1})),
         65535, "scale"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, group_by_field="a"), 1100, "group by"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, group_by_field="meta"), 1100, "group by"),
        (lambda c: c.search("h", Q, anns_field="a", limit=3, group_by_field="price"), 1100, "group by"),
        (lambda c: c.hybrid_search("h", [AnnSearchRequest(Q, "a", {}, 5), AnnSearchRequest(Q[:1], "b", {}, 5)],
                                   RRFRanker(), limit=3), 1100, "same nq"),
    ],
)  # fmt: skip
def test_bad_inputs_are_refused_and_change_nothing(client: keeldb.Client, call: Any, code: int, words: str) -> None:
    before = client.query("h", "", output_fields=["count(*)"])
    with pytest.raises(KeelError) as info:
        call(client)
    assert info.value.code == code, info.value
    assert words.lower() in str(info.value).lower()
    assert client.query("h", "", output_fields=["count(*)"]) == before

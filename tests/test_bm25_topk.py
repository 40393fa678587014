"""BM25's fast paths against the exhaustive ones (issue 15: BM25 search at 1M documents).

- MaxScore's pruned top-k (``bm25_scoring.top_candidates``) and the dense walk of the
  postings (``exhaustive``) against the plain reference (``score_view``: every (row, term)
  pair sorted and summed with ``np.bincount``) on random segments, queries, masks, k, k1
  and b (hypothesis): the same top-k rows in the same order with the same score bits,
  ties included.
- The per-segment statistics cache (``bm25_stats``) against a count from the visibility
  masks, through inserts, flushes, deletes, upserts, compaction and snapshots taken before
  them.
- End to end: a collection indexed with DAAT_MAXSCORE (pruned) and one with TAAT_NAIVE
  (exhaustive) over the same rows answer every search identically, with filters, offsets,
  deletes and range searches.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keeldb
from keeldb.engine import bm25_scoring
from keeldb.engine.bm25_scoring import Params, exhaustive, score_view, top_candidates, top_k
from keeldb.engine.bm25_stats import SegmentTerms, corpus_stats
from keeldb.fields.sparse_vector import SparseRows
from keeldb.index.sparse_index import build_postings
from keeldb.schema import DataType, Function, FunctionType


class _View:
    """What the scorers read of a segment view: its rows' vectors."""

    def __init__(self, data: SparseRows) -> None:
        self.data = data
        self.num_rows = len(data)

    def vectors(self, field: str) -> SparseRows:
        return self.data


def _segment(rng: np.random.Generator, n: int, vocab: int, max_len: int) -> SparseRows:
    """Rows of Zipf-drawn terms (some lists long, most short), counts 1..4."""
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    p /= p.sum()
    indptr, idx, val = [0], [], []
    for _ in range(n):
        terms = np.unique(rng.choice(vocab, size=int(rng.integers(0, max_len + 1)), p=p))
        idx.extend(terms.tolist())
        val.extend(rng.integers(1, 5, len(terms)).tolist())
        indptr.append(len(idx))
    return SparseRows(np.asarray(indptr, dtype=np.int64), np.asarray(idx, dtype=np.uint32), np.asarray(val, dtype=np.float32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    vocab=st.integers(1, 40),
    max_len=st.integers(1, 12),
    k=st.integers(1, 25),
    k1=st.sampled_from([0.0, 0.5, 1.2, 3.0]),
    b=st.sampled_from([0.0, 0.3, 0.75, 1.0]),
    masked=st.sampled_from([None, 0.05, 0.5, 0.95]),
    walk_cost=st.sampled_from([0.0, 3.0, 1e12]),  # always pruned, the default, always dense
    seed_rows=st.sampled_from([1, 4, 128]),
)
def test_pruned_top_k_is_the_exhaustive_one(seed: int, n: int, vocab: int, max_len: int, k: int, k1: float, b: float,
                                             masked: float | None, walk_cost: float, seed_rows: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    data = _segment(rng, n, vocab, max_len)
    view = _View(data)
    index = SimpleNamespace(p=build_postings(data), ntotal=n)
    terms = SegmentTerms(index, view, "f")  # type: ignore[arg-type]
    dims = np.unique(rng.integers(0, vocab + 2, int(rng.integers(1, 7)))).astype(np.uint32)  # some absent
    weights = rng.integers(1, 4, len(dims)) * rng.uniform(0.01, 8.0, len(dims))
    avgdl = float(data.row_sums().mean()) or 1.0
    mask = None if masked is None else rng.random(n) < masked
    prm = Params(k1, b)

    ref_rows, ref_scores = score_view(view, "f", dims, weights, avgdl, prm, mask)  # type: ignore[arg-type]
    want = top_k(ref_rows, ref_scores, k)
    all_rows, all_scores = exhaustive(terms, dims, weights, avgdl, prm, mask)
    assert np.array_equal(all_rows, ref_rows[ref_scores > 0]) and np.array_equal(all_scores, ref_scores[ref_scores > 0])
    old = (bm25_scoring.WALK_COST, bm25_scoring.SEED_ROWS)
    bm25_scoring.WALK_COST, bm25_scoring.SEED_ROWS = walk_cost, seed_rows
    try:
        got = top_k(*top_candidates(terms, dims, weights, avgdl, prm, mask, k), k)
    finally:
        bm25_scoring.WALK_COST, bm25_scoring.SEED_ROWS = old
    assert np.array_equal(got[0], want[0]), (got, want)
    assert np.array_equal(got[1], want[1])  # bit for bit


# -- statistics: the cache against the masks ---------------------------------------------------


WORDS = [f"w{i}" for i in range(40)]


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 10)), p=p)) for _ in range(n)]


def _create(c: keeldb.Client, name: str, algo: str = "DAAT_MAXSCORE") -> None:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=500, enable_analyzer=True)
    s.add_field("tag", DataType.INT64)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params={"inverted_index_algo": algo})
    c.create_collection(name, schema=s, index_params=ip)


@pytest.fixture(autouse=True)
def small_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index segments of 10 rows and more: sealed segments answer from their postings."""
    from keeldb.engine import index_builder

    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)


def _all_terms(c: keeldb.Client, name: str) -> np.ndarray:
    snap = c.snapshot(name)
    return np.unique(np.concatenate([v.vectors("sparse").indices for v in snap.views] + [np.array([7], dtype=np.uint32)]))


def _check_stats(c: keeldb.Client, name: str, snaps: list[Any]) -> None:
    terms = _all_terms(c, name)
    for snap in [*snaps, c.snapshot(name)]:
        for _ in range(2):  # computed, then from the cache
            got = corpus_stats(snap, "sparse", terms)
            want = corpus_stats(snap, "sparse", terms, cached=False)
            assert (got.n, got.total_len) == (want.n, want.total_len)
            assert np.array_equal(got.df, want.df)


def test_cached_statistics_equal_the_counted_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    c = keeldb.Client(str(tmp_path / "db"))
    _create(c, "t")
    snaps = []
    next_id = 0
    for step in range(12):
        texts = _texts(rng, 40)
        c.insert("t", [{"id": next_id + i, "text": t, "tag": i % 3} for i, t in enumerate(texts)])
        next_id += len(texts)
        if step % 3 == 2:
            c.flush("t")
            c.wait_for_index("t", "sparse")
        live = [r["id"] for r in c.query("t", "", output_fields=["id"])]
        c.delete("t", ids=rng.choice(live, size=5, replace=False).tolist())
        c.upsert("t", [{"id": int(i), "text": t, "tag": 9} for i, t in zip(rng.choice(live, 3), _texts(rng, 3), strict=True)])
        snaps.append(c.snapshot("t"))
        _check_stats(c, "t", snaps[-4:])
    assert sum(1 for v in c.snapshot("t").views if "sparse" in v.segment.indexes) >= 2
    c.compact("t")
    c.wait_for_index("t", "sparse")
    _check_stats(c, "t", snaps[-3:])
    c.close()


# -- end to end: pruned and exhaustive collections agree ----------------------------------------


def test_pruned_and_exhaustive_collections_answer_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    c = keeldb.Client(str(tmp_path / "db"))
    _create(c, "pruned", "DAAT_MAXSCORE")
    _create(c, "naive", "TAAT_NAIVE")
    rows = [{"id": i, "text": t, "tag": i % 4} for i, t in enumerate(_texts(rng, 600))]
    for name in ("pruned", "naive"):
        c.insert(name, rows[:300])
        c.flush(name)
        c.insert(name, rows[300:500])
        c.flush(name)
        c.insert(name, rows[500:])  # a growing segment too
        c.delete(name, ids=list(range(0, 600, 7)))
        c.upsert(name, [{"id": 3, "text": "w1 w1 w2", "tag": 0}])
        c.wait_for_index(name, "sparse")
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(25)] + ["w0 w1", "w39", "nothing"]

    def run(name: str, **kw: Any) -> list[list[tuple[Any, float]]]:
        res = c.search(name, queries, anns_field="sparse", **kw)
        return [[(h["id"], h["distance"]) for h in r] for r in res]

    for kw in ({"limit": 10}, {"limit": 3, "offset": 4}, {"limit": 50, "filter": "tag in [1, 2]"}, {"limit": 1},
               {"limit": 20, "search_params": {"params": {"radius": 2.0, "range_filter": 6.0}}}):  # fmt: skip
        assert run("pruned", **kw) == run("naive", **kw), kw
    c.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "dog", "dogs", "Ünï", "x" * 120, "x" * 121, ""]), max_size=12), max_size=30))
def test_vectorised_term_counts_equal_the_per_row_ones(terms: list[list[str]]) -> None:
    """The write side's batch derivation (``rows_from_terms``) against one Counter a row."""
    from collections import Counter

    from keeldb.engine.bm25_function import rows_from_counts, rows_from_terms
    from keeldb.text import token_hash

    got = rows_from_terms(terms)
    want = rows_from_counts([Counter(token_hash(t) for t in row) for row in terms])
    assert np.array_equal(got.indptr, want.indptr)
    assert np.array_equal(got.indices[: got.nnz], want.indices[: want.nnz]) and got.indices.dtype == np.uint32
    assert np.array_equal(got.data[: got.nnz], want.data[: want.nnz]) and got.data.dtype == np.float32

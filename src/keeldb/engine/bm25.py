"""The BM25 function (Milvus 2.6 full-text search) with collection-wide statistics.

Two halves, as in Milvus:

**Write side — the function** (``bm25_function.py``): the output field holds each row's
hashed term counts, derived from the text and logged like any column.

**Read side — the scorer** (this module). A search sends text; it is analyzed and hashed
the same way into query term counts ``qtf`` (``bm25_function.query_rows``). The score of a row is Milvus's (knowhere's BM25 metric fed
with the IDF-weighted query Milvus's delegator builds)::

    score = sum over query terms t the row contains of
            qtf(t) * IDF(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
    IDF(t) = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``tf`` the row's count of t, ``dl`` the row's total count (the sum of its vector),
and -- the point of this module -- the statistics taken over the whole collection **at the
read's snapshot**: N = rows visible at the snapshot, df(t) = visible rows containing t,
avgdl = mean dl of visible rows. They are computed at query time from the snapshot's
segment views (MVCC visibility masks, the sealed segments' inverted-index postings or the
rows' CSR arrays), so they are exact under insert, upsert, delete, flush, compaction and
crash by construction: there is no stored statistic that could drift. Milvus Lite computes
them per segment, so its scores change when a flush or compaction moves rows; Milvus's
statistics count rows until compaction drops them, deleted or not. Here a score is a pure
function of (visible rows, query, k1, b): the same before and after a flush, a compaction,
or a restart.

The statistics ignore the search's filter and partition selection (they describe the
collection, as Milvus's collection-level IDF does); the filter only decides which rows may
be returned. Both the indexed path (sealed segments: postings) and the exact path (growing
segments) sum a row's term contributions in ascending term order in float64, so a row
scores bit-for-bit the same whichever path finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from keeldb.engine.executor import Candidates, SearchRequest
from keeldb.engine.segment import SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.engine.sparse_search import SparseSearch
from keeldb.fields.sparse_vector import SparseRows
from keeldb.index.params import BM25_PARAMS, bm25_param, search_knobs

METRIC = "BM25"
DEFAULT_K1 = 1.2  # Milvus's (knowhere's) defaults
DEFAULT_B = 0.75


# -- statistics: collection-wide, at the snapshot -------------------------------------------


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs to know about the collection at one snapshot, for some terms."""

    n: int  # visible rows
    total_len: float  # sum of the visible rows' lengths (term counts)
    terms: np.ndarray  # uint32, ascending: the terms asked about
    df: np.ndarray  # int64, per term: visible rows containing it

    @property
    def avgdl(self) -> float:
        return self.total_len / self.n if self.n else 0.0

    def idf(self) -> np.ndarray:
        """Milvus's IDF per term: log(1 + (N - df + 0.5) / (df + 0.5))."""
        return np.log1p((self.n - self.df + 0.5) / (self.df + 0.5))


def row_lengths(view: SegmentView, field: str) -> np.ndarray:
    """Each row's length (sum of its term counts), float64: from the sealed segment's index
    file when it has one (``row_sums``, kept before any build-time drop), else from its rows.
    Counts are small integers, so both are exact and equal."""
    index = _sparse_index(view, field)
    if index is not None:
        return np.asarray(index.p.row_sums, dtype=np.float64)
    data: SparseRows = view.vectors(field)
    return data.row_sums()


def _visible(view: SegmentView, ts: int) -> np.ndarray | None:
    return None if view.all_visible(ts) else view.visible(ts)


def _sparse_index(view: SegmentView, field: str) -> Any:
    """The segment's committed sparse index over every row of the view, or None."""
    index = view.segment.indexes.get(field)
    if index is None or getattr(index, "ntotal", -1) != view.num_rows or not hasattr(index, "p"):
        return None
    return index


def _postings(view: SegmentView, field: str) -> Any:
    """The segment's postings when they hold every stored (term, row) pair: an index built
    with ``drop_ratio_build`` left some out, and document frequencies need them all."""
    index = _sparse_index(view, field)
    if index is None or index.spec.build.get("drop_ratio_build"):
        return None
    return index.p


def _df_in_view(view: SegmentView, field: str, terms: np.ndarray, vis: np.ndarray | None) -> np.ndarray:
    """Visible rows of ``view`` containing each of ``terms``."""
    out = np.zeros(len(terms), dtype=np.int64)
    p = _postings(view, field)
    if p is not None:
        lists, at = p.find(terms)
        for i, j in zip(lists.tolist(), at.tolist(), strict=True):
            rows = p.rows[int(p.indptr[i]) : int(p.indptr[i + 1])]
            out[j] = len(rows) if vis is None else int(np.count_nonzero(vis[rows]))
        return out
    data: SparseRows = view.vectors(field)
    _, at, rows = data.matches(terms)
    if vis is not None:
        at = at[vis[rows]]
    # a row holds a term at most once, so counting pairs counts rows
    return np.bincount(at, minlength=len(terms)).astype(np.int64)


def corpus_stats(snap: Snapshot, field: str, terms: np.ndarray) -> CorpusStats:
    """N, total length and df(terms) over every row visible at the snapshot."""
    n, total = 0, 0.0
    df = np.zeros(len(terms), dtype=np.int64)
    for view in snap.views:
        if view.num_rows == 0:
            continue
        vis = _visible(view, snap.ts)
        nvis = view.num_rows if vis is None else int(np.count_nonzero(vis))
        if nvis == 0:
            continue
        lengths = row_lengths(view, field)
        n += nvis
        total += float(lengths.sum() if vis is None else lengths[vis].sum())
        df += _df_in_view(view, field, terms, vis)
    return CorpusStats(n, total, terms, df)


# -- scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B


def bm25_params(params: dict[str, Any]) -> Params:
    """k1 and b of a search: its own params, which the client fills from the index's build
    params when the search names none (Milvus's defaults without either)."""
    k1 = bm25_param("bm25_k1", params["bm25_k1"]) if "bm25_k1" in params else DEFAULT_K1
    b = bm25_param("bm25_b", params["bm25_b"]) if "bm25_b" in params else DEFAULT_B
    return Params(k1, b)


def with_index_params(search: dict[str, Any], index_params: dict[str, Any]) -> dict[str, Any]:
    """A search's params with the index's k1 / b where the search gives none."""
    out = dict(search)
    for name in BM25_PARAMS:
        if name not in out and name in index_params:
            out[name] = index_params[name]
    return out


def saturation(tf: np.ndarray, dl: np.ndarray, avgdl: float, p: Params) -> np.ndarray:
    """BM25's term-frequency part, with length normalisation (float64)."""
    norm = p.k1 * (1.0 - p.b + p.b * dl / avgdl) if avgdl > 0 else np.full(len(dl), p.k1 * (1.0 - p.b))
    return tf * (p.k1 + 1.0) / (tf + norm)


def _score_pairs(rows: np.ndarray, wpos: np.ndarray, tf: np.ndarray, lengths: np.ndarray,
                 weights: np.ndarray, avgdl: float, p: Params) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(row, query-term position, tf) pairs, ordered by term within each row -> per-row
    scores summed in that order (np.bincount adds in input order)."""
    if not len(rows):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    contrib = weights[wpos] * saturation(tf.astype(np.float64), lengths[rows], avgdl, p)
    uniq, inv = np.unique(rows, return_inverse=True)
    return uniq, np.bincount(inv, weights=contrib, minlength=len(uniq))


def score_view(view: SegmentView, field: str, dims: np.ndarray, weights: np.ndarray, avgdl: float,
               p: Params, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every row of ``view`` selected by ``mask`` that contains a query term, with its
    score: through the segment's postings when it has them, else a scan of its rows."""
    lengths = row_lengths(view, field)
    post = _postings(view, field)
    if post is not None:
        parts_r, parts_w, parts_tf = [], [], []
        lists, at = post.find(dims)
        for i, j in zip(lists.tolist(), at.tolist(), strict=True):
            a, b = int(post.indptr[i]), int(post.indptr[i + 1])
            parts_r.append(post.rows[a:b].astype(np.int64))
            parts_tf.append(post.values[a:b])
            parts_w.append(np.full(b - a, j, dtype=np.int64))
        if not parts_r:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        rows, wpos, tf = np.concatenate(parts_r), np.concatenate(parts_w), np.concatenate(parts_tf)
        order = np.lexsort((wpos, rows))  # by row, then term: the exact path's order
        rows, wpos, tf = rows[order], wpos[order], tf[order]
    else:
        data: SparseRows = view.vectors(field)
        hit, wpos, rows = data.matches(dims)
        tf = data.data[hit]
    if mask is not None:
        keep = mask[rows]
        rows, wpos, tf = rows[keep], wpos[keep], tf[keep]
    return _score_pairs(rows, wpos, tf, lengths, weights, avgdl, p)


# -- the executor --------------------------------------------------------------------------


class BM25Search(SparseSearch):
    """A BM25 search over a snapshot: the statistics of every query term are gathered from
    the whole snapshot once, then each segment's selected rows are scored (``executor.py``'s
    ``SegmentSearch``)."""

    def __init__(self, req: SearchRequest, snap: Snapshot) -> None:
        self.req = req
        self.want = req.want
        self.knobs = search_knobs(req.params, self.want)
        self.params = bm25_params(req.params)
        self.q: SparseRows = req.queries
        self.nq = len(self.q)
        terms = np.unique(self.q.indices[: self.q.nnz]).astype(np.uint32)
        self.stats = corpus_stats(snap, req.field, terms)
        idf = self.stats.idf()
        # The IDF-weighted query (Milvus's delegator: qtf x IDF), pruned by drop_ratio_search.
        w = self.q.data[: self.q.nnz].astype(np.float64) * idf[np.searchsorted(terms, self.q.indices[: self.q.nnz])]
        weighted = SparseRows(self.q.indptr, self.q.indices, w.astype(np.float32))
        pruned = weighted.pruned(self.knobs.drop_ratio_search)
        self.queries: list[tuple[np.ndarray, np.ndarray]] = []
        for qi in range(self.nq):
            dims, _ = pruned.row(qi)
            a, b = int(self.q.indptr[qi]), int(self.q.indptr[qi + 1])
            keep = np.isin(self.q.indices[a:b], dims)
            self.queries.append((self.q.indices[a:b][keep], w[a:b][keep]))  # float64 weights

    def candidates(self, view: SegmentView, vi: int, mask: np.ndarray | None, nsel: int) -> Candidates:
        per_query = []
        for dims, weights in self.queries:
            if not len(dims) or self.stats.n == 0:
                per_query.append((np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)))
                continue
            rows, scores = score_view(view, self.req.field, dims, weights, self.stats.avgdl, self.params, mask)
            positive = scores > 0
            per_query.append((rows[positive], scores[positive]))
        return self._candidates(vi, per_query, ranged=True)


__all__ = [
    "METRIC",
    "BM25Search",
    "CorpusStats",
    "Params",
    "bm25_params",
    "corpus_stats",
    "score_view",
    "with_index_params",
]

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
segment views (``bm25_stats.py``: a sealed segment's postings and lengths, which never
change, minus the rows stamped deleted at the snapshot; the growing segment's rows through
its visibility mask), so they are exact under insert, upsert, delete, flush, compaction and
crash by construction: there is no stored statistic that could drift, only caches of what
a sealed segment's immutable rows say, keyed by the version of its delete mask. Milvus Lite computes
them per segment, so its scores change when a flush or compaction moves rows; Milvus's
statistics count rows until compaction drops them, deleted or not. Here a score is a pure
function of (visible rows, query, k1, b): the same before and after a flush, a compaction,
or a restart.

The statistics ignore the search's filter and partition selection (they describe the
collection, as Milvus's collection-level IDF does); the filter only decides which rows may
be returned. Scoring is ``bm25_scoring.py``'s: every path (a scan of the growing segment,
a dense walk of a sealed segment's postings, MaxScore's pruned top-k) sums a row's term
contributions in ascending term order in float64, so a row scores bit for bit the same
whichever path finds it, and the pruned top-k is the exhaustive one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keeldb.engine.bm25_scoring import (
    DEFAULT_B,
    DEFAULT_K1,
    Params,
    exhaustive,
    score_view,
    top_candidates,
    top_k,
)
from keeldb.engine.bm25_stats import CorpusStats, corpus_stats, segment_terms
from keeldb.engine.executor import Candidates, SearchRequest
from keeldb.engine.segment import SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.engine.sparse_search import SparseSearch
from keeldb.fields.sparse_vector import SparseRows
from keeldb.index.params import BM25_PARAMS, bm25_param, search_knobs

METRIC = "BM25"


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


# -- the executor --------------------------------------------------------------------------


class BM25Search(SparseSearch):
    """A BM25 search over a snapshot: the statistics of every query term are gathered from
    the whole snapshot once, then each segment's selected rows are scored (``executor.py``'s
    ``SegmentSearch``): a sealed segment's through its postings -- only the candidates of
    the top ``want`` (MaxScore) when every hit up to ``want`` is all that is asked, every
    row with a positive score for a range search or an iterator page -- the growing
    segment's by a scan of its rows."""

    def __init__(self, req: SearchRequest, snap: Snapshot) -> None:
        self.req = req
        self.want = req.want
        self.knobs = search_knobs(req.params, self.want)
        self.params = bm25_params(req.params)
        self.q: SparseRows = req.queries
        self.nq = len(self.q)
        self.ts = snap.ts
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
        # Every positive row is needed for range bounds and iterator cursors; a plain top-k
        # needs only its candidates.
        self.every_row = req.radius is not None or req.range_filter is not None or req.after is not None

    def candidates(self, view: SegmentView, vi: int, mask: np.ndarray | None, nsel: int) -> Candidates:
        req, avgdl, p = self.req, self.stats.avgdl, self.params
        st = segment_terms(view, req.field)
        naive = st is not None and st.index.spec.build.get("inverted_index_algo") == "TAAT_NAIVE"
        per_query = []
        for dims, weights in self.queries:
            if not len(dims) or self.stats.n == 0:
                rows, scores = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
            elif st is None:
                rows, scores = score_view(view, req.field, dims, weights, avgdl, p, mask)
            elif self.every_row or naive:
                rows, scores = exhaustive(st, dims, weights, avgdl, p, mask)
            else:
                rows, scores = top_candidates(st, dims, weights, avgdl, p, mask, self.want)
            positive = scores > 0
            rows, scores = rows[positive], scores[positive]
            if self.every_row:
                keep = self.in_bounds(scores)
                rows, scores = rows[keep], scores[keep]
            per_query.append(top_k(rows, scores, self.want))
        return self._candidates(vi, per_query, ranged=False)


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

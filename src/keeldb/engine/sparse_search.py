"""The executor for SPARSE_FLOAT_VECTOR fields: per segment, through its inverted index
(``index/sparse_index.py``) with the selection as a bitmap, or exactly.

Scores are inner products, larger is closer; a row sharing no dimension with the query is
not a hit (Milvus's inverted index never meets it), so a search may return fewer than k
hits even when more rows qualify. The growing segment, segments without a committed index,
very selective filters, iterator cursors and a lone ``range_filter`` are answered by an
exact scan of the selected rows (``SparseRows.scores``). ``drop_ratio_search`` prunes the
query the same way on both paths; at 0 both paths are exact.
"""

from __future__ import annotations

import numpy as np

from keeldb.engine.dense_search import EXACT_BELOW, in_range, usable_index
from keeldb.engine.executor import Candidates, SearchRequest
from keeldb.engine.segment import SegmentView
from keeldb.fields.sparse_vector import SparseRows
from keeldb.index.base import VectorIndex
from keeldb.index.params import search_knobs


class SparseSearch:
    """A request over a sparse vector field, prepared once: knobs checked, queries pruned."""

    def __init__(self, req: SearchRequest) -> None:
        self.req = req
        self.want = req.want
        self.knobs = search_knobs(req.params, self.want)
        self.q: SparseRows = req.queries
        self.pruned = self.q.pruned(self.knobs.drop_ratio_search)
        self.nq = len(self.q)

    def candidates(self, view: SegmentView, vi: int, mask: np.ndarray | None, nsel: int) -> Candidates:
        index = usable_index(view, self.req)
        if index is None or nsel < EXACT_BELOW * view.num_rows or nsel <= self.want:
            return self._exact(view, vi, mask)
        return self._indexed(view, vi, index, mask)

    def _exact(self, view: SegmentView, vi: int, mask: np.ndarray | None) -> Candidates:
        data: SparseRows = view.vectors(self.req.field)
        selected = None if mask is None else np.flatnonzero(mask)
        if selected is not None:
            data = data.take(selected)
        per_query = []
        for qi in range(self.nq):
            dims, weights = self.pruned.row(qi)
            rows, scores = data.scores(dims, weights.astype(np.float64))
            if selected is not None:
                rows = selected[rows]
            per_query.append((rows, scores))
        return self._candidates(vi, per_query, ranged=True)

    def _indexed(self, view: SegmentView, vi: int, index: VectorIndex, mask: np.ndarray | None) -> Candidates:
        allowed = None if mask is None else np.packbits(mask, bitorder="little")
        req = self.req
        if req.radius is not None:
            lims, s, r = index.range_search(self.q, req.radius, self.knobs, allowed)
            per_query = [(r[lims[i] : lims[i + 1]], s[lims[i] : lims[i + 1]].astype(np.float64)) for i in range(self.nq)]
            return self._candidates(vi, per_query, ranged=True)
        s, r = index.search(self.q, self.want, self.knobs, allowed)
        per_query = [(r[i][r[i] >= 0], s[i][r[i] >= 0].astype(np.float64)) for i in range(self.nq)]
        return self._candidates(vi, per_query, ranged=False)

    def in_bounds(self, scores: np.ndarray) -> np.ndarray:
        """Which ``scores`` the range bounds and the iterator cursor keep. Bounds are compared
        with the scores as reported (float32): a client sends back a reported score as the
        next range_filter or cursor, and a row tied at it must stay on the same side whatever
        its float64 digits (pymilvus's V1 iterator skipped BM25 rows tied at a page's last
        score)."""
        req = self.req
        reported = scores.astype(np.float32)
        keep = in_range(reported, req.radius, req.range_filter, True)
        if req.after is not None:
            keep &= reported < np.float32(req.after)
        return keep

    def _candidates(self, vi: int, per_query: list[tuple[np.ndarray, np.ndarray]], *, ranged: bool) -> Candidates:
        """Each query's best ``want`` (row, score): range bounds and the iterator cursor
        applied, ties broken by row."""
        want = self.want
        key = np.full((self.nq, want), np.inf)
        dist = np.full((self.nq, want), np.nan, dtype=np.float32)
        rows_out = np.zeros((self.nq, want), dtype=np.int64)
        for qi, (rows, scores) in enumerate(per_query):
            if ranged:
                keep = self.in_bounds(scores)
                rows, scores = rows[keep], scores[keep]
            order = np.lexsort((rows, -scores))[:want]
            m = len(order)
            key[qi, :m], dist[qi, :m], rows_out[qi, :m] = -scores[order], scores[order], rows[order]
        return Candidates(key, dist, np.full(key.shape, vi, dtype=np.int64), rows_out)

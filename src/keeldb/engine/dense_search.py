"""The executor for dense vector fields — FLOAT, FLOAT16, BFLOAT16, INT8 and (with its own
distances, ``binary_search.py``) BINARY: per segment, through its index or exactly.

The filter (and MVCC visibility) arrive as the selection mask, applied *before* ranking —
as a bitmap passed to the index, as a mask in an exact scan — so a filtered search returns
k hits whenever at least k rows qualify, and a deleted or overwritten version can never
rank. The growing segment, small segments, very selective filters and segments whose index
is not built (or not committed) yet are searched exactly. Distances follow Milvus: L2 is
the squared Euclidean distance (smaller is closer); IP and COSINE are similarities (larger
is closer). Segments are scanned in row blocks so that the (nq x block) score matrix stays
small whatever the segment size; the 2-byte and 1-byte types are widened to float32 a block
at a time (exactly: every float16, bfloat16 and int8 value is a float32), never a segment.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keeldb.engine.executor import Candidates, SearchRequest, larger_is_better
from keeldb.engine.segment import SegmentView
from keeldb.engine.visibility import packed
from keeldb.index.base import VectorIndex
from keeldb.index.params import SearchKnobs, search_knobs

BLOCK_ROWS = 1 << 17
SCORE_CELLS = 1 << 22  # per block of an exact scan: nq x rows float32 scores (16 MB)
# A segment where fewer than this fraction of rows pass the filter is searched exactly over
# just those rows: scanning them is cheaper than an index walk that keeps meeting rejects.
EXACT_BELOW = 0.02


Scorer = Callable[[np.ndarray, np.ndarray, str, "np.ndarray | None"], np.ndarray]


class DenseSearch:
    """A request over a dense vector field, prepared once: search knobs checked, queries
    contiguous float32 (normalised for COSINE). ``score`` is the exact distance of a block
    of rows (a subclass swaps it: binary vectors)."""

    def __init__(self, req: SearchRequest, knobs: SearchKnobs | None = None) -> None:
        """``knobs``: ``search_knobs(req.params, req.want)`` when the caller has them already
        (a repeated search keeps them: parsing them again was a tenth of its own cost)."""
        self.req = req
        self.want = req.want
        self.knobs = search_knobs(req.params, self.want) if knobs is None else knobs
        self.q = self.prepare(req)
        self.nq = self.q.shape[0]

    def prepare(self, req: SearchRequest) -> np.ndarray:
        return prepare_queries(req.queries, req.metric)

    @staticmethod
    def score(x: np.ndarray, q: np.ndarray, metric: str, x_sq: np.ndarray | None) -> np.ndarray:
        if x.dtype != np.float32:
            x = x.astype(np.float32)  # a block of FLOAT16 / BFLOAT16 / INT8 rows, exactly
        return _scores(x, q, metric, x_sq)

    def candidates(self, view: SegmentView, vi: int, mask: np.ndarray | None, nsel: int) -> Candidates:
        index = usable_index(view, self.req)
        if index is None or nsel < EXACT_BELOW * view.num_rows or nsel <= self.want:
            return _exact(view, vi, mask, self.q, self.req, self.want, self.score)
        return _indexed(view, vi, index, mask, nsel, self.q, self.req, self.knobs, self.want, self.score)


def prepare_queries(q: np.ndarray, metric: str) -> np.ndarray:
    """Queries as searched: contiguous float32, normalised for COSINE."""
    q = np.ascontiguousarray(q, dtype=np.float32)
    if metric == "COSINE":
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        return q / np.where(norms == 0, 1, norms)
    return q


def _scores(x: np.ndarray, q: np.ndarray, metric: str, x_sq: np.ndarray | None) -> np.ndarray:
    """Distances as Milvus reports them, shape (nq, len(x)). ``x_sq``: the rows' squared
    norms if already known (sealed segments cache them: recomputing them cost more than
    the matrix product itself)."""
    dots = q @ x.T
    if metric == "IP":
        return dots
    xn = np.einsum("ij,ij->i", x, x) if x_sq is None else x_sq
    if metric == "L2":
        qn = np.einsum("ij,ij->i", q, q)
        return np.maximum(qn[:, None] + xn[None, :] - 2 * dots, 0)
    norms = np.sqrt(xn)
    return dots / np.where(norms == 0, 1, norms)[None, :]


def usable_index(view: SegmentView, req: SearchRequest) -> VectorIndex | None:
    ann = view.segment.indexes.get(req.field)
    if ann is None or ann.spec.metric != req.metric or ann.ntotal != view.num_rows:
        return None
    if req.after is not None or (req.radius is None and req.range_filter is not None):
        return None  # iterator cursors and a lone range_filter: exact (see _exact)
    return ann


def _sort_key(d: np.ndarray, metric: str) -> np.ndarray:
    return -d if larger_is_better(metric) else d.copy()


def _indexed(
    view: SegmentView,
    vi: int,
    ann: VectorIndex,
    mask: np.ndarray | None,
    nsel: int,
    q: np.ndarray,
    req: SearchRequest,
    knobs: SearchKnobs,
    want: int,
    score: Scorer,
) -> Candidates:
    """Search one segment through its ANN index, the allowed rows passed as a FAISS bitmap.

    A query for which the index found fewer hits than ``min(want, nsel)`` (its probes or
    its graph walk met too few allowed rows) is answered exactly instead, so a search never
    returns fewer than k hits when k rows qualify."""
    allowed = None if mask is None else packed(view, mask)
    nq = q.shape[0]
    if req.radius is not None:
        lims, dr, ir = ann.range_search(q, req.radius, knobs, allowed)
        d = np.full((nq, want), np.nan, dtype=np.float32)
        rows = np.full((nq, want), -1, dtype=np.int64)
        for qi in range(nq):
            dq, iq = dr[lims[qi] : lims[qi + 1]], ir[lims[qi] : lims[qi + 1]]
            if req.range_filter is not None:
                keep = in_range(dq, None, req.range_filter, larger_is_better(req.metric))
                dq, iq = dq[keep], iq[keep]
            top = np.argsort(_sort_key(dq, req.metric), kind="stable")[:want]
            d[qi, : top.size], rows[qi, : top.size] = dq[top], iq[top]
        key = np.where(rows >= 0, _sort_key(d, req.metric), np.inf)
        return Candidates(key, d, np.full(rows.shape, vi, dtype=np.int64), np.maximum(rows, 0))
    d, rows = ann.search(q, want, knobs, allowed)
    if rows.min() >= 0:  # the common case (every slot found), without the fix-ups below
        # FAISS returns each query's top-k sorted (knn results are, for every index type),
        # so the candidates are ranked; the distances are not changed afterwards, so a
        # distance serves as its own sort key.
        key = -d if larger_is_better(req.metric) else d
        return Candidates(key, d, np.full(rows.shape, vi, dtype=np.int64), rows, ranked=True)
    found = rows >= 0
    key = np.where(found, _sort_key(d, req.metric), np.inf)
    short = np.flatnonzero(found.sum(axis=1) < min(want, nsel))
    if short.size:
        fix = _exact(view, vi, mask, q[short], req, want, score)
        m = fix.key.shape[1]
        key[short], d[short], rows[short] = np.inf, np.nan, 0
        key[short, :m], d[short, :m], rows[short, :m] = fix.key, fix.dist, fix.row
    return Candidates(key, d, np.full(rows.shape, vi, dtype=np.int64), np.maximum(rows, 0))


def _exact(
    view: SegmentView, vi: int, mask: np.ndarray | None, q: np.ndarray, req: SearchRequest, want: int, score: Scorer
) -> Candidates:
    """Exact top-``want`` over the selected rows of one segment, in row blocks so that the
    (nq x block) score matrix stays small whatever the segment size. A block where most
    rows are selected is scored whole with the others masked out (no copy of the vectors);
    a sparse selection gathers just its rows."""
    vecs = view.vectors(req.field)
    sq_all = view.segment.squared_norms(req.field)
    larger_better = larger_is_better(req.metric)
    ranged = req.radius is not None or req.range_filter is not None or req.after is not None
    nq = q.shape[0]
    # Rows per block so that each (nq x block) temporary stays ~16 MB: with a fixed block, a
    # batch of 100 queries over 1M rows peaked at several times the vectors' own size.
    step = max(4096, min(BLOCK_ROWS, SCORE_CELLS // nq))
    keys, dists, rows_out = [], [], []
    for b in range(0, view.num_rows, step):
        e = min(b + step, view.num_rows)
        m = None if mask is None else mask[b:e]
        if m is not None and not m.any():
            continue
        if m is None or np.count_nonzero(m) * 2 > m.size:
            r = np.arange(b, e)
            x = vecs[b:e]
            sq = None if sq_all is None else sq_all[b:e]
            drop = None if m is None else ~m
        else:
            r = b + np.flatnonzero(m)
            x = vecs[r]
            sq = None if sq_all is None else sq_all[r]
            drop = None
        d = score(x, q, req.metric, sq)
        key = _sort_key(d, req.metric)
        if drop is not None:
            key[:, drop] = np.inf
        if ranged:
            keep = in_range(d, req.radius, req.range_filter, larger_better)
            if req.after is not None:
                keep &= (d < req.after) if larger_better else (d > req.after)
            key[~keep] = np.inf
        k = min(want, r.size)
        if k < r.size:
            part = np.argpartition(key, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(r.size), (nq, r.size))
        keys.append(np.take_along_axis(key, part, axis=1))
        dists.append(np.take_along_axis(d, part, axis=1))
        rows_out.append(r[part])
    if not keys:
        empty = np.zeros((nq, 0))
        return Candidates(empty, empty, empty.astype(np.int64), empty.astype(np.int64))
    key = np.concatenate(keys, axis=1)
    dist = np.concatenate(dists, axis=1)
    rows = np.concatenate(rows_out, axis=1)
    if key.shape[1] > want:  # several blocks: keep each query's best ``want``
        part = np.argpartition(key, want - 1, axis=1)[:, :want]
        key, dist, rows = (np.take_along_axis(a, part, axis=1) for a in (key, dist, rows))
    return Candidates(key, dist, np.full(key.shape, vi, dtype=np.int64), rows)


def in_range(d: np.ndarray, radius: float | None, range_filter: float | None, larger_better: bool) -> np.ndarray:
    """Milvus range search: for L2, HAMMING and JACCARD keep range_filter <= d < radius; for
    IP/COSINE keep radius < d <= range_filter."""
    ok = np.ones(d.shape, dtype=bool)
    if larger_better:
        if radius is not None:
            ok &= d > radius
        if range_filter is not None:
            ok &= d <= range_filter
    else:
        if radius is not None:
            ok &= d < radius
        if range_filter is not None:
            ok &= d >= range_filter
    return ok

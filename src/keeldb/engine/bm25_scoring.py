"""BM25 scores of one segment's rows for one query: exhaustively, or only as many rows as
the top-k needs (MaxScore), with the same scores either way.

**One order of addition.** A row's score is the sum of its query terms' contributions
``w(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` (float64, ``w`` = query
term count x IDF), added in ascending term order starting from 0.0. Every path here -- a
scan of a growing segment's rows, a walk of the postings into a dense accumulator, the
completion of candidates by binary search -- adds in that order (a term the row lacks adds
0.0, which changes no bit), so a row scores bit for bit the same whichever path finds it,
whatever the segment layout.

**Exhaustive** (``exhaustive``): every posting of the query's terms, summed per row in a
dense float64 array over the segment (what range searches and iterator pages need: every
row with a positive score). ``score_view`` is the plain reference the tests hold the others
to: the (row, term) pairs sorted and summed with ``np.bincount``.

**Top-k** (``top_candidates``), exact: each term's upper bound is its weight times the
saturation of the list's largest tf at its shortest row (saturation rises with tf and falls
with dl, and IEEE arithmetic is monotone, so no row's contribution exceeds it).

1. theta0: the k-th best *full* score among a sample of the allowed rows of the lists with
   the largest bounds -- real rows, so the true k-th best score is at least theta0.
2. Essential lists: the fewest (largest bounds first) such that the others' bounds sum
   below theta0 (with a relative margin of 1e-9 for the order of the sum): a row in none of
   them scores below theta0 and cannot be in the top-k, nor tie with it.
3. Candidates: the allowed rows of the essential lists, scored in full by binary search in
   every list. When the essential lists hold most of the postings anyway, the dense walk
   is cheaper, and its rows below theta0 are dropped before the top-k is chosen.

The caller picks the top-k from the candidates (score descending, ties by row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keeldb.engine.bm25_stats import SegmentTerms, row_lengths
from keeldb.engine.segment import SegmentView
from keeldb.fields.sparse_vector import SparseRows, top_k

DEFAULT_K1 = 1.2  # Milvus's (knowhere's) defaults
DEFAULT_B = 0.75
# Rows sampled for a first threshold, and the relative slack of the bound test (the bounds
# and a row's score are summed in different orders).
SEED_ROWS = 128
BOUND_MARGIN = 1e-9
# Costs in units of one posting walked into the dense accumulator (measured with numpy on
# 1M rows): a posting of a list walked by the pruned path (its contribution, the checks
# against the lists already walked and the threshold, the lookups of the survivors), and a
# row of the segment scanned for the accumulator's hits. A list is walked by the pruned
# path when that costs less than the dense walk of every list.
WALK_COST = 3.0
SCAN_COST = 0.05

Scored = tuple[np.ndarray, np.ndarray]  # (rows int64, scores float64)


@dataclass(frozen=True)
class Params:
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B


def saturation(tf: np.ndarray, dl: np.ndarray, avgdl: float, p: Params) -> np.ndarray:
    """BM25's term-frequency part, with length normalisation (float64)."""
    norm = p.k1 * (1.0 - p.b + p.b * dl / avgdl) if avgdl > 0 else np.full(len(dl), p.k1 * (1.0 - p.b))
    return tf * (p.k1 + 1.0) / (tf + norm)


def contributions(weight: float | np.ndarray, tf: np.ndarray, dl: np.ndarray, avgdl: float, p: Params) -> np.ndarray:
    """One term's contribution to rows with counts ``tf`` and lengths ``dl`` -- the single
    expression every path computes, so equal inputs give equal bits."""
    return weight * saturation(tf.astype(np.float64), dl.astype(np.float64), avgdl, p)


def _empty() -> Scored:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)


# -- the reference: (row, term) pairs, sorted and summed ---------------------------------------


def score_view(view: SegmentView, field: str, dims: np.ndarray, weights: np.ndarray, avgdl: float,
               p: Params, mask: np.ndarray | None) -> Scored:  # fmt: skip
    """Every row of ``view`` selected by ``mask`` that contains a query term, with its
    score, from a scan of the rows' stored vectors (the growing segment's path, and the
    reference for the others)."""
    data: SparseRows = view.vectors(field)
    hit, wpos, rows = data.matches(dims)  # by row, then term
    tf = data.data[hit]
    if mask is not None:
        keep = mask[rows]
        rows, wpos, tf = rows[keep], wpos[keep], tf[keep]
    if not len(rows):
        return _empty()
    contrib = contributions(weights[wpos], tf, row_lengths(view, field)[rows], avgdl, p)
    uniq, inv = np.unique(rows, return_inverse=True)
    return uniq, np.bincount(inv, weights=contrib, minlength=len(uniq))


# -- sealed segments: postings ----------------------------------------------------------------


class _Query:
    """One query against one segment's postings: its lists (ascending term order), their
    weights and bounds."""

    def __init__(self, st: SegmentTerms, dims: np.ndarray, weights: np.ndarray, avgdl: float, p: Params) -> None:
        self.st, self.avgdl, self.params = st, avgdl, p
        lists, at = st.p.find(dims)  # ascending dims -> lists in ascending term order
        self.lists, self.w = lists, weights[at]
        self.starts = st.p.indptr[lists].astype(np.int64)
        self.ends = st.p.indptr[lists + 1].astype(np.int64)
        self.lens = self.ends - self.starts

    def postings(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """List ``j``'s rows (ascending) and term counts."""
        a, b = int(self.starts[j]), int(self.ends[j])
        return self.st.p.rows[a:b], self.st.p.values[a:b]

    def contrib(self, j: int, rows: np.ndarray, tf: np.ndarray) -> np.ndarray:
        return contributions(float(self.w[j]), tf, self.st.lengths[rows], self.avgdl, self.params)

    def bounds(self) -> np.ndarray:
        st = self.st
        max_tf = st.p.max_value[self.lists].astype(np.float64)
        return self.w * saturation(max_tf, st.min_lengths(self.lists).astype(np.float64), self.avgdl, self.params)

    def dense(self) -> np.ndarray:
        """Every row's score (0.0 for rows with no query term): the lists walked in term
        order into one float64 accumulator."""
        acc = np.zeros(self.st.num_rows, dtype=np.float64)
        for j in range(len(self.lists)):
            rows, tf = self.postings(j)
            acc[rows] += self.contrib(j, rows, tf)  # a list holds a row once
        return acc

    def lookup(self, j: int, rows: np.ndarray) -> np.ndarray:
        """List ``j``'s contribution to each of ``rows`` (ascending, distinct; 0.0 where
        the list lacks the row): the shorter of the two searched in the other."""
        post, tf = self.postings(j)
        out = np.zeros(len(rows), dtype=np.float64)
        rows = rows.astype(post.dtype, copy=False)  # else searchsorted widens the whole list
        if len(post) <= len(rows):
            at = np.searchsorted(rows, post)
            at[at == len(rows)] = 0
            hit = np.flatnonzero(rows[at] == post)
            out[at[hit]] = self.contrib(j, post[hit], tf[hit])
        else:
            at = np.searchsorted(post, rows)
            at[at == len(post)] = 0
            hit = np.flatnonzero(post[at] == rows)
            out[hit] = self.contrib(j, rows[hit], tf[at[hit]])
        return out

    def complete(self, rows: np.ndarray) -> np.ndarray:
        """The full scores of ``rows`` (ascending, distinct): each list searched for them,
        in term order."""
        acc = np.zeros(len(rows), dtype=np.float64)
        for j in range(len(self.lists)):
            acc += self.lookup(j, rows)
        return acc


def _allowed(rows: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return rows if mask is None else rows[mask[rows]]


def exhaustive(st: SegmentTerms, dims: np.ndarray, weights: np.ndarray, avgdl: float, p: Params,
               mask: np.ndarray | None) -> Scored:  # fmt: skip
    """Every allowed row with a positive score, rows ascending."""
    q = _Query(st, dims, weights, avgdl, p)
    if not len(q.lists):
        return _empty()
    acc = q.dense()
    keep = acc > 0
    if mask is not None:
        keep &= mask
    rows = np.flatnonzero(keep)
    return rows, acc[rows]


def top_candidates(st: SegmentTerms, dims: np.ndarray, weights: np.ndarray, avgdl: float, p: Params,
                   mask: np.ndarray | None, k: int) -> Scored:  # fmt: skip
    """A set of allowed rows with their full scores that holds every row of the exact top-k
    (and every row tied with its k-th score); the module doc's steps."""
    q = _Query(st, dims, weights, avgdl, p)
    nl = len(q.lists)
    if not nl:
        return _empty()
    bound = q.bounds()
    order = np.argsort(-bound, kind="stable")
    rest = np.concatenate([np.cumsum(bound[order][::-1])[::-1], [0.0]])  # rest[i]: lists order[i:] together
    dense_cost = float(q.lens.sum()) + SCAN_COST * st.num_rows
    theta = _seed_theta(q, order, mask, k)
    rows_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    best = np.empty(0, dtype=np.float64)  # the k best scores so far
    scored: np.ndarray | None = None  # rows of the lists walked so far (from the second on)
    for i, j in enumerate(order.tolist()):
        if rest[i] * (1.0 + BOUND_MARGIN) < theta:
            break  # a row in none of the lists walked so far scores below theta
        if q.lens[j] * WALK_COST >= dense_cost:
            return _dense_top(q, mask, theta)
        rows, tf = q.postings(j)
        keep = None if mask is None else mask[rows]
        if i > 0:
            if scored is None:
                scored = np.zeros(st.num_rows, dtype=bool)
                for jj in order[:i].tolist():
                    scored[q.postings(jj)[0]] = True
            fresh = ~scored[rows]
            scored[rows] = True
            keep = fresh if keep is None else keep & fresh
        if keep is not None:
            rows, tf = rows[keep], tf[keep]
        rows, scores = _walk(q, order, rest, i, rows.astype(np.int64), tf, theta)
        rows_parts.append(rows)
        score_parts.append(scores)
        best = np.concatenate([best, scores])
        if len(best) >= k:
            best = np.partition(best, len(best) - k)[len(best) - k :]
            theta = max(theta, float(best.min()))
    if not rows_parts:
        return _empty()
    return np.concatenate(rows_parts), np.concatenate(score_parts)


def _walk(q: _Query, order: np.ndarray, rest: np.ndarray, i: int, rows: np.ndarray, tf: np.ndarray,
          theta: float) -> Scored:  # fmt: skip
    """Rows of list ``order[i]`` that are in none of ``order[:i]``: their full scores, but
    only of those that can still reach ``theta`` -- each is looked up in the lists
    ``order[i + 1:]`` one at a time, dropped once its partial score plus the bounds of the
    lists not yet looked at falls below theta. The scores of the survivors are then summed
    in term order (the module doc)."""
    nl = len(q.lists)
    j = int(order[i])
    parts = np.zeros((nl, len(rows)), dtype=np.float64)  # per list, each row's contribution
    parts[j] = q.contrib(j, rows, tf)
    partial = parts[j].copy()  # in bound order: for pruning only
    alive = np.arange(len(rows))
    for i2 in range(i + 1, nl + 1):
        ok = (partial + rest[i2]) * (1.0 + BOUND_MARGIN) >= theta
        if not ok.all():
            alive, partial = alive[ok], partial[ok]
        if i2 == nl or not len(alive):
            break
        j2 = int(order[i2])
        c = q.lookup(j2, rows[alive])
        parts[j2, alive] = c
        partial += c
    acc = np.zeros(len(alive), dtype=np.float64)
    for jj in range(nl):  # term order
        acc += parts[jj, alive]
    return rows[alive], acc


def _seed_theta(q: _Query, order: np.ndarray, mask: np.ndarray | None, k: int) -> float:
    """The k-th best full score among a sample of the allowed rows of the lists with the
    largest bounds (-inf if the sample has fewer than k rows): real rows, so a lower bound
    of the k-th best score."""
    seeds: list[np.ndarray] = []
    have = 0
    for j in order.tolist():
        rows = _allowed(q.postings(j)[0], mask)
        if len(rows) > SEED_ROWS:
            rows = rows[:: len(rows) // SEED_ROWS + 1]
        seeds.append(rows)
        have += len(rows)
        if have >= SEED_ROWS:
            break
    seed = np.unique(np.concatenate(seeds)).astype(np.int64)
    if len(seed) < k:
        return -np.inf
    s = q.complete(seed)
    return float(np.partition(s, len(s) - k)[len(s) - k])


def _dense_top(q: _Query, mask: np.ndarray | None, theta: float) -> Scored:
    """Every allowed row scoring at least ``theta`` (a lower bound of the k-th best score
    known so far; every positive row without one), from the dense walk."""
    acc = q.dense()
    keep = acc >= theta if theta > 0 else acc > 0
    if mask is not None:
        keep &= mask
    rows = np.flatnonzero(keep)
    return rows, acc[rows]


__all__ = ["Params", "contributions", "exhaustive", "saturation", "score_view", "top_candidates", "top_k"]

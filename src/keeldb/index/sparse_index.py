"""SPARSE_INVERTED_INDEX and SPARSE_WAND: a real inverted index over one sealed segment's
sparse vectors — for every dimension used in the segment, its posting list: the rows that
have a weight there (ascending) and those weights. It is the segment's CSR matrix
transposed (CSC over the used dimensions), built with scipy.sparse, saved in keeldb's own
file format (docs/formats.md, "Sparse index file"), committed through the manifest like
every index file, and memory-mapped at open.

Searching (inner product, larger is closer; a row that shares no dimension with the query
is no hit):

- ``TAAT_NAIVE`` — term at a time: every query dimension's posting list is walked and its
  contributions summed per row. Exact.
- ``DAAT_MAXSCORE`` and ``DAAT_WAND`` — safe pruning with per-dimension upper bounds
  (query weight x the posting list's largest weight): the dimensions with the largest
  bounds are *essential*; only rows in their postings are candidates, and each candidate's
  full score is completed by binary search in the other postings. Once the best candidates'
  k-th score exceeds the sum of the non-essential bounds, no row outside the candidates can
  enter the top-k, and the answer is exact; otherwise more dimensions become essential.
  Document-at-a-time WAND chooses a pivot per document, which has no vectorised form in
  numpy; keeldb answers DAAT_WAND with the same bound-based pruning as DAAT_MAXSCORE (the
  same exact top-k, which is also what Milvus's three algorithms return at drop ratio 0).
  ``dim_max_score_ratio`` scales the bounds as in Milvus: below 1 prunes more (approximate),
  above 1 less.

Approximation is only ever asked for: ``drop_ratio_build`` leaves the smallest weights of
the segment out of the postings, ``drop_ratio_search`` the query's smallest weights.

The file also keeps, per row, the sum of its weights (before any drop), and per posting
list its largest weight: with term frequencies as weights these are BM25's document length
and the raw material of its upper bounds. So a BM25 scorer (issue 15: collection-wide IDF
and average length at search time) reuses this file unchanged: the stored weights stay raw
term frequencies, and it scores a posting as idf x tf-saturation(tf, row_sums[row]) instead
of the inner product's query weight x stored weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from keeldb.fields.sparse_vector import SparseRows, top_k
from keeldb.index import sections
from keeldb.index.base import IndexKind, in_bitmap
from keeldb.index.params import IndexSpec, SearchKnobs

MAGIC = b"KEELSPI1"
VERSION = 1
# name -> numpy dtype of each section, in file order
SECTIONS = (
    ("terms", "<u4"),  # distinct dimensions used in the segment, ascending
    ("indptr", "<i4"),  # posting list i is [indptr[i], indptr[i+1]) of rows / values
    ("rows", "<i4"),  # row numbers, ascending within a posting list
    ("values", "<f4"),  # the row's weight in that dimension
    ("max_value", "<f4"),  # the largest weight of each posting list
    ("row_sums", "<f4"),  # per row: the sum of all its weights (before drop_ratio_build)
)
# MaxScore: rows of the first list fully scored to find a lower bound of the k-th best score,
# and what completing a candidate's score in one list (a numpy binary search) costs next to
# walking one posting in scipy's product: pruning must save more than it adds.
SEED_ROWS = 512
SEARCH_COST = 32


@dataclass(frozen=True)
class Postings:
    terms: np.ndarray
    indptr: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    max_value: np.ndarray
    row_sums: np.ndarray

    def find(self, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the query dimensions the segment uses: (their posting lists' positions, their
        positions in ``dims``). List ``i`` is ``rows/values[indptr[i]:indptr[i + 1]]``."""
        terms = self.terms
        if not len(terms) or not len(dims):
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        pos = np.searchsorted(terms, dims)
        pos[pos == len(terms)] = 0
        hit = np.flatnonzero(terms[pos] == dims)
        return pos[hit].astype(np.int64), hit


def build_postings(data: SparseRows, drop_ratio: float = 0.0) -> Postings:
    """The inverted index of ``data`` with scipy: compact the used dimensions to columns,
    CSR -> CSC."""
    n, nnz = len(data), data.nnz
    indptr = data.indptr.astype(np.int64)
    row_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    weights = data.data[:nnz]
    row_sums = data.row_sums().astype(np.float32)
    dims = data.indices[:nnz]
    if drop_ratio > 0 and nnz:
        # Leave out the smallest drop_ratio of the segment's weights (Milvus's build drop).
        cut = np.partition(weights, int(drop_ratio * (nnz - 1)))[int(drop_ratio * (nnz - 1))]
        keep = weights >= cut
        dims, weights, row_of = dims[keep], weights[keep], row_of[keep]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=n), out=indptr[1:])
    terms, cols = np.unique(dims, return_inverse=True)
    # int32 offsets and row numbers: a segment holds < 2^31 nonzeros (fields/sparse_vector.py
    # refuses more), and scipy then searches the file's arrays without widening them.
    csc = sp.csr_matrix((weights, cols.astype(np.int32), indptr.astype(np.int32)), shape=(n, len(terms))).tocsc()
    csc.sort_indices()
    pptr = csc.indptr.astype(np.int32)
    values = csc.data.astype(np.float32, copy=False)
    max_value = np.maximum.reduceat(values, pptr[:-1].astype(np.int64)) if len(terms) else np.empty(0, dtype=np.float32)
    return Postings(terms.astype(np.uint32), pptr, csc.indices.astype(np.int32), values, max_value.astype(np.float32), row_sums)


def _top(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score, row), larger first, ties by row; padded with (nan, -1)."""
    out_s = np.full(k, np.nan, dtype=np.float32)
    out_r = np.full(k, -1, dtype=np.int64)
    if len(rows):
        best_r, best_s = top_k(rows, scores, k)
        out_s[: len(best_r)], out_r[: len(best_r)] = best_s, best_r
    return out_s, out_r


class SparseIndex:
    """One segment's inverted index (``VectorIndex``); the class is the ``IndexKind``."""

    file_ext = "sparse"

    def __init__(self, spec: IndexSpec, p: Postings, ntotal: int) -> None:
        self.spec = spec
        self.p = p
        self.ntotal = ntotal
        self._matrix: sp.csr_matrix | None = None

    # -- building and files ---------------------------------------------------------------

    @classmethod
    def build(cls, spec: IndexSpec, vectors: SparseRows) -> SparseIndex:
        return cls(spec, build_postings(vectors, float(spec.build.get("drop_ratio_build", 0.0))), len(vectors))

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the file (docs/formats.md); return (size, crc32)."""
        arrays = {name: getattr(self.p, name) for name, _ in SECTIONS}
        return sections.write(path, MAGIC, {"version": VERSION, "rows": self.ntotal, "spec": self.spec.key}, SECTIONS, arrays)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> SparseIndex:
        """Open a saved index (memory-mapped unless ``spec.mmap`` or KEELDB_INDEX_MMAP=0
        says otherwise); the caller has verified its size and CRC against the manifest."""
        header, arrays = sections.read(path, MAGIC, VERSION, "sparse index", mmap=spec.mmap)
        return cls(spec, Postings(**{name: arrays[name] for name, _ in SECTIONS}), int(header["rows"]))

    # -- searching --------------------------------------------------------------------------

    def _query_terms(self, dims: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posting lists of the query's dimensions (those the segment uses) and weights."""
        lists, at = self.p.find(dims)
        return lists, weights[at].astype(np.float32)

    def matrix(self) -> sp.csr_matrix:
        """The postings as a (dimensions x rows) CSR matrix over the index's own arrays —
        no copy (the file stores int32 row numbers and offsets for this)."""
        if self._matrix is None:
            p = self.p
            self._matrix = sp.csr_matrix((p.values, p.rows, p.indptr), shape=(len(p.terms), self.ntotal), copy=False)
        return self._matrix

    def taat(self, tids: np.ndarray, w: np.ndarray, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Term at a time, in scipy's sparse product: (rows with a positive score, scores)."""
        m = self.matrix()
        if len(tids) > 1 and (np.diff(tids) < 0).any():
            order = np.argsort(tids)  # scipy's product is several times slower on unsorted columns
            tids, w = tids[order], w[order]
        qv = sp.csr_matrix(
            (w.astype(np.float32), tids.astype(m.indices.dtype), np.array([0, len(tids)], dtype=m.indptr.dtype)),
            shape=(1, m.shape[0]),
        )
        r = qv @ m  # float32 x float32: scipy converts nothing, and walks only these postings
        rows, scores = r.indices.astype(np.int64), r.data
        keep = (scores > 0) & in_bitmap(allowed, rows)
        return rows[keep], scores[keep]

    def _complete(self, rows: np.ndarray, scores: np.ndarray, tids: np.ndarray, w: np.ndarray) -> None:
        """Add the contributions of posting lists ``tids`` to the scores of ``rows`` (sorted
        posting lists: a binary search per row and list, not a walk of the list)."""
        p = self.p
        for t, wt in zip(tids.tolist(), w.tolist(), strict=True):
            a, b = int(p.indptr[t]), int(p.indptr[t + 1])
            post = p.rows[a:b]
            at = np.searchsorted(post, rows)
            at[at == len(post)] = 0
            hit = post[at] == rows
            scores[hit] += np.float32(wt) * p.values[a:b][at[hit]]

    def maxscore(self, tids: np.ndarray, w: np.ndarray, k: int, allowed: np.ndarray | None, ratio: float) -> tuple[np.ndarray, np.ndarray]:
        """The top-k by bound-based pruning (the module doc), exact when ``ratio`` >= 1;
        returns every candidate scored (a superset of the top-k) with its full score.

        1. Bounds: each list's query weight x largest weight (x ``ratio``), largest first.
        2. theta0: the k-th best *full* score among a sample of the first list's allowed rows
           — real rows, so the true k-th best score is at least theta0.
        3. Essential lists: the shortest prefix whose remaining bounds sum below theta0; a row
           in none of them scores below theta0 and cannot be in the top-k.
        4. Candidates: the essential lists' rows (scipy's product), their scores completed
           by binary search in the other lists. When the essential lists hold most of the
           postings anyway, the plain term-at-a-time walk is cheaper, and as exact."""
        p = self.p
        bound = w * p.max_value[tids].astype(np.float64) * ratio
        order = np.argsort(-bound, kind="stable")
        tids, w, bound = tids[order], w[order], bound[order]
        rest = np.concatenate([np.cumsum(bound[::-1])[::-1], [0.0]])  # rest[j]: lists j.. together
        lens = (p.indptr[tids + 1] - p.indptr[tids]).astype(np.int64)
        if lens[0] * (1 + SEARCH_COST * (len(tids) - 1)) >= lens.sum():
            return self.taat(tids, w, allowed)  # even the best pruning would not pay
        first = p.rows[int(p.indptr[tids[0]]) : int(p.indptr[tids[0] + 1])]
        seed = first[in_bitmap(allowed, first.astype(np.int64))]
        if len(seed) > SEED_ROWS:
            seed = seed[:: len(seed) // SEED_ROWS + 1]
        theta0 = -np.inf
        if len(seed) >= k:
            seed_scores = np.zeros(len(seed), dtype=np.float32)
            self._complete(seed, seed_scores, tids, w)
            theta0 = float(np.partition(seed_scores, len(seed) - k)[len(seed) - k])
        below = np.flatnonzero(rest < theta0)
        n_ess = max(1, int(below[0])) if len(below) else len(tids)
        walked = int(lens[:n_ess].sum())  # ~ candidates, each completed in every other list
        if n_ess == len(tids) or walked * (1 + SEARCH_COST * (len(tids) - n_ess)) >= lens.sum():
            return self.taat(tids, w, allowed)
        cand, scores = self.taat(tids[:n_ess], w[:n_ess], allowed)
        scores = scores.astype(np.float32, copy=True)
        self._complete(cand.astype(p.rows.dtype), scores, tids[n_ess:], w[n_ess:])
        return cand, scores

    def _scored(self, q: SparseRows, qi: int, knobs: SearchKnobs, allowed: np.ndarray | None, k: int | None) -> tuple[np.ndarray, np.ndarray]:
        dims, weights = q.row(qi)
        tids, w = self._query_terms(dims, weights)
        if not len(tids):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        algo = self.spec.build.get("inverted_index_algo", "DAAT_MAXSCORE")
        if k is None or algo == "TAAT_NAIVE":
            return self.taat(tids, w, allowed)
        return self.maxscore(tids, w, k, allowed, knobs.dim_max_score_ratio or 1.0)

    def search(self, q: SparseRows, k: int, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) per query; rows are -1 where fewer rows share a dimension."""
        q = q.pruned(knobs.drop_ratio_search)
        out_s = np.full((len(q), k), np.nan, dtype=np.float32)
        out_r = np.full((len(q), k), -1, dtype=np.int64)
        for qi in range(len(q)):
            rows, scores = self._scored(q, qi, knobs, allowed, k)
            out_s[qi], out_r[qi] = _top(rows, scores, k)
        return out_s, out_r

    def range_search(self, q: SparseRows, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every allowed row scoring above ``radius`` (IP: larger is closer)."""
        q = q.pruned(knobs.drop_ratio_search)
        lims, ss, rs = [0], [], []
        for qi in range(len(q)):
            rows, scores = self._scored(q, qi, knobs, allowed, None)
            hit = scores > radius
            ss.append(scores[hit].astype(np.float32))
            rs.append(rows[hit])
            lims.append(lims[-1] + int(hit.sum()))
        return np.asarray(lims, dtype=np.int64), np.concatenate(ss), np.concatenate(rs)


SPARSE: IndexKind = SparseIndex  # what index/base.py's registry names

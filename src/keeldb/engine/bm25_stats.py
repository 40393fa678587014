"""BM25's collection-wide statistics at a snapshot, and what each sealed segment keeps so
that a search does not recompute them from every row.

A search needs N (visible rows), the visible rows' total length and df(t) (visible rows
containing t) for its query terms, over the whole snapshot (``bm25.py``'s module doc says
why). Computed from scratch that is a pass over every row's visibility and every posting of
the query's terms, per search. But a sealed segment's rows never change: only their
``deleted_at`` stamps do. So each sealed segment with full postings (its committed sparse
index, built without ``drop_ratio_build``) keeps, per field, a ``SegmentTerms``:

- what never changes: its postings, each row's length, the sum of all lengths, per posting
  list its length (= df over every row) and, computed when a term is first searched, the
  shortest row in the list (for the scorer's upper bounds, ``bm25_scoring.py``);
- the rows stamped deleted, found once per version of the segment's delete mask
  (``Segment.stamps``, bumped after each delete's stamps are written);
- the last invisible set it was asked about -- those of the stamped rows whose stamp is at
  or before the snapshot -- with its total length and the term counts of its rows.

A snapshot's statistics for that segment are then the whole segment's minus the invisible
rows': N = rows - |invisible|, total = sum - invisible lengths, df(t) = list length - the
invisible rows containing t. Counts and lengths are integers (term counts), so the
subtraction is exact and the result equals the count over the visible rows bit for bit.
The cache is never trusted beyond what it was computed from: the stamped rows' current
``deleted_at`` is read again at every search, and the invisible set's cached sums are used
only for an identical set. A view the cache cannot describe -- the growing segment, a
segment without full postings, rows newer than the snapshot, a collection TTL -- is counted
from its visibility mask, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from keeldb.engine.segment import NEVER, SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.fields.sparse_vector import SparseRows


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


@dataclass(frozen=True)
class _Stamped:
    version: int  # Segment.stamps when the scan began
    rows: np.ndarray  # every row stamped deleted by then (and maybe some stamped during it)


@dataclass(frozen=True)
class _Invisible:
    rows: np.ndarray  # int64, ascending
    total: float  # their summed lengths
    terms: np.ndarray  # uint32, ascending: every term of those rows
    counts: np.ndarray  # int64: how many of the rows hold each


class SegmentTerms:
    """One sealed segment's BM25 facts for one field (the module doc). Shared by concurrent
    searches: its arrays are written once, the two caches are replaced whole."""

    def __init__(self, index: Any, view: SegmentView, field: str) -> None:
        self.index = index  # the committed index these postings are (a rebuilt one replaces this)
        self.p = index.p  # the index's Postings (index/sparse_index.py)
        self.num_rows = view.num_rows
        self.lengths = np.asarray(self.p.row_sums)  # float32 term counts: exact integers
        self.total = float(self.lengths.sum(dtype=np.float64))
        self.vectors: SparseRows = view.vectors(field)
        self._min_len = np.full(len(self.p.terms), np.nan, dtype=np.float32)
        self._stamped: _Stamped | None = None
        self._invisible: _Invisible | None = None

    # -- postings ---------------------------------------------------------------------------

    def list_lengths(self, lists: np.ndarray) -> np.ndarray:
        p = self.p
        return (p.indptr[lists + 1] - p.indptr[lists]).astype(np.int64)

    def min_lengths(self, lists: np.ndarray) -> np.ndarray:
        """The shortest row of each posting list (deleted rows included: a bound), computed
        the first time a list is asked about."""
        out = self._min_len[lists]
        for j in np.flatnonzero(np.isnan(out)).tolist():
            i = int(lists[j])
            a, b = int(self.p.indptr[i]), int(self.p.indptr[i + 1])
            out[j] = self._min_len[i] = self.lengths[self.p.rows[a:b]].min() if b > a else 0.0
        return out

    # -- visibility -------------------------------------------------------------------------

    def invisible(self, view: SegmentView, ts: int) -> _Invisible:
        """The rows stamped deleted at or before ``ts`` (the caller checked that every row
        was written at or before ``ts`` and none has expired), with their sums."""
        seg = view.segment
        version = seg.stamps  # read BEFORE the scan (Segment.stamps)
        st = self._stamped
        if st is None or st.version != version:
            st = self._stamped = _Stamped(version, np.flatnonzero(seg.deleted_at != NEVER))
        rows = st.rows[seg.deleted_at[st.rows] <= ts]
        inv = self._invisible
        if inv is not None and np.array_equal(inv.rows, rows):
            return inv
        if len(rows):
            taken = self.vectors.take(rows)
            terms, counts = np.unique(taken.indices[: taken.nnz], return_counts=True)
            total = float(self.lengths[rows].sum(dtype=np.float64))
        else:
            terms, counts, total = np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64), 0.0
        inv = self._invisible = _Invisible(rows, total, terms.astype(np.uint32), counts.astype(np.int64))
        return inv

    def stats(self, view: SegmentView, ts: int, terms: np.ndarray) -> tuple[int, float, np.ndarray]:
        """(visible rows, their total length, df of each of ``terms``) at ``ts``."""
        df = np.zeros(len(terms), dtype=np.int64)
        lists, at = self.p.find(terms)
        df[at] = self.list_lengths(lists)
        if view.all_visible(ts):
            return self.num_rows, self.total, df
        inv = self.invisible(view, ts)
        if len(inv.terms) and len(terms):
            pos = np.searchsorted(inv.terms, terms)
            pos[pos == len(inv.terms)] = 0
            hit = inv.terms[pos] == terms
            df[hit] -= inv.counts[pos[hit]]
        return self.num_rows - len(inv.rows), self.total - inv.total, df


def segment_terms(view: SegmentView, field: str) -> SegmentTerms | None:
    """The view's cached ``SegmentTerms``: for a sealed segment whose committed sparse index
    holds every stored (term, row) pair, else None."""
    seg = view.segment
    index = seg.indexes.get(field)
    key = ("bm25", field)
    if (
        index is None
        or not hasattr(index, "p")
        or getattr(index, "ntotal", -1) != view.num_rows
        or view.num_rows != seg.num_rows
        or index.spec.build.get("drop_ratio_build")
    ):
        seg.read_cache.pop(key, None)  # let a dropped index's (mapped) file go
        return None
    cached = seg.read_cache.get(key)
    if cached is None or cached.index is not index:
        cached = seg.read_cache[key] = SegmentTerms(index, view, field)
    return cached


def cacheable(view: SegmentView, ts: int) -> bool:
    """Whether the view's visible rows at ``ts`` are its rows minus those stamped at or
    before ``ts``: every row written by ``ts`` and no collection TTL expiring any."""
    seg = view.segment
    return getattr(seg, "max_ts", ts + 1) <= ts and not (view.expire_before and seg.min_ts() <= view.expire_before)


# -- the uncached count, from the visibility mask ------------------------------------------


def row_lengths(view: SegmentView, field: str) -> np.ndarray:
    """Each row's length (sum of its term counts), float64, from its stored vectors."""
    data: SparseRows = view.vectors(field)
    return data.row_sums()


def _counted(view: SegmentView, field: str, ts: int, terms: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(visible rows, their total length, df of ``terms``) by a scan of the view's rows."""
    vis = None if view.all_visible(ts) else view.visible(ts)
    nvis = view.num_rows if vis is None else int(np.count_nonzero(vis))
    if nvis == 0:
        return 0, 0.0, np.zeros(len(terms), dtype=np.int64)
    lengths = row_lengths(view, field)
    total = float(lengths.sum() if vis is None else lengths[vis].sum())
    data: SparseRows = view.vectors(field)
    _, at, rows = data.matches(terms)
    if vis is not None:
        at = at[vis[rows]]
    # a row holds a term at most once, so counting pairs counts rows
    return nvis, total, np.bincount(at, minlength=len(terms)).astype(np.int64)


def corpus_stats(snap: Snapshot, field: str, terms: np.ndarray, *, cached: bool = True) -> CorpusStats:
    """N, total length and df(terms) over every row visible at the snapshot (``cached``:
    sealed segments answer from their ``SegmentTerms``; False counts every view from its
    mask, the reference the cache is tested against)."""
    n, total = 0, 0.0
    df = np.zeros(len(terms), dtype=np.int64)
    for view in snap.views:
        if view.num_rows == 0:
            continue
        st = segment_terms(view, field) if cached and cacheable(view, snap.ts) else None
        vn, vt, vdf = st.stats(view, snap.ts, terms) if st is not None else _counted(view, field, snap.ts, terms)
        n += vn
        total += vt
        df += vdf
    return CorpusStats(n, total, terms, df)


__all__ = ["CorpusStats", "SegmentTerms", "cacheable", "corpus_stats", "row_lengths", "segment_terms"]

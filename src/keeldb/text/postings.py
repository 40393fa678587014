"""Positional postings for ``text_match`` / ``phrase_match`` (issue 15), and the two matches.

A text-match index maps every token of a VARCHAR field (its analyzer's output) to the rows
that contain it and, per row, the token's positions -- what Milvus keeps in the tantivy
index it builds for an ``enable_match`` field. Two forms, one interface
(``occurrences(term) -> (rows, positions)``, every occurrence of the token, sorted by row):

- ``Postings``: immutable, sorted; terms in UTF-8 byte order, each with its occurrences as
  (row, position) pairs sorted by row. Built once per sealed segment and written next to it
  (``index/text_index.py``; the bytes in docs/formats.md) or kept in memory; its arrays may
  be views of a memory-mapped file.
- ``TokenTable``: the growing segment's tokens as flat (row, term id, position) arrays,
  extended as rows arrive -- appending to it never rewrites what is there -- and turned
  into ``Postings`` in one sort.

The matches (Milvus 2.6 semantics, read from its tantivy binding and its tantivy fork):

- ``text_match``: the query is analyzed with the field's analyzer; a row matches when it
  contains any query token; with ``minimum_should_match=k``, when at least k of the query's
  tokens (counted with repetition, one tantivy clause each) are among the row's tokens.
- ``phrase_match(slop)``: query tokens t_0..t_{m-1} at query positions o_i, max_o the
  largest; an occurrence of t_i at position p is put at p + (max_o - o_i), so an exact
  phrase puts all its tokens at one place. A row matches when one occurrence of each t_i
  can be chosen with (largest - smallest) placed position <= slop: slop 0 is the exact
  phrase, slop 1 lets one word in between, slop 2 also swaps two words (the Milvus docs'
  "learning machine" example). One query token is a text match; none matches nothing.
  (Upstream tantivy's sloppy phrase keeps the order; Milvus's fork measures the span, which
  is what the docs describe and what is computed here.)

Both are vectorised: text match is a union (or a count) of posting lists; the phrase test
is, for every occurrence a of any query token in a candidate row, whether every t_i has a
placed occurrence in [a, a + slop] of the same row -- the smallest window holding one of
each starts at one of them, so this is exactly the span rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from keeldb.text.analyzer import Analyzer

_EMPTY = np.empty(0, dtype=np.int64)


class Occurrences(Protocol):
    """What the matches read: where each token occurs."""

    def occurrences(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, positions) of every occurrence of ``term``, sorted by row."""
        ...

    def rows_with(self, term: str) -> np.ndarray:
        """The rows containing ``term`` at least once, ascending (no repeats)."""
        ...


# -- the immutable form ----------------------------------------------------------------------


@dataclass(frozen=True)
class Postings:
    """One segment's text-match postings (every row, live or not).

    Term ``j`` is ``term_bytes[term_offsets[j]:term_offsets[j + 1]]`` (UTF-8; terms ascending
    by bytes); its occurrences are entries ``term_ptr[j]`` to ``term_ptr[j + 1]`` of ``rows``
    and ``positions``, sorted by row, then position. ``null_rows``: the rows whose value is
    null (they match nothing, and neither does their negation). One (row, position) pair an
    occurrence -- 8 bytes a token -- rather than a row list plus a position list per row:
    short texts hold most tokens once, where the two-level form costs twice that."""

    n_rows: int
    term_offsets: np.ndarray  # int64, terms + 1
    term_bytes: np.ndarray  # uint8
    term_ptr: np.ndarray  # int64, terms + 1
    rows: np.ndarray  # int32
    positions: np.ndarray  # int32
    null_rows: np.ndarray  # int32, ascending

    @property
    def n_terms(self) -> int:
        return len(self.term_offsets) - 1

    def term(self, j: int) -> str:
        a, b = int(self.term_offsets[j]), int(self.term_offsets[j + 1])
        return bytes(memoryview(self.term_bytes)[a:b]).decode("utf-8")

    def find(self, term: str) -> int:
        """The term's number, or -1: a binary search over the sorted terms (a few dozen
        byte comparisons; the terms are never decoded as a whole)."""
        want = term.encode("utf-8")
        blob, offs = memoryview(self.term_bytes), self.term_offsets
        lo, hi = 0, self.n_terms
        while lo < hi:
            mid = (lo + hi) // 2
            got = bytes(blob[int(offs[mid]) : int(offs[mid + 1])])
            if got < want:
                lo = mid + 1
            elif got > want:
                hi = mid
            else:
                return mid
        return -1

    def rows_with(self, term: str) -> np.ndarray:
        j = self.find(term)
        if j < 0:
            return _EMPTY
        rows = self.rows[int(self.term_ptr[j]) : int(self.term_ptr[j + 1])]
        first = np.ones(len(rows), dtype=bool)  # sorted: the first occurrence of each row
        first[1:] = rows[1:] != rows[:-1]
        return rows[first].astype(np.int64)

    def occurrences(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        j = self.find(term)
        if j < 0:
            return _EMPTY, _EMPTY
        a, b = int(self.term_ptr[j]), int(self.term_ptr[j + 1])
        return self.rows[a:b].astype(np.int64), self.positions[a:b].astype(np.int64)


def _sorted_postings(n_rows: int, terms: Sequence[str], rows: np.ndarray, tids: np.ndarray,
                     positions: np.ndarray, null_rows: np.ndarray) -> Postings:  # fmt: skip
    """Postings from flat (row, term id, position) occurrences: one lexsort."""
    encoded = [t.encode("utf-8") for t in terms]
    by_bytes = sorted(range(len(encoded)), key=encoded.__getitem__)
    rank = np.empty(len(encoded), dtype=np.int64)
    rank[by_bytes] = np.arange(len(encoded), dtype=np.int64)
    term_offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(encoded[i]) for i in by_bytes], out=term_offsets[1:])
    term_bytes = np.frombuffer(b"".join(encoded[i] for i in by_bytes), dtype=np.uint8)
    r = rank[tids]
    order = np.lexsort((positions, rows, r))
    term_ptr = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=len(encoded)), out=term_ptr[1:])
    return Postings(n_rows, term_offsets, term_bytes, term_ptr, rows[order].astype(np.int32),
                    positions[order].astype(np.int32), np.asarray(null_rows, dtype=np.int32))  # fmt: skip


def build_postings(texts: Iterable[str | None], analyzer: Analyzer) -> Postings:
    """The postings of a column's values (None is null), tokenized with ``analyzer``."""
    table = TokenTable(analyzer)
    table.add(texts)
    return table.postings()


# -- the growing form -------------------------------------------------------------------------


class TokenTable:
    """The tokens of rows 0..``covered``-1 as flat arrays (row, term id, position), in chunks
    merged geometrically (a chunk is more than twice the one after it, so a lookup walks
    O(log rows) chunks and each token is copied O(log rows) times in all). Appends are
    serialised by a lock; a reader sees whole chunks and drops the rows beyond its view."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.covered = 0
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        # (rows, term ids, positions) per chunk, rows ascending across chunks; null rows.
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._nulls: list[np.ndarray] = []

    def cover(self, n: int, values: Callable[[int, int], Iterable[str | None]]) -> None:
        """Make sure rows 0..n-1 are in the table: tokenize rows ``covered``..n-1, whose
        values ``values(start, stop)`` gives. Concurrent readers extend it once (the lock);
        a reader that needs fewer rows than are covered takes no lock at all."""
        if self.covered >= n:
            return
        with self._lock:
            if self.covered < n:
                self.add(values(self.covered, n))

    def add(self, texts: Iterable[str | None]) -> None:
        """Tokenize the next rows (``covered`` onwards) and append them."""
        vocab, terms = self._vocab, self._terms
        rows: list[int] = []
        tids: list[int] = []
        poss: list[int] = []
        nulls: list[int] = []
        positioned = self.analyzer.positioned
        start, count = self.covered, 0
        for count, text in enumerate(texts, 1):
            i = start + count - 1
            if text is None:
                nulls.append(i)
                continue
            for term, pos in positioned(text):
                tid = vocab.get(term)
                if tid is None:
                    tid = vocab[term] = len(terms)
                    terms.append(term)
                rows.append(i)
                tids.append(tid)
                poss.append(pos)
        chunk = (np.asarray(rows, dtype=np.int32), np.asarray(tids, dtype=np.int32), np.asarray(poss, dtype=np.int32))
        chunks = [*self._chunks, chunk]
        while len(chunks) > 1 and len(chunks[-2][0]) <= 2 * len(chunks[-1][0]):
            last, prev = chunks.pop(), chunks.pop()
            merged = (np.concatenate([prev[0], last[0]]), np.concatenate([prev[1], last[1]]),
                      np.concatenate([prev[2], last[2]]))  # fmt: skip
            chunks.append(merged)
        # Replaced whole, then published: a reader keeps the list it took, and a term id
        # it finds in the vocabulary is never one of rows it cannot see.
        self._chunks = chunks
        if nulls:
            self._nulls = [*self._nulls, np.asarray(nulls, dtype=np.int32)]
        self.covered = start + count

    def occurrences(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        tid = self._vocab.get(term)
        if tid is None:
            return _EMPTY, _EMPTY
        rows, poss = [], []
        for r, t, p in self._chunks:
            hit = t == tid
            rows.append(r[hit])
            poss.append(p[hit])
        if not rows:
            return _EMPTY, _EMPTY
        return np.concatenate(rows).astype(np.int64), np.concatenate(poss).astype(np.int64)

    def rows_with(self, term: str) -> np.ndarray:
        return _distinct_sorted(self.occurrences(term)[0])  # chunks and rows in row order

    def null_rows(self) -> np.ndarray:
        return np.concatenate(self._nulls).astype(np.int64) if self._nulls else _EMPTY

    def postings(self) -> Postings:
        """Everything covered, as sorted ``Postings``."""
        chunks = self._chunks
        if chunks:
            rows, tids, poss = (np.concatenate([c[k] for c in chunks]) for k in range(3))
        else:
            rows = tids = poss = np.empty(0, dtype=np.int32)
        return _sorted_postings(self.covered, list(self._terms), rows, tids, poss, self.null_rows())


# -- the matches --------------------------------------------------------------------------------


def _below(rows: np.ndarray, n: int) -> np.ndarray:
    return rows if not len(rows) or rows[-1] < n else rows[rows < n]


def _distinct_sorted(a: np.ndarray) -> np.ndarray:
    """The distinct values of an ascending array (np.unique without its sort or hash)."""
    if len(a) < 2:
        return a
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    return a[first]


def _common(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The values of ascending, distinct ``a`` that are in ascending ``b``."""
    if not len(a) or not len(b):
        return a[:0]
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return a[b[at] == a]


def text_match(src: Occurrences, terms: Sequence[str], n: int, minimum: int | None = None) -> np.ndarray:
    """Rows 0..n-1 containing any of ``terms`` (a query's tokens, repeats kept), or with
    ``minimum``, at least that many of them."""
    counts: dict[str, int] = {}
    for t in terms:
        counts[t] = counts.get(t, 0) + 1
    if minimum is None or minimum <= 1:
        hit = np.zeros(n, dtype=bool)
        for t in counts:
            hit[_below(src.rows_with(t), n)] = True
        return hit
    total = np.zeros(n, dtype=np.int64)
    for t, k in counts.items():
        total[_below(src.rows_with(t), n)] += k
    return total >= minimum


def phrase_match(src: Occurrences, tokens: Sequence[tuple[str, int]], slop: int, n: int) -> np.ndarray:
    """Rows 0..n-1 holding the phrase ``tokens`` ((term, query position) pairs) within
    ``slop`` (the module doc's span rule)."""
    if len(tokens) <= 1:
        return text_match(src, [t for t, _ in tokens], n)
    top = max(p for _, p in tokens)
    lists = []
    candidates: np.ndarray | None = None
    for term, qpos in tokens:
        rows, pos = src.occurrences(term)  # sorted by row
        if len(rows) and rows[-1] >= n:
            keep = rows < n
            rows, pos = rows[keep], pos[keep]
        lists.append((rows, pos + (top - qpos)))
        present = _distinct_sorted(rows)
        candidates = present if candidates is None else _common(candidates, present)
        if not len(candidates):
            return np.zeros(n, dtype=bool)
    assert candidates is not None
    keys = []
    for rows, placed in lists:
        at = np.minimum(np.searchsorted(candidates, rows), len(candidates) - 1)
        sel = candidates[at] == rows
        k = (rows[sel] << 32) | placed[sel]
        if len(k) > 1 and (k[1:] < k[:-1]).any():  # positions need not rise within a row (jieba)
            k = np.sort(k)
        keys.append(k)
    anchors = np.concatenate(keys)  # repeats are harmless: each is tested alike
    ok = np.ones(len(anchors), dtype=bool)
    for k in keys:
        found = k[np.minimum(np.searchsorted(k, anchors), len(k) - 1)]
        ok &= (found >= anchors) & (found - anchors <= slop) & ((found >> 32) == (anchors >> 32))
    hit = np.zeros(n, dtype=bool)
    hit[anchors[ok] >> 32] = True
    return hit

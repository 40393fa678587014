"""The NGRAM index (Milvus 2.6): every n-gram of a VARCHAR field's values (or a JSON path's
strings), min_gram <= n <= max_gram, mapped to the rows holding it, for ``LIKE`` patterns
with wildcards inside (``'%x%'``, ``'%x'``, ``'a%b'``).

It stores what a term index stores (``index/scalar_index.py``: sorted terms -- here the
grams, as UTF-8 -- and each one's rows, once per row; the same file layout under another
magic-free name, ``idx-<id>.ngram``), and answers a pattern with *candidates*: the rows
holding every gram of each literal piece of the pattern at least min_gram characters long
(a piece longer than max_gram contributes its max_gram-long grams). A row without one of
them cannot match; a row with all of them may not (the grams may be in another order), so
the filter verifies the candidates with the scan's own LIKE (``engine/scalar_filter.py``).
A pattern with no piece long enough (``'%a%'`` with min_gram 2) is left to the scan.
Grams are taken over characters (code points), case-sensitively, as LIKE matches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.index.base import IndexKind
from keeldb.index.params import IndexSpec
from keeldb.index.scalar_index import ScalarIndex, json_path_values


class NgramIndex(ScalarIndex):
    file_ext = "ngram"

    @classmethod
    def build(cls, spec: IndexSpec, column: Any) -> NgramIndex:
        col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        b = spec.build
        texts = col.to_pylist()
        absent = None
        if b["dtype"] == "JSON":
            vals = json_path_values(col, tuple(b["path"]))
            absent = np.flatnonzero(np.fromiter((v is None for v in vals), dtype=bool, count=len(vals)))
            texts = [t if type(t) is str else None for t in vals]
        lo, hi = int(b["min_gram"]), int(b["max_gram"])
        grams: list[str] = []
        rows: list[int] = []
        nulls = []
        for r, s in enumerate(texts):
            if s is None:
                nulls.append(r)
                continue
            L = len(s)
            seen = {s[i : i + k] for k in range(lo, min(hi, L) + 1) for i in range(L - k + 1)}
            grams.extend(seen)
            rows.extend([r] * len(seen))
        index = cls._from_values(
            spec, len(col), pa.array(grams, type=pa.string()), np.asarray(rows, dtype=np.int64),
            np.asarray(nulls, dtype=np.int64), absent,
        )  # fmt: skip
        assert isinstance(index, NgramIndex)
        return index

    def compare(self, op: str, value: Any, *, as_float: bool = False) -> np.ndarray | None:
        return None  # grams are not values

    def prefix(self, p: str) -> np.ndarray | None:
        return None

    def contains(self, value: Any) -> np.ndarray | None:
        return None

    def like(self, pattern: str) -> np.ndarray | None:
        return None  # candidates only: like_candidates

    def like_candidates(self, pattern: str) -> np.ndarray | None:
        """Sorted rows that may match the LIKE ``pattern`` (module doc), or None when the
        pattern has no literal piece of min_gram characters (or uses escapes)."""
        if "\\" in pattern:
            return None
        lo, hi = int(self.spec.build["min_gram"]), int(self.spec.build["max_gram"])
        pieces = [p for part in pattern.split("%") for p in part.split("_") if len(p) >= lo]
        if not pieces:
            return None
        out: np.ndarray | None = None
        for piece in pieces:
            n = min(len(piece), hi)
            for g in {piece[i : i + n] for i in range(len(piece) - n + 1)}:
                key = g.encode("utf-8")
                rows = self._span(self._search(self.terms, key, "left"), self._search(self.terms, key, "right"))
                out = rows if out is None else np.intersect1d(out, rows, assume_unique=True)
                if not len(out):
                    return out
        return out


NGRAM: IndexKind = NgramIndex

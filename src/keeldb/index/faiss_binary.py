"""BINARY_VECTOR indexes: BIN_FLAT (``faiss.IndexBinaryFlat``) and BIN_IVF_FLAT
(``faiss.IndexBinaryIVF``), metrics HAMMING and JACCARD.

FAISS's binary indexes rank by Hamming distance only. Jaccard is kept exact this way:
for bit vectors a, b, |a AND b| = (|a| + |b| - hamming(a, b)) / 2, so the Jaccard distance
1 - |a AND b| / |a OR b| is a function of the AND-popcount and the two popcounts; keeldb
computes it in numpy from the index's own codes (zero-copy views of FAISS's arrays, which
are memory-mapped from the index file), with each row's popcount computed once per index.

- BIN_FLAT, HAMMING: FAISS's SIMD Hamming scan, the allowed rows as an ``IDSelectorBitmap``.
- BIN_FLAT, JACCARD: every allowed row's exact Jaccard distance (numpy), then top-k.
- BIN_IVF_FLAT, both: FAISS's coarse quantizer picks the ``nprobe`` lists nearest to the
  query (by Hamming, as FAISS trains them); every member of those lists is then scored
  exactly in numpy with the metric asked for — the same candidate set FAISS's own IVF scan
  would visit, and the allowed rows applied to it (FAISS's ``IndexBinaryIVF`` does not take
  an ID selector).

Distances as Milvus reports them: HAMMING the number of differing bits, JACCARD in [0, 1];
smaller is closer for both. Two all-zero vectors are at Jaccard distance 0 (as scipy's
``jaccard`` has it; the ratio itself is undefined there).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from keeldb.fields.binary_vector import bit_distances, popcount_rows
from keeldb.index.base import IndexKind, in_bitmap
from keeldb.index.faiss_index import ADD_CHUNK, TRAIN_POINTS_PER_LIST, read_flags, write_fsynced
from keeldb.index.params import AUTO_PROBE_FRACTION, DEFAULT_NPROBE, IndexSpec, SearchKnobs


def _top(d: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest (distance, row), ties by row; padded with (nan, -1)."""
    out_d = np.full(k, np.nan, dtype=np.float32)
    out_r = np.full(k, -1, dtype=np.int64)
    if len(d):
        order = np.lexsort((rows, d))[:k]
        out_d[: len(order)], out_r[: len(order)] = d[order], rows[order]
    return out_d, out_r


class BinaryIndex:
    """One segment's BIN_FLAT or BIN_IVF_FLAT index (``VectorIndex``); the class is the
    ``IndexKind``."""

    file_ext = "faissbin"  # FAISS's binary-index serialisation (write_index_binary)

    def __init__(self, spec: IndexSpec, index: faiss.IndexBinary) -> None:
        self.spec = spec
        self.index = index
        self.ntotal = int(index.ntotal)
        self.code_size = int(index.code_size)
        self.ivf = index if isinstance(index, faiss.IndexBinaryIVF) else None
        self._bits: np.ndarray | None = None

    @classmethod
    def build(cls, spec: IndexSpec, vectors: np.ndarray, seed: int = 1234) -> BinaryIndex:
        n = len(vectors)
        if spec.index_type == "BIN_FLAT":
            index: faiss.IndexBinary = faiss.IndexBinaryFlat(spec.dim)
        else:
            nlist = spec.nlist_for(n)
            index = faiss.index_binary_factory(spec.dim, f"BIVF{nlist}")  # owns its quantizer
            want = min(n, TRAIN_POINTS_PER_LIST * nlist)
            rows = np.sort(np.random.default_rng(seed).choice(n, size=want, replace=False))
            index.train(np.ascontiguousarray(vectors[rows]))
        for start in range(0, n, ADD_CHUNK):
            index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK]))
        return cls(spec, index)

    def save(self, path: Path) -> tuple[int, int]:
        return write_fsynced(faiss.write_index_binary, self.index, path)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> BinaryIndex:
        return cls(spec, faiss.read_index_binary(str(path), read_flags(spec.mmap)))

    # -- the codes, as numpy views ----------------------------------------------------------

    def _flat_codes(self) -> np.ndarray:
        xb = self.index.xb
        return faiss.rev_swig_ptr(xb.data(), self.ntotal * self.code_size).reshape(self.ntotal, self.code_size)

    def _flat_bits(self) -> np.ndarray:
        if self._bits is None:
            self._bits = popcount_rows(self._flat_codes())
        return self._bits

    def _probed(self, q: np.ndarray, knobs: SearchKnobs) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: the (rows, codes) of every member of its ``nprobe`` nearest lists."""
        assert self.ivf is not None
        nlist = int(self.ivf.nlist)
        if knobs.nprobe is not None:
            nprobe = knobs.nprobe
        elif self.spec.index_type == "AUTOINDEX":
            nprobe = max(1, nlist // AUTO_PROBE_FRACTION)
        else:
            nprobe = DEFAULT_NPROBE
        _, lists = self.ivf.quantizer.search(q, min(nprobe, nlist))
        inv = self.ivf.invlists
        out = []
        for per_query in lists:
            rows, codes = [], []
            for lst in per_query.tolist():
                size = inv.list_size(lst) if lst >= 0 else 0
                if size:
                    rows.append(faiss.rev_swig_ptr(inv.get_ids(lst), size))
                    codes.append(faiss.rev_swig_ptr(inv.get_codes(lst), size * self.code_size).reshape(size, self.code_size))
            if rows:
                out.append((np.concatenate(rows).astype(np.int64), np.concatenate(codes)))
            else:
                out.append((np.empty(0, dtype=np.int64), np.empty((0, self.code_size), dtype=np.uint8)))
        return out

    def _candidates(self, q: np.ndarray, knobs: SearchKnobs, allowed: np.ndarray | None):  # type: ignore[no-untyped-def]
        """Per query: (distances, rows) of every candidate an exact scan scores."""
        metric = self.spec.metric
        if self.ivf is None:
            codes, bits = self._flat_codes(), self._flat_bits() if metric == "JACCARD" else None
            rows = np.arange(self.ntotal, dtype=np.int64)
            keep = in_bitmap(allowed, rows)
            if not keep.all():
                rows, codes = rows[keep], codes[keep]
                bits = None if bits is None else bits[keep]
            for qi in range(len(q)):
                yield bit_distances(q[qi], codes, metric, bits), rows
            return
        for qi, (rows, codes) in enumerate(self._probed(q, knobs)):
            keep = in_bitmap(allowed, rows)
            yield bit_distances(q[qi], codes[keep], metric), rows[keep]

    # -- searching ----------------------------------------------------------------------------

    def search(
        self, q: np.ndarray, k: int, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(q, dtype=np.uint8)
        if self.ivf is None and self.spec.metric == "HAMMING":
            sel = None if allowed is None else faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(allowed))
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            d, i = self.index.search(q, k, params=params)
            del sel
            return d.astype(np.float32), i
        out_d = np.full((len(q), k), np.nan, dtype=np.float32)
        out_i = np.full((len(q), k), -1, dtype=np.int64)
        for qi, (d, rows) in enumerate(self._candidates(q, knobs, allowed)):
            out_d[qi], out_i[qi] = _top(d, rows, k)
        return out_d, out_i

    def range_search(
        self, q: np.ndarray, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every allowed candidate with distance < radius, FAISS's (lims, distances, rows)."""
        q = np.ascontiguousarray(q, dtype=np.uint8)
        lims, ds, rs = [0], [], []
        for d, rows in self._candidates(q, knobs, allowed):
            hit = d < radius
            ds.append(d[hit])
            rs.append(rows[hit])
            lims.append(lims[-1] + int(hit.sum()))
        return np.asarray(lims, dtype=np.int64), np.concatenate(ds), np.concatenate(rs)


BINARY: IndexKind = BinaryIndex  # what index/base.py's registry names

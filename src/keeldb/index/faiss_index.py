"""One segment's ANN index, built, saved, loaded and searched with FAISS: the
``IndexKind`` (``index/base.py``) behind every index type keeldb builds today.

The index's labels are the segment's row numbers, so a hit maps straight back to the row
and MVCC visibility stays the segment's business: the index covers *every* version the
segment file holds, live or not, and a search passes the rows that may be returned as a
FAISS ``IDSelectorBitmap``. FAISS checks the bitmap while it scans (IVF) or walks the graph
(HNSW), so deleted, overwritten and filtered-out rows never take a place in the top-k —
unlike post-filtering, which returns fewer than k hits. When the index still finds fewer
hits than rows qualify (an IVF probe or an HNSW walk that met too few allowed rows), the
caller searches exactly instead (see ``engine/search.py``).

Files are FAISS's own serialisation (documented by FAISS, versioned by its fourcc tags);
keeldb adds only the size and CRC-32 in the manifest. A restart reads them instead of
rebuilding them: into memory by default, as Milvus holds indexes, or memory-mapped
(``IO_FLAG_MMAP_IFC``, page cache rather than heap) with KEELDB_INDEX_MMAP=1 (``_MMAP``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from keeldb.index import quantized
from keeldb.index.base import IndexKind
from keeldb.index.params import (
    AUTO_PROBE_FRACTION,
    DEFAULT_NPROBE,
    QUANTIZED_TYPES,
    IndexSpec,
    SearchKnobs,
)
from keeldb.storage.crash import before_segment_write
from keeldb.storage.fs import file_crc32, fsync_file, written_by_library

TRAIN_POINTS_PER_LIST = 256  # FAISS's k-means samples this many points per centroid anyway
ADD_CHUNK = 65536
# HNSW inserts a chunk's points in parallel, level by level, each blind to the rest of its
# chunk: smaller chunks make a better graph at the same cost. Measured on 200k x 128-d
# clustered float16 rows (M=16, efConstruction=200, ef=32): recall@10 0.308 with chunks of
# 65,536, 0.336 with 8,192, the same CPU time (68-70 s) either way.
HNSW_ADD_CHUNK = 8192
# IO_FLAG_MMAP_IFC maps the file and points the index's code arrays (IVF inverted lists,
# HNSW's flat storage) straight at the mapping: zero copy, and searches as fast as an
# in-memory index. (IO_FLAG_MMAP, FAISS's older mmap path, turns IVF lists into
# OnDiskInvertedLists, which measured 5-10x slower per single-vector search here.)
_LOAD_FLAGS = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
# The trade-off, measured at 1M x 128-d IVF_FLAT on this 2-core VM: a mapped index searched
# ~25-35% slower per query than the same index read into memory (4 KiB page-cache pages:
# TLB misses and faults after the host drops caches), while resident memory is the same
# either way (the index's pages are touched in both). So indexes are read into memory by
# default, as Milvus holds them (its ``mmap.enabled`` is off unless asked);
# KEELDB_INDEX_MMAP=1 maps them instead (reclaimable under memory pressure, shared between
# processes). (Sparse and text-match index files, index/sections.py, stay mapped unless
# KEELDB_INDEX_MMAP=0.)
_MMAP = os.environ.get("KEELDB_INDEX_MMAP", "0") == "1"


def write_fsynced(write: Callable[[Any, str], None], index: Any, path: Path) -> tuple[int, int]:
    """Write a FAISS index with ``write`` (``faiss.write_index`` / ``write_index_binary``)
    and fsync it; return (size, crc32). The caller fsyncs the directory."""
    before_segment_write()
    with written_by_library(path):
        write(index, str(path))
    fsync_file(path)
    return file_crc32(path)


def read_flags(mmap: bool | None = None) -> int:
    """How a saved FAISS index is opened: memory-mapped or read into memory as its
    ``mmap.enabled`` index property says (``IndexSpec.mmap``), else as KEELDB_INDEX_MMAP
    says (default: read into memory, as Milvus holds indexes)."""
    return _LOAD_FLAGS if (_MMAP if mmap is None else mmap) else 0


def normalized(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


class FaissIndex:
    """A FAISS index over one segment's vectors, plus what searching it needs to know.
    Implements ``VectorIndex``; the class itself is the ``IndexKind`` (``build``/``load``)."""

    file_ext = "faiss"  # FAISS's own serialisation

    def __init__(self, spec: IndexSpec, index: faiss.Index) -> None:
        self.spec = spec
        self.index = index
        self.ntotal = int(index.ntotal)
        self._ivf = faiss.try_extract_index_ivf(quantized.core(index))
        self.nlist = int(self._ivf.nlist) if self._ivf is not None else 0
        self.is_hnsw = isinstance(quantized.core(index), faiss.IndexHNSW)
        self._quantized = spec.index_type in QUANTIZED_TYPES
        self._plain: dict[tuple[SearchKnobs, int], tuple[faiss.SearchParameters, ...]] = {}
        self._last: tuple[SearchKnobs | None, int, tuple[faiss.SearchParameters, ...]] = (None, 0, ())

    # -- building and files ---------------------------------------------------------------

    @classmethod
    def build(cls, spec: IndexSpec, vectors: np.ndarray, seed: int = 1234) -> FaissIndex:
        """Train and fill an index over ``vectors`` (row i gets label i). COSINE is inner
        product over normalised vectors, as Milvus defines it. FLOAT16 / BFLOAT16 / INT8
        rows are widened to float32 a chunk at a time on their way in (FAISS's API takes
        float32) and stored at their own width by the index's scalar quantizer
        (``IndexSpec.factory``), so the build never holds the segment as float32."""
        n = len(vectors)
        metric = faiss.METRIC_L2 if spec.metric == "L2" else faiss.METRIC_INNER_PRODUCT
        if spec.index_type in QUANTIZED_TYPES:
            index = quantized.make(spec, spec.nlist_for(n) if "nlist" in spec.build else 0, metric)
        else:
            index = faiss.index_factory(spec.dim, spec.factory(n), metric)
            if isinstance(index, faiss.IndexHNSW):
                index.hnsw.efConstruction = spec.build["efConstruction"]
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and spec.vector != "float" and spec.index_type in ("IVF_FLAT", "AUTOINDEX"):
            # The codes hold the vectors themselves, not their residuals to the centroid: a
            # residual of two float16 values is not a float16, and IVF_FLAT must stay exact.
            ivf.by_residual = False

        def prep(x: np.ndarray) -> np.ndarray:
            x = np.ascontiguousarray(x, dtype=np.float32)
            return normalized(x) if spec.metric == "COSINE" else x

        if quantized.needs_training(index):
            ivf = faiss.try_extract_index_ivf(quantized.core(index))
            # IVF: enough points per list; a scalar quantizer alone (HNSW over SQ8): a sample
            want = TRAIN_POINTS_PER_LIST * ivf.nlist if ivf is not None else 65536
            if "nbits" in spec.build:
                want = max(want, 39 * (1 << spec.build["nbits"]))  # PQ / RQ codebooks train too
            rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, want), replace=False))
            index.train(prep(vectors[rows]))
        chunk = HNSW_ADD_CHUNK if isinstance(quantized.core(index), faiss.IndexHNSW) else ADD_CHUNK
        for start in range(0, n, chunk):
            index.add(prep(vectors[start : start + chunk]))
        return cls(spec, index)

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the index file; return (size, crc32). The caller fsyncs the dir."""
        return write_fsynced(faiss.write_index, self.index, path)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> FaissIndex:
        """Open a saved index, read into memory unless ``spec.mmap`` (or, unset,
        KEELDB_INDEX_MMAP=1) maps it. The caller has verified its size and CRC."""
        return cls(spec, faiss.read_index(str(path), read_flags(spec.mmap)))

    # -- searching ------------------------------------------------------------------------

    def _params(self, knobs: SearchKnobs, k: int, sel: faiss.IDSelector | None) -> tuple[faiss.SearchParameters, ...]:
        """The parameters to search with, first, then every object they point at: the
        caller holds the tuple for the length of the call (SWIG does not keep them alive)."""
        if sel is None:
            # Without a selector the parameters depend on the knobs only: build them once
            # (a SWIG object costs tens of microseconds, a real share of a HNSW search).
            last = self._last  # one read: another thread may replace it
            if last[0] is knobs and last[1] == k:  # the same knobs object: a kept search plan
                return last[2]
            key = (knobs, k)
            cached = self._plain.get(key)
            if cached is None:
                if len(self._plain) > 64:
                    self._plain.clear()
                cached = self._plain[key] = self._wrapped(knobs, k, None)
            self._last = (knobs, k, cached)
            return cached
        return self._wrapped(knobs, k, sel)

    def _wrapped(self, knobs: SearchKnobs, k: int, sel: faiss.IDSelector | None) -> tuple[faiss.SearchParameters, ...]:
        base = self._make_params(knobs, k, sel)
        return quantized.search_params(self.index, base, knobs, k) if self._quantized else (base,)

    def _make_params(self, knobs: SearchKnobs, k: int, sel: faiss.IDSelector | None) -> faiss.SearchParameters:
        kw: dict[str, object] = {}
        if sel is not None:
            kw["sel"] = sel
        if self._ivf is not None:
            if knobs.nprobe is not None:
                nprobe = knobs.nprobe
            elif self.spec.index_type == "AUTOINDEX":
                nprobe = max(1, self.nlist // AUTO_PROBE_FRACTION)
            else:
                nprobe = DEFAULT_NPROBE
            return faiss.SearchParametersIVF(nprobe=min(nprobe, self.nlist), **kw)
        if self.is_hnsw:
            return faiss.SearchParametersHNSW(efSearch=max(knobs.ef or 64, k), **kw)
        return faiss.SearchParameters(**kw)

    def search(
        self, q: np.ndarray, k: int, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (distances, rows); rows are -1 where fewer than k allowed rows were found.
        ``allowed``: the rows that may be returned, as a little-endian packed bitmap (from
        ``np.packbits(mask, bitorder="little")``), or None for every row."""
        # The selector and the bitmap must outlive the call: SWIG does not keep them alive.
        sel = None if allowed is None else self._selector(allowed)
        params = self._params(knobs, k, sel)
        # FAISS's own search_c, as its Python ``search`` wrapper calls it, without the
        # wrapper's per-call conversions (the queries are contiguous float32 already).
        n = q.shape[0]
        if q.dtype != np.float32 or not q.flags.c_contiguous or q.shape[1] != self.spec.dim:
            q = np.ascontiguousarray(q, dtype=np.float32)
            assert q.ndim == 2 and q.shape[1] == self.spec.dim
        d = np.empty((n, k), dtype=np.float32)
        i = np.empty((n, k), dtype=np.int64)
        self.index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(d), faiss.swig_ptr(i), params[0])
        del sel, params
        return d, i

    def searcher(self, k: int, knobs: SearchKnobs) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``search(q, k, knobs, None)`` bound once, for a caller that repeats it (a kept
        plain search, ``engine/search.py`` ``SoleSegmentSearch``): the parameters built and
        the checks done here, so a call is FAISS's ``search_c`` and two output arrays. ``q``
        must be contiguous float32 of the index's dimension (what the search path makes)."""
        params = self._params(knobs, k, None)
        first = params[0]
        search_c = self.index.search_c
        ptr = faiss.swig_ptr
        dim = self.spec.dim

        def run(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n, width = q.shape
            if width != dim or q.dtype != np.float32 or not q.flags.c_contiguous:  # FAISS reads n x dim floats
                raise ValueError(f"queries must be contiguous float32 of width {dim}")
            d = np.empty((n, k), dtype=np.float32)
            i = np.empty((n, k), dtype=np.int64)
            search_c(n, ptr(q), k, ptr(d), ptr(i), first)
            return d, i

        run.params = params  # type: ignore[attr-defined]  # kept alive with the closure (SWIG does not)
        return run

    def range_search(
        self, q: np.ndarray, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every allowed row within ``radius`` (L2: distance < radius; IP/COSINE: similarity
        > radius), as FAISS's (lims, distances, rows)."""
        sel = self._selector(allowed)
        params = self._params(knobs, 1, sel)
        out = self.index.range_search(q, float(radius), params=params[0])
        del sel, params
        return out

    def _selector(self, allowed: np.ndarray | None) -> faiss.IDSelector | None:
        if allowed is None:
            return None
        assert allowed.dtype == np.uint8 and allowed.flags.c_contiguous and allowed.size * 8 >= self.ntotal
        return faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(allowed))


FAISS: IndexKind = FaissIndex  # what index/base.py's registry names
